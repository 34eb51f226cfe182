//! The DPDK market-data receiver (`docs/design.md` §1): one pinned thread busy-polls a receive
//! queue and feeds every datagram to zc-core's [`MarketDataHandler`], printing
//! one status line a second.

use crate::eal::Eal;
use crate::rx::DpdkReceiver;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use zc_core::backend::{Receiver, RxBurst, RxStats};
use zc_core::error::Result;
use zc_core::handler::{Handled, HandlerReport, MarketDataHandler};
use zc_core::sys::{monotonic_ns, pin_current_thread};

/// Loop settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopConfig {
    /// CPU to pin the polling thread to (`None`: leave the affinity alone).
    pub core: Option<usize>,
    /// Time between status lines.
    pub status_every: Duration,
    /// Stop after this long (`None`: until `stop` is set or `messages` reached).
    pub duration: Option<Duration>,
    /// Stop after this many decoded messages.
    pub messages: Option<u64>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            core: None,
            status_every: Duration::from_secs(1),
            duration: None,
            messages: None,
        }
    }
}

/// What the loop did.
#[derive(Debug, Clone)]
pub struct LoopSummary {
    /// The handler's counters at the end.
    pub report: HandlerReport,
    /// The receiver's (and port's) counters at the end.
    pub rx: RxStats,
    /// Polls of the queue, empty ones included.
    pub polls: u64,
    /// Wall time of the loop in nanoseconds.
    pub elapsed_ns: u64,
}

/// Empty polls between clock reads (the clock is read once per non-empty burst).
const IDLE_POLLS_PER_CLOCK_READ: u32 = 1024;

/// Runs the receive loop on the calling thread until `stop` is set, the
/// duration passed or enough messages arrived. The thread is pinned to
/// `cfg.core` and registered with the EAL (so mempool caches serve it) first.
/// Status lines go to `status`; a failed write there does not stop the loop.
pub fn run(
    eal: &Eal,
    rx: &mut DpdkReceiver,
    handler: &mut MarketDataHandler,
    cfg: &LoopConfig,
    stop: &AtomicBool,
    status: &mut dyn Write,
) -> Result<LoopSummary> {
    if let Some(core) = cfg.core {
        pin_current_thread(core)?;
    }
    let _lcore = eal.register_thread()?;
    let start = monotonic_ns();
    let status_ns = cfg.status_every.as_nanos().max(1) as u64;
    let end = cfg
        .duration
        .map(|d| start.saturating_add(d.as_nanos() as u64));
    let mut next_status = start + status_ns;
    let mut last = (start, 0u64);
    let mut polls = 0u64;
    let mut idle = 0u32;
    let mut messages = 0u64;
    loop {
        polls += 1;
        let burst = rx.recv_burst(Some(Duration::ZERO))?;
        let now = if burst.is_empty() {
            drop(burst);
            idle += 1;
            if idle < IDLE_POLLS_PER_CLOCK_READ {
                continue;
            }
            idle = 0;
            monotonic_ns()
        } else {
            let now = monotonic_ns();
            for d in burst.iter() {
                if let Handled::Message(_) = handler.on_datagram(&d, now) {
                    messages += 1;
                }
            }
            drop(burst);
            now
        };
        if now >= next_status {
            let r = handler.report();
            let s = rx.stats();
            let rate = (r.messages - last.1) as f64 * 1e9 / (now - last.0).max(1) as f64;
            let extra = |k: &str| s.extra.iter().find(|(n, _)| *n == k).map_or(0, |(_, v)| *v);
            // The status line is best effort: a closed pipe must not stop the feed.
            let _ = writeln!(
                status,
                "{}: {} msgs ({:.0}/s), gaps {}, dups {}, malformed {}, not udp {}, not for us {}, imissed {}, rx_nombuf {}, pool free {}",
                rx.mode(),
                r.messages,
                rate,
                r.seq.missing,
                r.seq.duplicates,
                s.malformed,
                s.not_udp,
                s.not_ours,
                extra("port_imissed"),
                extra("port_rx_nombuf"),
                extra("mempool_available"),
            );
            last = (now, r.messages);
            next_status = now + status_ns;
        }
        let done = stop.load(Ordering::Relaxed)
            || end.is_some_and(|e| now >= e)
            || cfg.messages.is_some_and(|m| messages >= m);
        if done {
            break;
        }
    }
    Ok(LoopSummary {
        report: handler.report(),
        rx: rx.stats(),
        polls,
        elapsed_ns: monotonic_ns() - start,
    })
}

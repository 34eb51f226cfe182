//! Replaying a capture's UDP payloads through any [`Sender`].
//!
//! Pacing is open loop: record `k` has an intended send time fixed in advance
//! (the capture's own spacing divided by the speed, or `k / rate`), the
//! engine waits for it, and the difference between when the send call
//! returned and the intended time is recorded in a histogram (p50, p99). A
//! replay that falls behind sends what is due in batches until it has caught
//! up; it never sends early.
//!
//! A [`Sender`] sends to one destination fixed when it is opened, so replay
//! asks a [`Destinations`] for the sender of each record's destination:
//! [`SenderMap`] opens one per distinct destination, through a function that
//! may rewrite the address, port and MAC.

use crate::read::{CaptureReader, ReadStats};
use hdrhistogram::Histogram;
use std::io::Read;
use std::net::SocketAddrV4;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use zc_core::feed::wait_until;
use zc_core::latency::{LatencySummary, MAX_TRACKABLE_NS};
use zc_core::sys::monotonic_ns;
use zc_core::{Error, Result, Sender};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The capture's own spacing, divided by `speed` (2.0 is twice as fast).
    Original {
        /// Speed factor, above 0.
        speed: f64,
    },
    /// A fixed rate, in datagrams per second.
    Rate(f64),
    /// As fast as the sender takes them.
    Asap,
}

/// Replay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// How fast.
    pub pace: Pace,
    /// Times through the file; 0 loops until stopped.
    pub loops: u64,
    /// Only datagrams to these UDP ports (empty: all).
    pub ports: Vec<u16>,
    /// Datagrams per send call at most (when the replay is behind or as fast as possible).
    pub batch: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            pace: Pace::Original { speed: 1.0 },
            loops: 1,
            ports: Vec::new(),
            batch: 64,
        }
    }
}

impl ReplayConfig {
    fn validate(&self) -> Result<()> {
        match self.pace {
            Pace::Original { speed } if !(speed > 0.0 && speed.is_finite()) => Err(Error::config(
                format!("speed {speed} must be a positive number (2 replays twice as fast)"),
            )),
            Pace::Rate(r) if !(r > 0.0 && r.is_finite()) => Err(Error::config(format!(
                "rate {r} must be a positive number of datagrams per second"
            ))),
            _ if self.batch == 0 => Err(Error::config("batch must be 1 or more")),
            _ => Ok(()),
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    /// Datagrams handed to the senders.
    pub sent: u64,
    /// Payload bytes sent.
    pub bytes: u64,
    /// Datagrams left out by the port filter.
    pub filtered: u64,
    /// Datagrams larger than the sender's slot, not sent.
    pub too_large: u64,
    /// Send calls that took fewer datagrams than offered (retried).
    pub backpressure: u64,
    /// Passes through the file completed.
    pub loops: u64,
    /// Distinct destinations sent to.
    pub destinations: usize,
    /// From the first intended send time to the end of the last send.
    pub elapsed: Duration,
    /// Capture time from the first to the last datagram replayed, one pass.
    pub capture_span: Duration,
    /// Send time minus intended send time (none when sending as fast as possible).
    pub lateness: Option<LatencySummary>,
    /// What the reader saw in the last pass (records, skipped by reason).
    pub read: ReadStats,
    /// The run ended early because `stop` was set.
    pub stopped: bool,
}

impl ReplayReport {
    /// Datagrams per second achieved.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The sender for each destination of a capture.
pub trait Destinations {
    /// The sender for datagrams the capture sent to `dst`.
    fn sender(&mut self, dst: SocketAddrV4) -> Result<&mut dyn Sender>;

    /// Distinct destinations so far.
    fn count(&self) -> usize;
}

/// Opens one sender per distinct destination of the capture with `open`,
/// which is where addresses, ports and MACs are rewritten.
pub struct SenderMap<F> {
    open: F,
    senders: Vec<(SocketAddrV4, Box<dyn Sender + Send>)>,
    max: usize,
}

impl<F> SenderMap<F>
where
    F: FnMut(SocketAddrV4) -> Result<Box<dyn Sender + Send>>,
{
    /// At most `max` destinations (each holds a socket or a queue).
    pub fn new(max: usize, open: F) -> Self {
        Self {
            open,
            senders: Vec::new(),
            max,
        }
    }
}

impl<F> Destinations for SenderMap<F>
where
    F: FnMut(SocketAddrV4) -> Result<Box<dyn Sender + Send>>,
{
    fn sender(&mut self, dst: SocketAddrV4) -> Result<&mut dyn Sender> {
        let i = match self.senders.iter().position(|(d, _)| *d == dst) {
            Some(i) => i,
            None => {
                if self.senders.len() == self.max {
                    return Err(Error::config(format!(
                        "the capture sends to more than {} destinations ({dst} is one more)",
                        self.max
                    ))
                    .with_fix(
                        "keep one feed with --port, or send everything to one place with --dst",
                    ));
                }
                let s = (self.open)(dst)?;
                self.senders.push((dst, s));
                self.senders.len() - 1
            }
        };
        Ok(self.senders[i].1.as_mut())
    }

    fn count(&self) -> usize {
        self.senders.len()
    }
}

/// Datagrams waiting to go out in one send call: all due, all to one destination.
struct Pending {
    dst: Option<SocketAddrV4>,
    arena: Vec<u8>,
    items: Vec<(Range<usize>, u64)>,
}

struct Engine<'a> {
    dests: &'a mut dyn Destinations,
    pending: Pending,
    lateness: Option<Histogram<u64>>,
    report: ReplayReport,
}

impl Engine<'_> {
    /// Sends what is pending, retrying on back-pressure; records each
    /// datagram's lateness when its send call returns.
    fn flush(&mut self, stop: &AtomicBool) -> Result<()> {
        let Some(dst) = self.pending.dst else {
            return Ok(());
        };
        let tx = self.dests.sender(dst)?;
        let mut done = 0;
        let items = &self.pending.items;
        let arena = &self.pending.arena;
        while done < items.len() {
            let n = tx.send_burst(items.len() - done, &mut |i, buf| {
                let p = &arena[items[done + i].0.clone()];
                buf[..p.len()].copy_from_slice(p);
                p.len()
            })?;
            let now = monotonic_ns();
            if let Some(h) = &mut self.lateness {
                for (_, intended) in &items[done..done + n] {
                    h.saturating_record(now.saturating_sub(*intended).max(1));
                }
            }
            for (r, _) in &items[done..done + n] {
                self.report.bytes += r.len() as u64;
            }
            done += n;
            self.report.sent += n as u64;
            if done < items.len() {
                self.report.backpressure += 1;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        self.pending.items.clear();
        self.pending.arena.clear();
        self.pending.dst = None;
        Ok(())
    }
}

/// Replays the capture `open` opens (again for each loop) through `dests`.
pub fn replay<R: Read>(
    open: &mut dyn FnMut() -> Result<CaptureReader<R>>,
    dests: &mut dyn Destinations,
    cfg: &ReplayConfig,
    stop: &AtomicBool,
) -> Result<ReplayReport> {
    cfg.validate()?;
    let lateness = match cfg.pace {
        Pace::Asap => None,
        // 1 ns to 60 s with 3 significant digits is a valid, fixed configuration.
        _ => Some(
            Histogram::new_with_bounds(1, MAX_TRACKABLE_NS, 3)
                .map_err(|e| Error::config(format!("lateness histogram: {e}")))?,
        ),
    };
    let mut e = Engine {
        dests,
        pending: Pending {
            dst: None,
            arena: Vec::with_capacity(cfg.batch * 2048),
            items: Vec::with_capacity(cfg.batch),
        },
        lateness,
        report: ReplayReport::default(),
    };
    // The clock starts at the first datagram, once its sender is open.
    let mut start: Option<u64> = None;
    let mut index = 0u64; // datagrams scheduled, over all loops
    let mut loop_base = 0u64; // offset of this pass's first datagram
    let mut max_payload: Option<(SocketAddrV4, usize)> = None;
    'passes: while cfg.loops == 0 || e.report.loops < cfg.loops {
        let mut reader = open()?;
        let mut first_ts = None;
        let mut last_off = loop_base;
        let mut last_ts = 0;
        let mut n = 0u64;
        while let Some(u) = reader.next_udp()? {
            if stop.load(Ordering::Relaxed) {
                e.report.stopped = true;
                break 'passes;
            }
            if !cfg.ports.is_empty() && !cfg.ports.contains(&u.dst.port()) {
                e.report.filtered += 1;
                continue;
            }
            let max = match max_payload {
                Some((d, m)) if d == u.dst => m,
                _ => {
                    let m = e.dests.sender(u.dst)?.max_payload();
                    max_payload = Some((u.dst, m));
                    m
                }
            };
            if u.payload.len() > max {
                e.report.too_large += 1;
                continue;
            }
            let start = *start.get_or_insert_with(monotonic_ns);
            let first = *first_ts.get_or_insert(u.ts_ns);
            let off = match cfg.pace {
                Pace::Original { speed } => {
                    // Timestamps that go backwards are sent at once, never earlier.
                    let o = loop_base + (u.ts_ns.saturating_sub(first) as f64 / speed) as u64;
                    o.max(last_off)
                }
                Pace::Rate(r) => (index as f64 * 1e9 / r) as u64,
                Pace::Asap => 0,
            };
            last_off = off;
            last_ts = u.ts_ns;
            n += 1;
            index += 1;
            let intended = start + off;
            let pending = &e.pending;
            let must_flush = !pending.items.is_empty()
                && (pending.dst != Some(u.dst)
                    || pending.items.len() >= cfg.batch
                    || intended > monotonic_ns());
            if must_flush {
                e.flush(stop)?;
            }
            if e.pending.items.is_empty() && cfg.pace != Pace::Asap {
                wait_until(intended, stop);
            }
            let at = e.pending.arena.len();
            e.pending.arena.extend_from_slice(u.payload);
            e.pending.items.push((at..at + u.payload.len(), intended));
            e.pending.dst = Some(u.dst);
        }
        e.flush(stop)?;
        e.report.read = reader.stats().clone();
        if let Some(first) = first_ts {
            e.report.capture_span = Duration::from_nanos(last_ts.saturating_sub(first));
        }
        e.report.loops += 1;
        if n == 0 {
            // Nothing to send in this file: looping would spin.
            break;
        }
        // The next pass starts one average spacing after this one ended.
        let spacing = if n > 1 {
            (last_off - loop_base) / (n - 1)
        } else {
            0
        };
        loop_base = last_off + spacing;
    }
    e.flush(stop)?;
    e.report.elapsed = Duration::from_nanos(start.map_or(0, |s| monotonic_ns().saturating_sub(s)));
    e.report.destinations = e.dests.count();
    e.report.lateness = e.lateness.as_ref().map(|h| LatencySummary {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    });
    Ok(e.report)
}

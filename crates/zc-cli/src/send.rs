//! `zc send`: the open-loop feed generator.

use crate::names::TxBackend;
use crate::report::fmt_rate;
use clap::Args;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zc::{open_sender, TxSpec};
use zc_core::feed::{generate, FeedPlan, GenConfig, GenReport};
use zc_core::sys::pin_current_thread;
use zc_core::{Error, Result};

/// Send a market-data feed.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Each payload is the 32-byte market-data message (sequence, symbol, price,
volume, timestamp) padded to --payload bytes. The timestamp is the message's
intended send time on CLOCK_MONOTONIC: start + k / rate. A receiver on the same
host measures one-way latency from it, including any time the message waited
to be sent (no coordinated omission).

Examples:
  zc send --dst 198.18.0.1:9000 --rate 100000 --count 1000000
  zc send --dst 198.18.0.1:9000 --count 10000 --skip-every 100 --duplicate-every 50 --reorder-every 70
  zc send --dst 239.1.1.1:9000 --bind 198.18.0.2:0 --duration 10 --rate 50000")]
pub struct SendArgs {
    /// Sender backend.
    #[arg(short, long, value_enum, default_value_t = TxBackend::Sendmmsg)]
    pub backend: TxBackend,
    /// Destination address and UDP port (unicast or an IPv4 multicast group).
    #[arg(long)]
    pub dst: SocketAddrV4,
    /// Local address to send from (port 0: any).
    #[arg(long, default_value = "0.0.0.0:0")]
    pub bind: SocketAddrV4,
    /// Messages per second; omit to send as fast as the backend takes them.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sequence numbers to send (0 .. count).
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Send for this many seconds (needs --rate).
    #[arg(long, requires = "rate")]
    pub duration: Option<f64>,
    /// First sequence number (try 4294967000 to cross the u32 wrap).
    #[arg(long, default_value_t = 0)]
    pub first_seq: u32,
    /// Skip every N-th sequence number on purpose: the receiver must report each as a gap.
    #[arg(long, value_name = "N")]
    pub skip_every: Option<u64>,
    /// Send every N-th sequence number twice on purpose.
    #[arg(long, value_name = "N")]
    pub duplicate_every: Option<u64>,
    /// Swap every N-th sequence number with the next one on purpose: the
    /// receiver must report one gap and one late arrival for each.
    #[arg(long, value_name = "N")]
    pub reorder_every: Option<u64>,
    /// UDP payload bytes (32 to the backend's slot size).
    #[arg(long, default_value_t = 32)]
    pub payload: usize,
    /// Datagrams per send call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Number of distinct symbols.
    #[arg(long, default_value_t = 64)]
    pub symbols: u32,
    /// Pin the sending thread to this CPU.
    #[arg(long)]
    pub pin: Option<usize>,
}

impl SendArgs {
    /// The feed plan these options describe.
    pub fn plan(&self) -> Result<FeedPlan> {
        let count = match (self.count, self.duration, self.rate) {
            (Some(c), _, _) => c,
            (None, Some(d), Some(r)) => (d * r) as u64,
            _ => {
                return Err(Error::config(
                    "say how much to send: --count N, or --duration S with --rate R",
                ))
            }
        };
        let plan = FeedPlan {
            count,
            first: self.first_seq,
            skip_every: self.skip_every,
            duplicate_every: self.duplicate_every,
            reorder_every: self.reorder_every,
        };
        plan.validate()?;
        Ok(plan)
    }
}

/// Runs a generator to completion on this thread.
pub fn send_feed(a: &SendArgs, stop: &AtomicBool) -> Result<GenReport> {
    let plan = a.plan()?;
    if let Some(cpu) = a.pin {
        pin_current_thread(cpu)?;
    }
    let mut spec = TxSpec::new(a.backend.name()?, a.bind, a.dst);
    spec.batch = a.batch;
    spec.max_payload = a.payload.max(zc_core::md::MESSAGE_LEN);
    let mut tx = open_sender(&spec)?;
    let cfg = GenConfig {
        plan,
        rate: a.rate,
        symbols: a.symbols,
        payload_len: a.payload,
        batch: a.batch,
    };
    generate(tx.as_mut(), &cfg, stop)
}

pub fn run(a: SendArgs) -> Result<ExitCode> {
    let stop: &'static AtomicBool = crate::stop_flag();
    let plan = a.plan()?;
    let e = plan.expected();
    eprintln!(
        "zc send: {} datagrams ({} sequence numbers, {} skipped, {} duplicated, {} swapped) to {} at {}",
        e.sent,
        plan.count,
        e.missing,
        e.duplicates,
        e.late,
        a.dst,
        a.rate.map_or("full speed".into(), fmt_rate)
    );
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut t = 0;
            while !done.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                t += 1;
                if t % 10 == 0 {
                    eprintln!("zc send: {} s", t / 10);
                }
            }
        })
    };
    let r = send_feed(&a, stop);
    done.store(true, Ordering::Relaxed);
    let _ = progress.join();
    let r = r?;
    let rate = r.sent as f64 / r.elapsed.as_secs_f64().max(1e-9);
    println!(
        "sent {} datagrams in {:.3} s ({}), back-pressure {} times{}",
        r.sent,
        r.elapsed.as_secs_f64(),
        fmt_rate(rate),
        r.backpressure,
        if r.stopped { ", interrupted" } else { "" }
    );
    Ok(if r.stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

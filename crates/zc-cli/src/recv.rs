//! `zc recv`, and the receive loop `zc bench` measures with.

use crate::report::{fmt_ns, fmt_rate};
use clap::Args;
use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zc::{open_receiver, DynReceiver, RxSpec};
use zc_core::backend::{Datagram, Mode, RxStats};
use zc_core::handler::{HandlerConfig, HandlerReport, MarketDataHandler};
use zc_core::md::MESSAGE_LEN;
use zc_core::sys::{monotonic_ns, pin_current_thread};
use zc_core::Result;
use zc_os::cpu::thread_cpu_ns;

/// Receive a feed and report on it.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  zc recv --bind 198.18.0.1:9000                      # epoll + recvmmsg on that address
  zc recv --backend recvfrom --bind 0.0.0.0:9000      # the blocking baseline
  zc recv --bind 198.18.0.1:9000 --multicast 239.1.1.1 --busy-poll --pin 1
  zc recv --bind 198.18.0.1:9000 --pipeline --pin 1 --handler-pin 0

Status line, once a second: messages/s, payload Gbit/s, gaps, duplicates,
drops (kernel + handler), one-way latency p50/p99 from the sender's timestamp
(same-host CLOCK_MONOTONIC).

Exit code: 0, or 1 when anything was lost, 2 on an error, 3 when no message
arrived at all (a feed that never came is a failure, not a clean run;
--allow-empty makes it 0).")]
pub struct RecvArgs {
    /// Backend name (`zc doctor` lists those compiled in).
    #[arg(short, long, default_value = "recvmmsg")]
    pub backend: String,
    /// Feed address and UDP port to receive on.
    #[arg(long, default_value = "0.0.0.0:9000")]
    pub bind: SocketAddrV4,
    /// Network interface (AF_XDP and DPDK backends attach to a device).
    #[arg(long)]
    pub interface: Option<String>,
    /// Device queue (AF_XDP and DPDK backends).
    #[arg(long, default_value_t = 0)]
    pub queue: u32,
    /// Datagrams per burst.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Busy-poll instead of sleeping until data arrives (one core at 100 %).
    #[arg(long)]
    pub busy_poll: bool,
    /// Join this IPv4 multicast group on the interface that has the --bind address.
    #[arg(long)]
    pub multicast: Option<Ipv4Addr>,
    /// Ask for kernel receive timestamps.
    #[arg(long)]
    pub timestamps: bool,
    /// Pin the receive thread to this CPU.
    #[arg(long)]
    pub pin: Option<usize>,
    /// Receive thread only polls and hands messages to a handler thread over a
    /// bounded lock-free queue; a full queue drops (and counts) the message.
    /// Only the 32-byte message crosses the queue, so byte counts are of messages.
    #[arg(long)]
    pub pipeline: bool,
    /// Pipeline queue capacity, in messages.
    #[arg(long, default_value_t = 65_536)]
    pub queue_depth: usize,
    /// Pin the pipeline's handler thread to this CPU.
    #[arg(long)]
    pub handler_pin: Option<usize>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = crate::serve::seconds)]
    pub duration: Option<Duration>,
    /// Stop when nothing arrived for this many seconds (after the first message).
    #[arg(long, value_parser = crate::serve::seconds)]
    pub idle_exit: Option<Duration>,
    /// Open the receiver, then wait this many seconds before the first receive:
    /// the kernel queues what arrives meanwhile (up to the socket buffer or
    /// ring), and the run then measures the pure cost of draining it.
    #[arg(long, value_name = "SECS", value_parser = crate::serve::seconds)]
    pub hold: Option<Duration>,
    /// No status lines, only the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Exit 0 even when no message arrived (by default that exits 3).
    #[arg(long)]
    pub allow_empty: bool,
}

/// The exit code of a run in which no message arrived.
const EXIT_NOTHING_RECEIVED: u8 = 3;

/// When a receive loop ends.
#[derive(Clone, Copy)]
pub struct StopWhen<'a> {
    /// After this many messages (datagrams handled, duplicates included).
    pub count: Option<u64>,
    /// At this instant.
    pub deadline: Option<Instant>,
    /// After this long without traffic, once something arrived or `idle_armed` is set.
    pub idle: Option<Duration>,
    /// Arms the idle timer even before the first message (the sender is done).
    pub idle_armed: Option<&'a AtomicBool>,
    /// External stop (Ctrl-C).
    pub stop: &'a AtomicBool,
}

/// Everything a receive run measured.
pub struct RxRun {
    /// The handler's counters.
    pub report: HandlerReport,
    /// The latency histogram, for merging and plots.
    pub latency: Histogram<u64>,
    /// Monotonic time of the first and last datagram.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// CPU time (user + system) of the receive thread over the run.
    pub cpu_ns: u64,
    /// The backend's counters.
    pub rx_stats: RxStats,
    /// The mode the backend ran in.
    pub mode: Mode,
    /// Messages the pipeline queue had no room for.
    pub queue_full: u64,
}

impl RxRun {
    /// What a finished run measured: the handler's and the backend's figures.
    fn collect(
        h: &MarketDataHandler,
        rx: &dyn DynReceiver,
        (first_ns, last_ns): (u64, u64),
        cpu_ns: u64,
        queue_full: u64,
    ) -> Self {
        RxRun {
            report: h.report(),
            latency: h.latency().histogram().clone(),
            first_ns,
            last_ns,
            cpu_ns,
            rx_stats: rx.stats(),
            mode: rx.mode().clone(),
            queue_full,
        }
    }

    /// Messages per second (duplicates included) between the first and the last datagram.
    pub fn rate(&self) -> f64 {
        let span = self.last_ns.saturating_sub(self.first_ns);
        if span == 0 || self.report.messages < 2 {
            return 0.0;
        }
        (self.report.messages - 1) as f64 * 1e9 / span as f64
    }
}

/// Once-a-second progress callback: (seconds since start, handler report, backend stats).
pub type StatusFn<'a> = &'a mut dyn FnMut(f64, &HandlerReport, &RxStats);

/// Receives on this thread, feeding `h` directly.
pub fn receive_inline(
    rx: &mut dyn DynReceiver,
    h: &mut MarketDataHandler,
    when: StopWhen<'_>,
    mut status: Option<StatusFn<'_>>,
) -> Result<RxRun> {
    let mut first_ns = 0;
    let mut last_ns = 0;
    let start = Instant::now();
    let mut next_status = start + Duration::from_secs(1);
    let mut last_rx = Instant::now();
    let cpu0 = thread_cpu_ns();
    let wait = Some(Duration::from_millis(20));
    loop {
        if should_stop(&when, h.messages(), last_rx, first_ns != 0) {
            break;
        }
        let mut now_ns = 0;
        let n = rx.recv_each(wait, &mut |d| {
            if now_ns == 0 {
                now_ns = monotonic_ns();
            }
            h.on_datagram(d, now_ns);
        })?;
        if n > 0 {
            if first_ns == 0 {
                first_ns = now_ns;
            }
            last_ns = now_ns;
            last_rx = Instant::now();
        }
        if let Some(f) = status.as_mut() {
            if Instant::now() >= next_status {
                next_status += Duration::from_secs(1);
                f(start.elapsed().as_secs_f64(), &h.report(), &rx.stats());
            }
        }
    }
    let cpu_ns = thread_cpu_ns() - cpu0;
    Ok(RxRun::collect(h, rx, (first_ns, last_ns), cpu_ns, 0))
}

fn should_stop(when: &StopWhen<'_>, messages: u64, last_rx: Instant, seen: bool) -> bool {
    if when.stop.load(Ordering::Relaxed) {
        return true;
    }
    if when.count.is_some_and(|c| messages >= c) {
        return true;
    }
    if when.deadline.is_some_and(|d| Instant::now() >= d) {
        return true;
    }
    let armed = seen || when.idle_armed.is_some_and(|a| a.load(Ordering::Relaxed));
    armed && when.idle.is_some_and(|i| last_rx.elapsed() >= i)
}

/// One message copied out of the backend's buffer for the handler thread.
#[derive(Clone, Copy)]
struct Handoff {
    bytes: [u8; MESSAGE_LEN],
    len: u8,
    src: SocketAddr,
    dst: SocketAddr,
    now_ns: u64,
}

/// Receives on this thread and handles on another, over a bounded queue.
pub fn receive_pipelined(
    rx: &mut dyn DynReceiver,
    mut h: MarketDataHandler,
    depth: usize,
    handler_cpu: Option<usize>,
    when: StopWhen<'_>,
    mut status: Option<StatusFn<'_>>,
) -> Result<RxRun> {
    let queue = Arc::new(ArrayQueue::<Handoff>::new(depth.max(1)));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (queue, done) = (Arc::clone(&queue), Arc::clone(&done));
        std::thread::Builder::new()
            .name("zc-handler".into())
            .spawn(move || -> Result<MarketDataHandler> {
                if let Some(cpu) = handler_cpu {
                    pin_current_thread(cpu)?;
                }
                let mut idle = 0u32;
                loop {
                    match queue.pop() {
                        Some(m) => {
                            idle = 0;
                            let d = Datagram {
                                payload: &m.bytes[..usize::from(m.len)],
                                src: m.src,
                                dst: m.dst,
                                rx_timestamp: None,
                            };
                            h.on_datagram(&d, m.now_ns);
                        }
                        None if done.load(Ordering::Acquire) && queue.is_empty() => return Ok(h),
                        // Spin while traffic is likely; yield the core when it is not.
                        None if idle < 10_000 => {
                            idle += 1;
                            std::hint::spin_loop();
                        }
                        None => std::thread::yield_now(),
                    }
                }
            })
            .map_err(|e| zc_core::Error::io("spawn the handler thread", e))?
    };
    let mut first_ns = 0;
    let mut last_ns = 0;
    let mut pushed = 0u64;
    let mut queue_full = 0u64;
    let start = Instant::now();
    let mut next_status = start + Duration::from_secs(1);
    let mut last_rx = Instant::now();
    let cpu0 = thread_cpu_ns();
    let result = loop {
        if should_stop(&when, pushed, last_rx, first_ns != 0) {
            break Ok(());
        }
        let mut now_ns = 0;
        let r = rx.recv_each(Some(Duration::from_millis(20)), &mut |d| {
            if now_ns == 0 {
                now_ns = monotonic_ns();
            }
            let len = d.payload.len().min(MESSAGE_LEN);
            let mut bytes = [0u8; MESSAGE_LEN];
            bytes[..len].copy_from_slice(&d.payload[..len]);
            let m = Handoff {
                bytes,
                len: len as u8,
                src: d.src,
                dst: d.dst,
                now_ns,
            };
            if queue.push(m).is_ok() {
                pushed += 1;
            } else {
                queue_full += 1;
            }
        });
        match r {
            Ok(0) => {}
            Ok(_) => {
                if first_ns == 0 {
                    first_ns = now_ns;
                }
                last_ns = now_ns;
                last_rx = Instant::now();
            }
            Err(e) => break Err(e),
        }
        if let Some(f) = status.as_mut() {
            if Instant::now() >= next_status {
                next_status += Duration::from_secs(1);
                // The handler is on its thread: report what was received so far.
                let snapshot = HandlerReport {
                    messages: pushed,
                    ..Default::default()
                };
                f(start.elapsed().as_secs_f64(), &snapshot, &rx.stats());
            }
        }
    };
    let cpu_ns = thread_cpu_ns() - cpu0;
    done.store(true, Ordering::Release);
    let h = worker.join().map_err(|_| {
        zc_core::Error::new(zc_core::ErrorKind::Io, "the handler thread panicked")
    })??;
    result?;
    Ok(RxRun::collect(
        &h,
        rx,
        (first_ns, last_ns),
        cpu_ns,
        queue_full,
    ))
}

pub fn run(a: RecvArgs) -> Result<ExitCode> {
    let stop = crate::stop_flag();
    let mut spec = RxSpec::new(&a.backend, a.bind);
    spec.interface = a.interface.clone();
    spec.queue = a.queue;
    spec.batch = a.batch;
    spec.busy_poll = a.busy_poll;
    spec.multicast = a.multicast;
    spec.timestamps = a.timestamps;
    if let Some(cpu) = a.pin {
        pin_current_thread(cpu)?;
    }
    let mut rx = open_receiver(&spec)?;
    eprintln!("zc recv: {} on {}", rx.mode(), a.bind);
    if let Some(hold) = a.hold {
        eprintln!("zc recv: holding {hold:?} before the first receive");
        std::thread::sleep(hold);
    }
    let h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(a.bind.port()),
        ..Default::default()
    });
    let when = StopWhen {
        count: a.count,
        deadline: a.duration.and_then(zc_core::sys::deadline_after),
        idle: a.idle_exit,
        idle_armed: None,
        stop,
    };
    let mut prev = (0.0f64, 0u64, 0u64);
    let mut print = |t: f64, r: &HandlerReport, s: &RxStats| {
        let dt = (t - prev.0).max(1e-9);
        let msgs = r.messages.max(s.datagrams);
        let rate = (msgs - prev.1) as f64 / dt;
        let gbps = (s.bytes - prev.2) as f64 * 8.0 / dt / 1e9;
        prev = (t, msgs, s.bytes);
        let drops = s.kernel_drops.unwrap_or(0)
            + r.drops.malformed
            + r.drops.not_ours
            + r.drops.not_market_data;
        eprintln!(
            "{t:6.1}s {} {gbps:6.3} Gbit/s  gaps {} dup {} drops {}  p50 {} p99 {}",
            fmt_rate(rate),
            r.seq.gaps,
            r.seq.duplicates,
            drops,
            fmt_ns(r.latency.p50),
            fmt_ns(r.latency.p99)
        );
    };
    let status: Option<StatusFn<'_>> = if a.quiet { None } else { Some(&mut print) };
    let run = if a.pipeline {
        receive_pipelined(rx.as_mut(), h, a.queue_depth, a.handler_pin, when, status)?
    } else {
        let mut h = h;
        receive_inline(rx.as_mut(), &mut h, when, status)?
    };
    let r = &run.report;
    println!("backend      {}", run.mode);
    println!(
        "messages     {} ({} distinct) at {}",
        r.messages,
        r.seq.received,
        fmt_rate(run.rate())
    );
    println!(
        "sequence     gaps {} missing {} duplicates {} late {}",
        r.seq.gaps, r.seq.missing, r.seq.duplicates, r.seq.late
    );
    println!(
        "drops        kernel {} malformed {} not-ours {} not-market-data {} queue-full {}",
        run.rx_stats
            .kernel_drops
            .map_or("n/a".into(), |d| d.to_string()),
        r.drops.malformed,
        r.drops.not_ours,
        r.drops.not_market_data,
        run.queue_full
    );
    println!(
        "latency      p50 {} p99 {} p99.9 {} max {} (clock skew {})",
        fmt_ns(r.latency.p50),
        fmt_ns(r.latency.p99),
        fmt_ns(r.latency.p999),
        fmt_ns(r.latency.max),
        r.clock_skew
    );
    let per_pkt = run.cpu_ns.checked_div(r.messages).unwrap_or(0);
    println!(
        "cpu          {} receive thread, {per_pkt} ns/message",
        fmt_ns(run.cpu_ns)
    );
    if r.messages == 0 && !a.allow_empty {
        eprintln!(
            "zc recv: no message arrived on {} (exit 3; --allow-empty to accept an empty run)",
            a.bind
        );
        return Ok(ExitCode::from(EXIT_NOTHING_RECEIVED));
    }
    let lost =
        r.seq.missing > 0 || run.queue_full > 0 || run.rx_stats.kernel_drops.unwrap_or(0) > 0;
    Ok(if lost {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

//! `zc recv`, and the receive loop `zc bench` measures with.

use crate::json::{text, JsonOut};
use crate::metrics::MetricsServer;
use crate::names::RxBackend;
use crate::report::{fmt_ns, fmt_rate};
use clap::Args;
use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zc::{open_receivers, DpdkMemory, DynReceiver, RxSpec, XdpAttach, ZeroCopyPolicy};
use zc_core::backend::{Clock, Datagram, Mode, RxStats};
use zc_core::handler::{Handled, HandlerConfig, HandlerReport, MarketDataHandler};
use zc_core::latency::LatencyRecorder;
use zc_core::md::MESSAGE_LEN;
use zc_core::seq::{SeqOutcome, TrackerConfig};
use zc_core::sys::{monotonic_ns, pin_current_thread};
use zc_core::wire::MalformedCounts;
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
  zc recv --bind 198.18.0.1:9000 --json - -q | jq -c 'select(.type == \"summary\")'
  zc recv --bind 198.18.0.1:9000 --metrics 127.0.0.1:9464   # curl 127.0.0.1:9464/metrics
  zc recv --bind 198.18.0.1:9000 --capture feed.pcapng --rotate-mib 1024
  zc recv --bind 198.18.0.1:9000 --capture incident.pcap --ring 10   # kept on a gap or SIGUSR1
  zc recv --bind 0.0.0.0:9000 --pcap feed.pcap                      # the handler offline
  zc recv -b afxdp --interface eth1 --bind 198.18.0.1:9000 --xdp-mode native --zero-copy require

Status line on stderr, once a second (-q: none): messages/s, payload Gbit/s,
gaps, duplicates, drops (kernel + handler), one-way latency p50/p99 from the
sender's timestamp (same-host CLOCK_MONOTONIC). Summary on stdout; with
--timestamps it adds the stack latency: from the receive timestamp (the
kernel's or the NIC's on recvmmsg and uring, the XDP program's on afxdp) to
the receive loop reading the datagram (the stack and wake-up cost).

--json writes the same as JSON lines: {\"type\":\"status\",...} once a second and
{\"type\":\"summary\",...} at the end (the handler's report, the backend's
counters and mode, lost: true|false). With --json -, they go to stdout and the
text summary to stderr.

Exit code 0, or 3 when anything was lost (gaps not filled, kernel drops, a
full pipeline queue), 4 when no message arrived at all (a feed that never
came is not a clean run; --allow-empty makes it 0); 1 on a runtime error, 2 on
a usage error.")]
pub struct RecvArgs {
    /// Receive backend (`zc doctor` shows what each gets on this machine).
    #[arg(short, long, value_enum, default_value_t = RxBackend::Recvmmsg)]
    pub backend: RxBackend,
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
    /// Kernel busy polling for US microseconds per receive call: the
    /// receiving thread runs the device's NAPI poll instead of waiting for a
    /// softirq (recvmmsg: SO_BUSY_POLL + SO_PREFER_BUSY_POLL in a blocking
    /// recvmmsg; uring: registered NAPI busy poll; afxdp: SO_PREFER_BUSY_POLL
    /// with a budget of one batch). Acts only on a device with NAPI; recvfrom
    /// and the DPDK backends refuse it.
    #[arg(long, value_name = "US")]
    pub kernel_busy_poll: Option<u32>,
    /// Join this IPv4 multicast group on the interface that has the --bind address.
    #[arg(long)]
    pub multicast: Option<Ipv4Addr>,
    /// Ask for receive timestamps (recvmmsg, uring: SO_TIMESTAMPING, the
    /// NIC's stamp when its receive timestamping is on, else the kernel's;
    /// afxdp: from the XDP program, in the frame's XDP metadata, the NIC's
    /// stamp when the driver gives one, else CLOCK_MONOTONIC at the hook) and
    /// report the stack latency from them; recvfrom and the dpdk backends
    /// refuse it.
    #[arg(long)]
    pub timestamps: bool,
    /// AF_XDP: XDP attach mode. `auto` tries native then generic and names
    /// the fallback and the kernel's reason in the mode line; `native` is
    /// native or an error; `generic` works on every device.
    #[arg(long, default_value = "auto", value_name = "auto|native|generic")]
    pub xdp_mode: XdpAttach,
    /// AF_XDP: data path. `auto` tries zero-copy then copy and names the
    /// fallback and the kernel's reason in the mode line; `require` is
    /// zero-copy or an error; `copy` is copy mode only.
    #[arg(long, default_value = "auto", value_name = "auto|require|copy")]
    pub zero_copy: ZeroCopyPolicy,
    /// DPDK: start the EAL on ordinary pages (`--no-huge`) even when
    /// hugepages are free. Without it the EAL takes hugepages when at least
    /// 128 MB are free, and the mode line says which it got and why.
    #[arg(long)]
    pub no_huge: bool,
    /// DPDK: receive frames for any destination MAC. It sets the interface's
    /// IFF_PROMISC, which zc clears when the port closes (or, after a crash,
    /// the next zc that opens the interface). Other backends refuse it.
    #[arg(long)]
    pub promiscuous: bool,
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
    /// Receive queues, one receive thread each, all feeding one handler
    /// thread (this one, --handler-pin) that tracks the merged feed. The
    /// socket backends (recvfrom, recvmmsg, uring) open a SO_REUSEPORT group
    /// of N sockets whose BPF program gives socket q what CPU q received
    /// (CPU modulo N): put NIC queue q's interrupt or NAPI thread on CPU q.
    /// afxdp takes device queues --queue .. --queue+N-1 on one UMEM; dpdk
    /// opens a net_af_xdp port on each of those device queues; dpdk-packet
    /// one net_af_packet port with N queues, filled by flow hash (one flow
    /// stays on one queue).
    /// Messages of one feed spread over queues arrive out of order between
    /// queues: a late one fills its gap (counted `late`), it is not lost.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub queues: u32,
    /// CPUs of the receive threads with --queues, in queue order (e.g. 2,3):
    /// by default queue q runs on CPU q modulo the online CPUs.
    #[arg(long, value_delimiter = ',', value_name = "CPU,...")]
    pub queue_cpus: Vec<usize>,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = crate::serve::seconds)]
    pub duration: Option<Duration>,
    /// Stop when nothing arrived for this many seconds (after the first message).
    #[arg(long, value_parser = crate::serve::seconds)]
    pub idle_exit: Option<Duration>,
    /// A message whose sequence number jumps more than this many numbers
    /// ahead is suspect: it is counted, not applied, until
    /// `--resync-confirm` messages continuing it confirm a real jump (so one
    /// spoofed datagram cannot make the stream look old). 0 accepts any jump.
    #[arg(long, default_value_t = 1 << 20)]
    pub resync_window: u64,
    /// Messages continuing a suspect jump that confirm it (at least 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub resync_confirm: u64,
    /// Open the receiver, then wait this many seconds before the first receive:
    /// the kernel queues what arrives meanwhile (up to the socket buffer or
    /// ring), and the run then measures the pure cost of draining it.
    #[arg(long, value_name = "SECS", value_parser = crate::serve::seconds)]
    pub hold: Option<Duration>,
    /// Exit 0 even when no message arrived (by default that exits 4).
    #[arg(long)]
    pub allow_empty: bool,
    /// Write a JSON line per second and a summary line to FILE (`-`: stdout).
    #[arg(long, value_name = "FILE", value_parser = crate::json::parse_target)]
    pub json: Option<PathBuf>,
    /// Serve the counters in the Prometheus text format on ADDR
    /// (http://ADDR/metrics), refreshed once a second.
    #[arg(long, value_name = "ADDR", conflicts_with = "pcap")]
    pub metrics: Option<SocketAddr>,
    #[command(flatten)]
    pub capture: crate::capture::CaptureArgs,
}

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
    /// Each receive queue's own figures, with `--queues` (empty otherwise).
    pub queues: Vec<QueueRun>,
    /// From the backend's receive timestamp (kernel or NIC) to the receive
    /// loop reading the datagram: the stack and wake-up cost. Empty when the
    /// backend gave no timestamps.
    pub stack_latency: LatencyRecorder,
}

/// The application-side clocks read once per burst, to compare receive
/// timestamps with (each on its own clock: `SO_TIMESTAMPING` software stamps
/// are CLOCK_REALTIME; a NIC's stamps are compared with CLOCK_REALTIME too,
/// which is right when `phc2sys` keeps the NIC's clock in step with it).
struct StackClock<'a> {
    realtime_ns: u64,
    recorder: &'a mut LatencyRecorder,
}

impl<'a> StackClock<'a> {
    fn new(recorder: &'a mut LatencyRecorder) -> Self {
        Self {
            realtime_ns: 0,
            recorder,
        }
    }

    /// Records `d`'s timestamp against `mono_now` or the realtime clock (read
    /// at the first realtime stamp of the burst).
    #[inline]
    fn record(&mut self, d: &Datagram<'_>, mono_now: u64) {
        let Some(ts) = d.rx_timestamp else { return };
        let now = match ts.clock {
            Clock::Monotonic => mono_now,
            Clock::Realtime | Clock::NicHardware => {
                if self.realtime_ns == 0 {
                    self.realtime_ns = realtime_ns();
                }
                self.realtime_ns
            }
        };
        self.recorder.record(ts.ns, now);
    }
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl RxRun {
    /// What a finished run measured: the handler's and the backend's figures.
    fn collect(
        h: &MarketDataHandler,
        rx: &dyn DynReceiver,
        (first_ns, last_ns): (u64, u64),
        cpu_ns: u64,
        queue_full: u64,
        stack_latency: LatencyRecorder,
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
            queues: Vec::new(),
            stack_latency,
        }
    }

    /// A run over a capture instead of a receiver (`zc recv --pcap`).
    pub(crate) fn collect_offline(
        h: &MarketDataHandler,
        mode: Mode,
        rx_stats: RxStats,
        (first_ns, last_ns): (u64, u64),
        cpu_ns: u64,
    ) -> Self {
        RxRun {
            report: h.report(),
            latency: h.latency().histogram().clone(),
            first_ns,
            last_ns,
            cpu_ns,
            rx_stats,
            mode,
            queue_full: 0,
            queues: Vec::new(),
            stack_latency: LatencyRecorder::new(),
        }
    }

    /// Anything lost: sequence numbers still missing, kernel drops, or a full
    /// pipeline queue.
    pub fn lost(&self) -> bool {
        self.report.seq.missing > 0
            || self.queue_full > 0
            || self.rx_stats.kernel_drops.unwrap_or(0) > 0
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

/// Receives on this thread, feeding `h` directly, and handing every datagram
/// (and its frame, where the backend has one) to `capture` when there is one.
pub fn receive_inline_with(
    rx: &mut dyn DynReceiver,
    h: &mut MarketDataHandler,
    when: StopWhen<'_>,
    mut status: Option<StatusFn<'_>>,
    mut capture: Option<&mut crate::capture::Recording>,
) -> Result<RxRun> {
    let mut first_ns = 0;
    let mut last_ns = 0;
    let start = Instant::now();
    let mut next_status = start + Duration::from_secs(1);
    let mut last_rx = Instant::now();
    let cpu0 = thread_cpu_ns();
    let wait = Some(Duration::from_millis(20));
    let mut stack = LatencyRecorder::new();
    loop {
        if should_stop(&when, h.messages(), last_rx, first_ns != 0) {
            break;
        }
        let mut now_ns = 0;
        let mut clock = StackClock::new(&mut stack);
        let n = match capture.as_deref_mut() {
            None => rx.recv_each(wait, &mut |d| {
                if now_ns == 0 {
                    now_ns = monotonic_ns();
                }
                clock.record(d, now_ns);
                h.on_datagram(d, now_ns);
            })?,
            Some(c) => {
                let n = rx.recv_each_frame(wait, &mut |d, frame| {
                    if now_ns == 0 {
                        now_ns = monotonic_ns();
                    }
                    clock.record(d, now_ns);
                    let handled = h.on_datagram(d, now_ns);
                    c.capture.record(d, frame);
                    if c.on_gap && matches!(handled, Handled::Message(SeqOutcome::Gap { .. })) {
                        c.capture.trigger();
                    }
                })?;
                c.capture.end_burst();
                n
            }
        };
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
    Ok(RxRun::collect(h, rx, (first_ns, last_ns), cpu_ns, 0, stack))
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

/// What a receive thread does with each datagram of a handed-off run: reads
/// the clock at the burst's first datagram (`now_ns` is 0 until then), times
/// the stack from the datagram's receive stamp, and queues the message for
/// the handler thread. False when the queue had no room (the message is
/// dropped, for the caller to count).
#[inline]
fn hand_off(
    queue: &ArrayQueue<Handoff>,
    clock: &mut StackClock<'_>,
    now_ns: &mut u64,
    d: &Datagram<'_>,
) -> bool {
    if *now_ns == 0 {
        *now_ns = monotonic_ns();
    }
    clock.record(d, *now_ns);
    queue.push(Handoff::of(d, *now_ns)).is_ok()
}

impl Handoff {
    /// The first `MESSAGE_LEN` bytes of `d`'s payload and its addresses.
    #[inline]
    fn of(d: &Datagram<'_>, now_ns: u64) -> Self {
        let len = d.payload.len().min(MESSAGE_LEN);
        let mut bytes = [0u8; MESSAGE_LEN];
        bytes[..len].copy_from_slice(&d.payload[..len]);
        Self {
            bytes,
            len: len as u8,
            src: d.src,
            dst: d.dst,
            now_ns,
        }
    }

    /// The handed-over message as a datagram for the handler.
    #[inline]
    fn datagram(&self) -> Datagram<'_> {
        Datagram {
            payload: &self.bytes[..usize::from(self.len)],
            src: self.src,
            dst: self.dst,
            rx_timestamp: None,
        }
    }
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
                            h.on_datagram(&m.datagram(), m.now_ns);
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
    let mut stack = LatencyRecorder::new();
    let start = Instant::now();
    let mut next_status = start + Duration::from_secs(1);
    let mut last_rx = Instant::now();
    let cpu0 = thread_cpu_ns();
    let result = loop {
        if should_stop(&when, pushed, last_rx, first_ns != 0) {
            break Ok(());
        }
        let mut now_ns = 0;
        let mut clock = StackClock::new(&mut stack);
        let r = rx.recv_each(Some(Duration::from_millis(20)), &mut |d| {
            if hand_off(&queue, &mut clock, &mut now_ns, d) {
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
        stack,
    ))
}

/// One receive queue's figures in a `--queues` run.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRun {
    /// Queue index (the socket's place in its reuseport group).
    pub queue: usize,
    /// The CPU its receive thread ran on.
    pub cpu: usize,
    /// Messages it handed to the handler.
    pub messages: u64,
    /// Messages its handoff queue had no room for.
    pub queue_full: u64,
    /// CPU time of its receive thread, nanoseconds.
    pub cpu_ns: u64,
    /// Its backend counters.
    pub rx: RxStats,
}

/// What one receive thread of [`receive_queues`] returns.
struct QueueThread {
    rx: Box<dyn DynReceiver + Send>,
    first_ns: u64,
    last_ns: u64,
    stack: LatencyRecorder,
    run: QueueRun,
}

/// Receives on one pinned thread per receiver and handles every message on
/// this thread: each receive thread hands its messages over its own bounded
/// queue, and the one handler takes them as they come, so sequence tracking
/// sees the whole feed. Messages of one feed spread over queues interleave
/// in any order; the tracker counts a message behind one from another queue
/// as late (filling its gap), not lost.
pub fn receive_queues(
    rxs: Vec<Box<dyn DynReceiver + Send>>,
    mut h: MarketDataHandler,
    depth: usize,
    cpus: &[usize],
    when: StopWhen<'_>,
    mut status: Option<StatusFn<'_>>,
) -> Result<RxRun> {
    let n = rxs.len();
    let queues: Vec<ArrayQueue<Handoff>> = (0..n).map(|_| ArrayQueue::new(depth.max(1))).collect();
    let finish = AtomicBool::new(false);
    let pushed: Vec<std::sync::atomic::AtomicU64> = (0..n)
        .map(|_| std::sync::atomic::AtomicU64::new(0))
        .collect();
    let threads = std::thread::scope(|s| -> Result<Vec<QueueThread>> {
        let handles: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(q, mut rx)| {
                let (queue, finish, pushed) = (&queues[q], &finish, &pushed[q]);
                let cpu = cpus[q % cpus.len()];
                std::thread::Builder::new()
                    .name(format!("zc-rx{q}"))
                    .spawn_scoped(s, move || -> Result<QueueThread> {
                        pin_current_thread(cpu)?;
                        let (mut first_ns, mut last_ns, mut full) = (0, 0, 0u64);
                        let mut stack = LatencyRecorder::new();
                        let cpu0 = thread_cpu_ns();
                        while !finish.load(Ordering::Acquire) {
                            let mut now_ns = 0;
                            let mut clock = StackClock::new(&mut stack);
                            let got = rx.recv_each(Some(Duration::from_millis(20)), &mut |d| {
                                if hand_off(queue, &mut clock, &mut now_ns, d) {
                                    pushed.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    full += 1;
                                }
                            })?;
                            if got > 0 {
                                if first_ns == 0 {
                                    first_ns = now_ns;
                                }
                                last_ns = now_ns;
                            }
                        }
                        let run = QueueRun {
                            queue: q,
                            cpu,
                            messages: pushed.load(Ordering::Relaxed),
                            queue_full: full,
                            cpu_ns: thread_cpu_ns() - cpu0,
                            rx: rx.stats(),
                        };
                        Ok(QueueThread {
                            rx,
                            first_ns,
                            last_ns,
                            stack,
                            run,
                        })
                    })
                    .map_err(|e| zc_core::Error::io("spawn a receive thread", e))
            })
            .collect::<Result<_>>()?;
        // The handler: this thread.
        let start = Instant::now();
        let mut next_status = start + Duration::from_secs(1);
        let mut last_rx = Instant::now();
        let mut idle = 0u32;
        let handle = |h: &mut MarketDataHandler| {
            let mut took = false;
            for queue in &queues {
                for _ in 0..256 {
                    let Some(m) = queue.pop() else { break };
                    h.on_datagram(&m.datagram(), m.now_ns);
                    took = true;
                }
            }
            took
        };
        loop {
            let stopping = should_stop(&when, h.messages(), last_rx, h.messages() > 0)
                || handles.iter().any(|t| t.is_finished());
            if stopping {
                finish.store(true, Ordering::Release);
                break;
            }
            if handle(&mut h) {
                last_rx = Instant::now();
                idle = 0;
            } else if idle < 1_000 {
                // Spin while traffic is likely; then give the CPU to the
                // receive thread that may share it.
                idle += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            if let Some(f) = status.as_mut() {
                if Instant::now() >= next_status {
                    next_status += Duration::from_secs(1);
                    let received = pushed.iter().map(|p| p.load(Ordering::Relaxed)).sum();
                    let stats = RxStats {
                        datagrams: received,
                        ..Default::default()
                    };
                    f(start.elapsed().as_secs_f64(), &h.report(), &stats);
                }
            }
        }
        let mut done = Vec::with_capacity(n);
        for t in handles {
            done.push(t.join().map_err(|_| {
                zc_core::Error::new(zc_core::ErrorKind::Io, "a receive thread panicked")
            })??);
        }
        // What the receive threads queued before they stopped.
        while handle(&mut h) {}
        Ok(done)
    })?;
    // From the first queue's counters (not the default's: its kernel drops
    // are "unknown", which would make the sum unknown).
    let mut rx_stats = threads[0].run.rx.clone();
    for t in &threads[1..] {
        rx_stats.add(&t.run.rx);
    }
    let mut stack = LatencyRecorder::new();
    let (mut first_ns, mut last_ns, mut cpu_ns, mut queue_full) = (u64::MAX, 0, 0, 0);
    for t in &threads {
        stack.merge(&t.stack);
        if t.first_ns != 0 {
            first_ns = first_ns.min(t.first_ns);
        }
        last_ns = last_ns.max(t.last_ns);
        cpu_ns += t.run.cpu_ns;
        queue_full += t.run.queue_full;
    }
    let mut mode = threads[0].rx.mode().clone();
    mode.details
        .push(format!("{n} queues, one receive thread each"));
    Ok(RxRun {
        report: h.report(),
        latency: h.latency().histogram().clone(),
        first_ns: if first_ns == u64::MAX { 0 } else { first_ns },
        last_ns,
        cpu_ns,
        rx_stats,
        mode,
        queue_full,
        queues: threads.into_iter().map(|t| t.run).collect(),
        stack_latency: stack,
    })
}

/// One `--json` line a second.
#[derive(Serialize)]
struct StatusLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Seconds since the start.
    elapsed_s: f64,
    /// Messages per second over the last interval.
    rate: f64,
    /// Payload Gbit/s over the last interval.
    gbps: f64,
    report: &'a HandlerReport,
    rx: &'a RxStats,
}

/// The last `--json` line.
#[derive(Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    mode: &'a Mode,
    /// Messages per second, first to last datagram.
    rate: f64,
    report: &'a HandlerReport,
    rx: &'a RxStats,
    /// Messages the pipeline queue had no room for.
    queue_full: u64,
    /// Where every frame that reached the backend went.
    accounting: Accounting,
    /// CPU time of the receive thread, nanoseconds.
    cpu_ns: u64,
    /// Each receive queue, with `--queues` (left out otherwise).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    queues: &'a [QueueRun],
    /// Anything lost: the exit code is then 3.
    lost: bool,
}

/// Where every frame that reached the backend went, the backend's refusals
/// (raw backends parse and filter frames themselves) and the handler's
/// together: the summary's `frames` and `drops` lines and the JSON
/// `accounting` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Frames or datagrams that reached the backend:
    /// `delivered + malformed_by_backend + not_udp + not_ours_by_backend`.
    pub reached: u64,
    /// Datagrams the backend handed to the handler.
    pub delivered: u64,
    /// Defective frames, refused by the backend or the handler.
    pub malformed: u64,
    /// `malformed` by the parser's reason.
    pub malformed_by_reason: MalformedCounts,
    /// Well-formed frames that were not IPv4/UDP (raw backends).
    pub not_udp: u64,
    /// Datagrams for another address or port, refused by the backend's
    /// filter or the handler.
    pub not_ours: u64,
    /// Delivered datagrams too short to be a market-data message.
    pub not_market_data: u64,
    /// Datagrams cut short by the receive buffer.
    pub truncated: u64,
    /// Dropped by the kernel or the device before the backend saw them,
    /// where the backend can tell.
    pub kernel_drops: Option<u64>,
}

impl Accounting {
    /// Adds up a run's backend and handler counters.
    pub fn of(run: &RxRun) -> Self {
        let (rx, d) = (&run.rx_stats, &run.report.drops);
        let mut by_reason = rx.malformed_by_reason;
        by_reason.merge(&d.malformed_by_reason);
        Self {
            reached: rx.datagrams + rx.malformed + rx.not_udp + rx.not_ours,
            delivered: rx.datagrams,
            malformed: rx.malformed + d.malformed,
            malformed_by_reason: by_reason,
            not_udp: rx.not_udp,
            not_ours: rx.not_ours + d.not_ours,
            not_market_data: d.not_market_data,
            truncated: rx.truncated,
            kernel_drops: rx.kernel_drops,
        }
    }
}

pub fn run(a: RecvArgs) -> Result<ExitCode> {
    if let Some(path) = &a.capture.pcap {
        return crate::offline::run(&a, path);
    }
    let stop = crate::stop_flag();
    let mut spec = RxSpec::new(a.backend.name()?, a.bind);
    spec.interface = a.interface.clone();
    spec.queue = a.queue;
    spec.batch = a.batch;
    spec.busy_poll = a.busy_poll;
    spec.kernel_busy_poll = a.kernel_busy_poll;
    spec.multicast = a.multicast;
    spec.timestamps = a.timestamps;
    spec.xdp_mode = a.xdp_mode;
    spec.zero_copy = a.zero_copy;
    spec.promiscuous = a.promiscuous;
    if a.no_huge {
        spec.dpdk_memory = DpdkMemory::NoHuge;
    }
    let mut json = a.json.as_deref().map(JsonOut::create).transpose()?;
    let metrics = a.metrics.map(MetricsServer::start).transpose()?;
    if let Some(m) = &metrics {
        eprintln!("zc recv: metrics on http://{}/metrics", m.local_addr());
    }
    let several = a.queues > 1;
    if several && (a.pin.is_some() || a.capture.capture.is_some()) {
        return Err(zc_core::Error::config(
            "with --queues, each receive thread is pinned by --queue-cpus and the handler by --handler-pin; --pin and --capture take one receive thread",
        ));
    }
    if !several && !a.queue_cpus.is_empty() {
        return Err(zc_core::Error::config(
            "--queue-cpus places the receive threads of --queues N: use --pin for one",
        ));
    }
    let queue_cpus = if a.queue_cpus.is_empty() {
        (0..a.queues as usize)
            .map(|q| q % zc_core::sys::online_cpus())
            .collect()
    } else if a.queue_cpus.len() == a.queues as usize {
        a.queue_cpus.clone()
    } else {
        return Err(zc_core::Error::config(format!(
            "--queue-cpus lists {} CPUs for {} queues: give one per queue",
            a.queue_cpus.len(),
            a.queues
        )));
    };
    if let Some(cpu) = if several { a.handler_pin } else { a.pin } {
        pin_current_thread(cpu)?;
    }
    let mut rxs = open_receivers(&spec, a.queues)?;
    for (q, rx) in rxs.iter().enumerate() {
        let on = if several {
            format!(" (queue {q}, CPU {})", queue_cpus[q])
        } else {
            String::new()
        };
        eprintln!("zc recv: {} on {}{on}", rx.mode(), a.bind);
    }
    let backend = rxs[0].mode().backend;
    if let Some(m) = &metrics {
        m.update(backend, 0.0, &HandlerReport::default(), &rxs[0].stats());
    }
    if a.pipeline && a.capture.capture.is_some() {
        return Err(zc_core::Error::config(
            "--capture runs on the receive thread: leave out --pipeline",
        ));
    }
    let mut capture = a.capture.start(rxs[0].as_ref(), a.interface.as_deref())?;
    if let Some(hold) = a.hold {
        eprintln!("zc recv: holding {hold:?} before the first receive");
        std::thread::sleep(hold);
    }
    let h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(a.bind.port()),
        tracker: TrackerConfig {
            resync_window: (a.resync_window > 0).then_some(a.resync_window),
            resync_confirm: a.resync_confirm,
            ..TrackerConfig::default()
        },
        ..Default::default()
    });
    let when = StopWhen {
        count: a.count,
        deadline: a.duration.and_then(zc_core::sys::deadline_after),
        idle: a.idle_exit,
        idle_armed: None,
        stop,
    };
    let quiet = crate::quiet();
    let mut prev = (0.0f64, 0u64, 0u64);
    let mut json_error = None;
    let mut status = |t: f64, r: &HandlerReport, s: &RxStats| {
        let dt = (t - prev.0).max(1e-9);
        let msgs = r.messages.max(s.datagrams);
        let rate = (msgs - prev.1) as f64 / dt;
        let gbps = (s.bytes - prev.2) as f64 * 8.0 / dt / 1e9;
        prev = (t, msgs, s.bytes);
        if let Some(m) = &metrics {
            m.update(backend, t, r, s);
        }
        if let Some(out) = json.as_mut().filter(|_| json_error.is_none()) {
            let line = StatusLine {
                kind: "status",
                elapsed_s: t,
                rate,
                gbps,
                report: r,
                rx: s,
            };
            // A failed write (a closed pipe, a full disk) ends the run
            // after this second, with the error; it does not lose the summary.
            if let Err(e) = out.line(&line) {
                json_error = Some(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
        if quiet {
            return;
        }
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
    let started = Instant::now();
    let run = if several {
        receive_queues(rxs, h, a.queue_depth, &queue_cpus, when, Some(&mut status))?
    } else if a.pipeline {
        receive_pipelined(
            rxs[0].as_mut(),
            h,
            a.queue_depth,
            a.handler_pin,
            when,
            Some(&mut status),
        )?
    } else {
        let mut h = h;
        receive_inline_with(
            rxs[0].as_mut(),
            &mut h,
            when,
            Some(&mut status),
            capture.as_mut(),
        )?
    };
    if let Some(e) = json_error {
        return Err(e);
    }
    let r = &run.report;
    if let Some(m) = &metrics {
        m.update(backend, started.elapsed().as_secs_f64(), r, &run.rx_stats);
    }
    if let Some(out) = json.as_mut() {
        write_json_summary(out, &run)?;
    }
    let mut code = print_summary(&run, a.json.as_deref());
    if let Some(c) = capture {
        crate::capture::print_report(&c.capture.finish()?);
    }
    if r.messages == 0 && !a.allow_empty {
        eprintln!(
            "zc recv: no message arrived on {} (exit {}; --allow-empty accepts an empty run)",
            a.bind,
            crate::exit::NOTHING_RECEIVED
        );
        code = ExitCode::from(crate::exit::NOTHING_RECEIVED);
    }
    Ok(code)
}

/// The summary's line on the stack latency, or how to get it.
fn stack_line(stack: &LatencyRecorder) -> String {
    if stack.histogram().is_empty() {
        return "stack        no receive timestamps (recvmmsg, uring and afxdp give them with --timestamps)"
            .to_owned();
    }
    let s = stack.summary();
    format!(
        "stack        receive timestamp -> application p50 {} p99 {} p99.9 {} max {} (clock skew {})",
        fmt_ns(s.p50),
        fmt_ns(s.p99),
        fmt_ns(s.p999),
        fmt_ns(s.max),
        stack.clock_skew()
    )
}

/// The last `--json` line of a receive run.
pub fn write_json_summary(out: &mut JsonOut, run: &RxRun) -> Result<()> {
    out.line(&SummaryLine {
        kind: "summary",
        mode: &run.mode,
        rate: run.rate(),
        report: &run.report,
        rx: &run.rx_stats,
        queue_full: run.queue_full,
        accounting: Accounting::of(run),
        cpu_ns: run.cpu_ns,
        queues: &run.queues,
        lost: run.lost(),
    })
}

/// The summary every receive run ends with, on stdout (or stderr when
/// stdout carries JSON); exit code 3 when anything was lost.
pub fn print_summary(run: &RxRun, json: Option<&std::path::Path>) -> ExitCode {
    let r = &run.report;
    let per_pkt = run.cpu_ns.checked_div(r.messages).unwrap_or(0);
    let acc = Accounting::of(run);
    let kernel = acc.kernel_drops.map_or("n/a".into(), |d| d.to_string());
    let reasons = if acc.malformed > 0 {
        format!(" ({})", acc.malformed_by_reason)
    } else {
        String::new()
    };
    let lines = [
        format!("backend      {}", run.mode),
        format!(
            "messages     {} ({} distinct) at {}",
            r.messages,
            r.seq.received,
            fmt_rate(run.rate())
        ),
        format!(
            "sequence     gaps {} missing {} duplicates {} late {} suspect {} resyncs {}",
            r.seq.gaps, r.seq.missing, r.seq.duplicates, r.seq.late, r.seq.suspect, r.seq.resyncs
        ),
        format!(
            "frames       reached {} = delivered {} + malformed {} + not-udp {} + not-ours {} (backend)",
            acc.reached,
            acc.delivered,
            run.rx_stats.malformed,
            acc.not_udp,
            run.rx_stats.not_ours
        ),
        format!(
            "drops        kernel {kernel} malformed {}{reasons} not-ours {} not-udp {} not-market-data {} truncated {} queue-full {}",
            acc.malformed,
            acc.not_ours,
            acc.not_udp,
            acc.not_market_data,
            acc.truncated,
            run.queue_full
        ),
        format!(
            "latency      p50 {} p99 {} p99.9 {} max {} (clock skew {})",
            fmt_ns(r.latency.p50),
            fmt_ns(r.latency.p99),
            fmt_ns(r.latency.p999),
            fmt_ns(r.latency.max),
            r.clock_skew
        ),
        stack_line(&run.stack_latency),
        format!(
            "cpu          {} receive thread{}, {per_pkt} ns/message",
            fmt_ns(run.cpu_ns),
            if run.queues.is_empty() { "" } else { "s" }
        ),
    ];
    let extra = |k: &str| {
        run.rx_stats
            .extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|e| e.1)
    };
    let polling = extra("poll_gaps").map(|n| {
        format!(
            "polling      {n} gaps longer than the threshold in the mode (longest {})",
            fmt_ns(extra("longest_poll_gap_us").unwrap_or(0) * 1000)
        )
    });
    let queues = run.queues.iter().map(|q| {
        let kernel = q.rx.kernel_drops.map_or("n/a".into(), |d| d.to_string());
        format!(
            "queue {:<6} {} messages on CPU {}, kernel drops {kernel}, queue-full {}, {} receive thread",
            q.queue,
            q.messages,
            q.cpu,
            q.queue_full,
            fmt_ns(q.cpu_ns)
        )
    });
    for l in lines.into_iter().chain(polling).chain(queues) {
        text!(json, "{l}");
    }
    if run.lost() {
        ExitCode::from(crate::exit::VERDICT)
    } else {
        ExitCode::SUCCESS
    }
}

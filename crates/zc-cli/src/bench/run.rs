//! Running `zc bench`: a testbed per backend, repetitions interleaved across
//! backends, and per repetition a max-rate run, a fixed-rate run, a
//! zero-loss search and latency at fractions of the zero-loss rate.

use super::args::{row_backend, BenchArgs, Generator};
use super::itch::{run_itch, ItchRep};
use super::report;
use crate::capture::Recording;
use crate::recv::{receive_inline_with, RxRun, StopWhen};
use crate::report::{fmt_ns, fmt_rate};
use serde::Serialize;
use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zc::{open_receiver, open_sender, RxSpec, TxSpec};
use zc_core::feed::{generate, FeedPlan, GenConfig};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::sys::pin_current_thread;
use zc_core::{Error, ErrorKind, Result, Sender};
use zc_os::cpu::thread_cpu_ns;
use zc_testbed::{Testbed, TestbedConfig};

const FEED_PORT: u16 = 9000;

/// One repetition of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct Rep {
    pub max_rate_pps: f64,
    pub max_offered_pps: f64,
    pub max_run_lost: u64,
    pub max_cpu_ns_per_msg: f64,
    /// The drain run: the receiver holds while --drain-count messages queue
    /// up, then empties its queue as fast as it can; the rate it read them at
    /// (first to last message).
    pub drain_pps: f64,
    /// Messages the generator sent in the drain run.
    pub drain_sent: u64,
    /// Distinct messages the receiver got in the drain run.
    pub drain_received: u64,
    /// What the kernel or device counted as dropped in the drain run (queue
    /// full), where the backend can tell.
    pub drain_kernel_drops: Option<u64>,
    pub zero_loss_pps: f64,
    pub fixed_offered_pps: f64,
    pub cpu_ns_per_msg: f64,
    /// Busy time of every CPU (`/proc/stat`: user, system, irq, softirq)
    /// during the fixed-rate run, less the generator thread's own CPU time,
    /// per delivered message: the receive thread and the kernel work the path
    /// causes anywhere (softirq, NAPI threads). Any other load on the
    /// machine counts too: meaningful on a quiet machine only.
    pub total_cpu_ns_per_msg: f64,
    /// The fixed-rate run's generator thread CPU time (subtracted above).
    pub fixed_generator_cpu_ns: u64,
    /// Messages the generator sent in the fixed-rate run.
    pub fixed_sent: u64,
    /// Distinct messages the receiver got in the fixed-rate run.
    pub fixed_received: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub fixed_run_lost: u64,
    pub kernel_drops: Option<u64>,
    /// Kernel receive timestamp to application at the fixed rate (with
    /// `--stack-latency`, on backends with timestamps).
    pub stack_p50_ns: Option<u64>,
    /// See `stack_p50_ns`.
    pub stack_p99_ns: Option<u64>,
    pub latency_at: Vec<LatencyAt>,
    /// For a `+capture` row: records the capture dropped (queue full) in the
    /// max-rate run, and records written in it.
    pub capture_dropped: Option<u64>,
    pub capture_written: Option<u64>,
    /// The ITCH feed run, with `--itch`.
    pub itch: Option<ItchRep>,
}

/// Latency at a fraction of the zero-loss rate, from intended send times.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyAt {
    pub percent_of_zero_loss: f64,
    pub offered_pps: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub lost: u64,
}

/// All repetitions of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendResult {
    pub name: String,
    pub mode: String,
    pub mode_details: Vec<String>,
    pub reps: Vec<Rep>,
    /// Every repetition's fixed-rate latencies, merged (for the chart).
    #[serde(skip)]
    pub latency: Option<hdrhistogram::Histogram<u64>>,
}

/// What one repetition of one backend gave: its figures, the mode it ran
/// in, and the latencies of its fixed-rate run.
struct BackendRep {
    rep: Rep,
    mode: zc_core::Mode,
    latency: hdrhistogram::Histogram<u64>,
}

/// What one run measured.
struct RunOut {
    sent: u64,
    offered_pps: f64,
    rx: RxRun,
    /// Busy time of every CPU from just before the generator started to the
    /// receiver's end.
    machine_busy_ns: u64,
    /// The generator thread's own CPU time.
    generator_cpu_ns: u64,
    /// A `+capture` row's capture: (written, dropped).
    capture: Option<(u64, u64)>,
}

impl RunOut {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.rx.report.seq.received)
    }
}

/// Runs the whole comparison and writes its report.
pub fn run(mut a: BenchArgs) -> Result<ExitCode> {
    a.settle()?;
    let stop = crate::stop_flag();
    // One identical veth pair per backend: a backend that attaches to a device
    // (an XDP program, a DPDK port kept for the process) would otherwise take
    // the traffic meant for the others.
    let mut testbeds = Vec::new();
    for i in 0..a.backends.len() {
        let subnet = a.subnet.checked_add(i as u8).ok_or_else(|| {
            Error::config(format!(
                "--subnet {} leaves no room for {} testbeds below 256",
                a.subnet,
                a.backends.len()
            ))
        })?;
        let cfg = TestbedConfig {
            queues: a.queues,
            ..TestbedConfig::new(&format!("{}{i}", a.testbed), subnet)
        };
        let tb = Testbed::create(&cfg)?;
        if a.generator == Generator::Xdp {
            prepare_xdp_receiving_end(&tb, a.napi_cpu.unwrap_or(a.tx_cpu))?;
        }
        eprintln!(
            "zc bench: {:<11} on {} ({}) <-> {} ({}) in namespace {}",
            a.backends[i], tb.host_if, tb.host_addr, tb.peer_if, tb.peer_addr, tb.netns
        );
        testbeds.push(tb);
    }
    eprintln!("zc bench: {} repetitions, backends interleaved", a.reps);
    let mut results: Vec<BackendResult> = a
        .backends
        .iter()
        .map(|n| BackendResult {
            name: n.to_string(),
            mode: String::new(),
            mode_details: vec![],
            reps: vec![],
            latency: None,
        })
        .collect();
    let started = Instant::now();
    for rep in 0..a.reps {
        for (r, tb) in results.iter_mut().zip(&testbeds) {
            if stop.load(Ordering::Relaxed) {
                zc::shutdown();
                return Err(Error::new(
                    ErrorKind::Io,
                    "interrupted; the testbed was removed",
                ));
            }
            let one = bench_backend(tb, &a, &r.name, stop).inspect_err(|_| zc::shutdown())?;
            eprintln!(
                "[{:>4.0}s rep {}/{}] {:<10} max {}  zero-loss {}  cpu {:.0} ns/msg (all CPUs {:.0})  p50 {} p99 {}",
                started.elapsed().as_secs_f64(),
                rep + 1,
                a.reps,
                r.name,
                fmt_rate(one.rep.max_rate_pps),
                fmt_rate(one.rep.zero_loss_pps),
                one.rep.cpu_ns_per_msg,
                one.rep.total_cpu_ns_per_msg,
                fmt_ns(one.rep.p50_ns),
                fmt_ns(one.rep.p99_ns)
            );
            if let Some(i) = &one.rep.itch {
                eprintln!(
                    "{:>22} itch: send to book p50 {} p99 {}  delivered {}  lost {}",
                    r.name,
                    fmt_ns(i.p50_ns),
                    fmt_ns(i.p99_ns),
                    i.delivered,
                    i.lost
                );
            }
            r.mode = one.mode.to_string();
            r.mode_details = one.mode.details;
            r.reps.push(one.rep);
            match &mut r.latency {
                Some(h) => {
                    let _ = h.add(&one.latency);
                }
                None => r.latency = Some(one.latency),
            }
        }
    }
    // Close the ports that backends keep open before their interface goes.
    zc::shutdown();
    drop(testbeds);
    report::print_table(&a, &results);
    report::write_outputs(&a, &results)?;
    Ok(ExitCode::SUCCESS)
}

/// Max-rate run, fixed-rate run and zero-loss search for one backend.
fn bench_backend(
    tb: &Testbed,
    a: &BenchArgs,
    name: &str,
    stop: &'static AtomicBool,
) -> Result<BackendRep> {
    let max = run_once(tb, a, name, None, a.count, stop)?;
    let drain = run_once_holding(tb, a, name, stop)?;
    let fixed = run_once(tb, a, name, Some(a.fixed_rate), a.fixed_count, stop)?;
    let mut good = if fixed.lost() == 0 {
        fixed.offered_pps
    } else {
        0.0
    };
    let (mut lo, mut hi) = (0.0f64, max.rx.rate().max(max.offered_pps) * 1.2);
    for _ in 0..a.search_steps {
        let mid = (lo + hi) / 2.0;
        if mid < 1.0 {
            break;
        }
        let r = run_once(tb, a, name, Some(mid), a.search_count, stop)?;
        if r.lost() == 0 {
            good = good.max(r.offered_pps.min(mid));
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut latency_at = Vec::new();
    for &pct in &a.latency_at {
        let rate = good * pct / 100.0;
        if rate < 1.0 {
            continue;
        }
        let count = (rate as u64).max(1_000).min(a.fixed_count.max(1_000));
        let r = run_once(tb, a, name, Some(rate), count, stop)?;
        let l = r.rx.report.latency;
        latency_at.push(LatencyAt {
            percent_of_zero_loss: pct,
            offered_pps: r.offered_pps,
            p50_ns: l.p50,
            p99_ns: l.p99,
            p999_ns: l.p999,
            max_ns: l.max,
            lost: r.lost(),
        });
    }
    // A `+capture` row's feed run would be its backend's again: only the
    // plain rows carry the ITCH feed.
    let itch = (a.itch && !row_backend(name).1)
        .then(|| run_itch(tb, a, name, stop))
        .transpose()?;
    let l = fixed.rx.report.latency;
    let stack =
        (!fixed.rx.stack_latency.histogram().is_empty()).then(|| fixed.rx.stack_latency.summary());
    let rep = Rep {
        max_rate_pps: max.rx.rate(),
        max_offered_pps: max.offered_pps,
        max_run_lost: max.lost(),
        max_cpu_ns_per_msg: max.rx.cpu_ns as f64 / max.rx.report.messages.max(1) as f64,
        drain_pps: drain.rx.rate(),
        drain_sent: drain.sent,
        drain_received: drain.rx.report.seq.received,
        drain_kernel_drops: drain.rx.rx_stats.kernel_drops,
        zero_loss_pps: good,
        fixed_offered_pps: fixed.offered_pps,
        cpu_ns_per_msg: fixed.rx.cpu_ns as f64 / fixed.rx.report.messages.max(1) as f64,
        total_cpu_ns_per_msg: fixed.machine_busy_ns.saturating_sub(fixed.generator_cpu_ns) as f64
            / fixed.rx.report.messages.max(1) as f64,
        fixed_generator_cpu_ns: fixed.generator_cpu_ns,
        fixed_sent: fixed.sent,
        fixed_received: fixed.rx.report.seq.received,
        p50_ns: l.p50,
        p99_ns: l.p99,
        p999_ns: l.p999,
        max_ns: l.max,
        fixed_run_lost: fixed.lost(),
        kernel_drops: fixed.rx.rx_stats.kernel_drops,
        stack_p50_ns: stack.map(|s| s.p50),
        stack_p99_ns: stack.map(|s| s.p99),
        latency_at,
        capture_written: max.capture.map(|c| c.0),
        capture_dropped: max.capture.map(|c| c.1),
        itch,
    };
    Ok(BackendRep {
        rep,
        mode: fixed.rx.mode.clone(),
        latency: fixed.rx.latency,
    })
}

/// One run: a receiver of row `row` on the host end, the generator in the
/// peer namespace.
fn run_once(
    tb: &Testbed,
    a: &BenchArgs,
    row: &str,
    rate: Option<f64>,
    count: u64,
    stop: &'static AtomicBool,
) -> Result<RunOut> {
    one_run(tb, a, row, rate, count, false, stop)
}

/// The drain run: the receiver opens, then reads nothing until the
/// generator has sent --drain-count messages at full speed and the
/// receiving end has had [`DRAIN_SETTLE`] to queue them; then it empties its
/// queue as fast as it can.
fn run_once_holding(
    tb: &Testbed,
    a: &BenchArgs,
    row: &str,
    stop: &'static AtomicBool,
) -> Result<RunOut> {
    one_run(tb, a, row, None, a.drain_count, true, stop)
}

/// After the generator of a drain run is done, how long the receiver still
/// holds: the receiving end's NAPI work may still be moving the last frames
/// into the queue.
const DRAIN_SETTLE: Duration = Duration::from_millis(50);

/// A run of [`run_once`], the receiver holding first when `hold`.
fn one_run(
    tb: &Testbed,
    a: &BenchArgs,
    row: &str,
    rate: Option<f64>,
    count: u64,
    hold: bool,
    stop: &'static AtomicBool,
) -> Result<RunOut> {
    let (name, capture) = row_backend(row);
    let feed = SocketAddrV4::new(tb.host_addr, FEED_PORT);
    let plan = FeedPlan::new(count);
    let mut rx_spec = RxSpec::new(name, feed);
    rx_spec.batch = a.batch;
    // The recvfrom baseline is plain blocking recvfrom by definition.
    rx_spec.busy_poll = a.busy_poll && name != "recvfrom";
    rx_spec.kernel_busy_poll = a
        .kernel_busy_poll
        .filter(|_| matches!(name, "recvmmsg" | "uring" | "afxdp"));
    rx_spec.max_payload = a.payload.max(64);
    rx_spec.timestamps = a.stack_latency && zc::backend(name)?.rx_timestamps;
    if zc::backend(name)?.needs_interface {
        rx_spec.interface = Some(tb.host_if.clone());
    }
    if zc::backend(name)?.feature == "dpdk" {
        rx_spec.dpdk_memory = a.dpdk_memory();
    }
    let gen_done = Arc::new(AtomicBool::new(false));
    // Says the receiver is open; dropped unsent when opening failed, and the
    // thread's own result then carries the error.
    let (ready_tx, ready_rx) = mpsc::sync_channel::<()>(1);
    let capture_path = capture.then(|| {
        std::env::temp_dir().join(format!(
            "zc-bench-{}-{}.pcap",
            std::process::id(),
            tb.host_if
        ))
    });
    let receiver = {
        let gen_done = Arc::clone(&gen_done);
        let rx_cpu = a.rx_cpu;
        let interface = tb.host_if.clone();
        std::thread::Builder::new()
            .name(format!("zc-rx-{name}"))
            .spawn(move || -> Result<(RxRun, Option<(u64, u64)>)> {
                pin_current_thread(rx_cpu)?;
                let mut rx = open_receiver(&rx_spec)?;
                let mut recording = match &capture_path {
                    Some(path) => Some(start_capture(rx.as_ref(), path, &interface)?),
                    None => None,
                };
                let _ = ready_tx.send(());
                if hold {
                    while !gen_done.load(Ordering::Acquire) && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(DRAIN_SETTLE);
                }
                let mut h = MarketDataHandler::new(HandlerConfig {
                    feed_port: Some(FEED_PORT),
                    ..Default::default()
                });
                let when = StopWhen {
                    count: Some(plan.expected().sent),
                    deadline: None,
                    idle: Some(Duration::from_millis(300)),
                    idle_armed: Some(&gen_done),
                    stop,
                };
                let run = receive_inline_with(rx.as_mut(), &mut h, when, None, recording.as_mut());
                let captured = match recording {
                    Some(r) => {
                        let report = r.capture.finish()?;
                        for f in &report.files {
                            let _ = std::fs::remove_file(&f.path);
                        }
                        Some((report.stats.written, report.stats.dropped))
                    }
                    None => None,
                };
                Ok((run?, captured))
            })
            .map_err(|e| Error::io("spawn the receive thread", e))?
    };
    if ready_rx.recv().is_err() {
        return Err(match receiver.join() {
            Ok(Err(e)) => e,
            _ => Error::new(
                ErrorKind::Io,
                format!("the {name} receive thread died while opening"),
            ),
        });
    }
    let gen_spec = GeneratorSpec::new(tb, a, feed, rate.is_some())?;
    let gen_cfg = GenConfig {
        plan,
        rate,
        symbols: 64,
        payload_len: a.payload,
        batch: gen_spec.batch(a.batch),
    };
    let tx_cpu = a.tx_cpu;
    let busy_before = machine_busy_ns()?;
    let generator = tb
        .spawn_in_peer(move || {
            pin_current_thread(tx_cpu)?;
            let cpu_before = thread_cpu_ns();
            let mut tx = gen_spec.open()?;
            let g = generate(tx.as_mut(), &gen_cfg, stop)?;
            Ok((g, thread_cpu_ns().saturating_sub(cpu_before)))
        })
        .inspect_err(|_| {
            // Let the receiver's idle timer end it.
            gen_done.store(true, Ordering::Relaxed);
        })?;
    let gen = generator.join();
    gen_done.store(true, Ordering::Release);
    let (rx, capture) = receiver
        .join()
        .map_err(|_| Error::new(ErrorKind::Io, format!("the {name} receive thread panicked")))??;
    let machine_busy_ns = machine_busy_ns()?.saturating_sub(busy_before);
    if stop.load(Ordering::Relaxed) {
        return Err(Error::new(ErrorKind::Io, "interrupted"));
    }
    let (gen, generator_cpu_ns) =
        gen.map_err(|_| Error::new(ErrorKind::Io, "the generator thread panicked"))??;
    Ok(RunOut {
        sent: gen.sent,
        offered_pps: gen.sent as f64 / gen.elapsed.as_secs_f64().max(1e-9),
        rx,
        machine_busy_ns,
        generator_cpu_ns,
        capture,
    })
}

/// A capture of everything `rx` receives into `path` (pcap), as
/// `zc recv --capture` makes it: frames as received for the raw backends,
/// synthesized ones for the sockets.
fn start_capture(
    rx: &dyn zc::DynReceiver,
    path: &std::path::Path,
    interface: &str,
) -> Result<Recording> {
    let mut cfg = zc_capture::CaptureConfig::new(path);
    cfg.raw_frames = zc::backend(rx.mode().backend)?.needs_interface;
    cfg.source = rx.mode().to_string();
    cfg.interface = interface.to_owned();
    Ok(Recording {
        capture: zc_capture::Capture::start(cfg)?,
        on_gap: false,
    })
}

/// NAPI on the receiving end, which the xdp generator needs (it transmits
/// into the veth's NAPI ring), threaded so that the receive work runs in a
/// kernel thread pinned to `cpu` instead of in the generator's softirq; under
/// SCHED_FIFO, as softirq work runs, so that a spinning generator on the same
/// CPU does not starve it into refusing frames.
fn prepare_xdp_receiving_end(tb: &Testbed, cpu: usize) -> Result<()> {
    tb.enable_threaded_napi()?;
    tb.pin_napi_threads(cpu)?;
    tb.set_napi_fifo_priority(NAPI_FIFO_PRIORITY)?;
    Ok(())
}

/// SCHED_FIFO priority of the receiving end's NAPI threads with the xdp
/// generator: the middle of the range, ahead of every ordinary thread.
const NAPI_FIFO_PRIORITY: u8 = 50;

/// What the generator thread opens: the XDP live-frames generator or a
/// backend's sender.
enum GeneratorSpec {
    #[cfg(feature = "afxdp")]
    Xdp(zc_xdpgen::XdpGenConfig),
    Backend(TxSpec),
}

impl GeneratorSpec {
    fn new(tb: &Testbed, a: &BenchArgs, feed: SocketAddrV4, paced: bool) -> Result<Self> {
        let sender = match a.generator {
            Generator::Xdp if !paced => return Self::xdp(tb, a, feed),
            Generator::Xdp => a.paced_generator(),
            Generator::Sender(b) => b,
        };
        let name = sender.name()?;
        let mut tx_spec = TxSpec::new(name, SocketAddrV4::new(tb.peer_addr, 0), feed);
        tx_spec.batch = a.batch;
        tx_spec.max_payload = a.payload.max(64);
        tx_spec.dst_mac = Some(tb.host_mac);
        if zc::backend(name)?.needs_interface {
            tx_spec.interface = Some(tb.peer_if.clone());
        }
        if zc::backend(name)?.feature == "dpdk" {
            tx_spec.dpdk_memory = a.dpdk_memory();
        }
        Ok(Self::Backend(tx_spec))
    }

    /// The XDP live-frames generator from the peer end of `tb`.
    #[cfg(feature = "afxdp")]
    fn xdp(tb: &Testbed, a: &BenchArgs, feed: SocketAddrV4) -> Result<Self> {
        let mut cfg = zc_xdpgen::XdpGenConfig::new(
            &tb.peer_if,
            tb.peer_mac,
            tb.host_mac,
            SocketAddrV4::new(tb.peer_addr, GENERATOR_PORT),
            feed,
        );
        cfg.payload_len = a.payload;
        Ok(Self::Xdp(cfg))
    }

    /// Without the afxdp feature there is no XDP generator (`settle` already
    /// refuses `--generator xdp` then).
    #[cfg(not(feature = "afxdp"))]
    fn xdp(_: &Testbed, _: &BenchArgs, _: SocketAddrV4) -> Result<Self> {
        Err(Error::config(
            "--generator xdp needs a zc built with the afxdp feature",
        ))
    }

    /// Messages per send call: `batch` for a backend's sender; the most one
    /// call carries for xdp (64 per call offered 17-27 kpps with the NAPI
    /// thread on the generator's CPU, 1024 per call 0.29-0.52 Mpps).
    fn batch(&self, batch: usize) -> usize {
        match self {
            #[cfg(feature = "afxdp")]
            Self::Xdp(_) => zc_xdpgen::RING,
            Self::Backend(_) => batch,
        }
    }

    fn open(&self) -> Result<Box<dyn Sender + Send>> {
        match self {
            #[cfg(feature = "afxdp")]
            Self::Xdp(cfg) => Ok(Box::new(zc_xdpgen::XdpGenerator::open(cfg)?)),
            Self::Backend(spec) => open_sender(spec),
        }
    }
}

/// UDP source port of the xdp generator's frames (it has no socket to bind).
#[cfg(feature = "afxdp")]
const GENERATOR_PORT: u16 = 7000;

/// Busy time of every CPU so far (see [`zc_os::cpu::machine_busy_ns`]).
fn machine_busy_ns() -> Result<u64> {
    zc_os::cpu::machine_busy_ns().map_err(|e| Error::io("read /proc/stat", e))
}

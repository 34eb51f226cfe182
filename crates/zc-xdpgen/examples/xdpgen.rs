//! Runs the XDP live-frames generator on a veth testbed it creates, into the
//! XDP sink (the generator's own ceiling) and into any zc receiver, and counts
//! where every frame went. Needs root; see `docs/generator.md`.
//!
//! ```sh
//! cargo run --release -p zc-xdpgen --example xdpgen -- sink --reps 5
//! cargo run --release -p zc-xdpgen --example xdpgen -- sink recvfrom recvmmsg uring afxdp dpdk
//! cargo run --release -p zc-xdpgen --example xdpgen -- recvmmsg --rate 50000 --count 200000
//! ```

use clap::Parser;
use serde_json::{json, Value};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zc::{open_receiver, RxSpec};
use zc_core::error::{Error, ErrorKind, Result};
use zc_core::feed::{generate, FeedPlan, GenConfig, GenReport};
use zc_core::handler::{HandlerConfig, HandlerReport, MarketDataHandler};
use zc_core::sys::{monotonic_ns, online_cpus, pin_current_thread};
use zc_testbed::{Testbed, TestbedConfig};
use zc_xdpgen::{GenCounters, XdpGenConfig, XdpGenerator, XdpSink, RING};

const FEED_PORT: u16 = 9000;

/// The XDP live-frames generator (BPF_PROG_RUN) on a veth testbed: its
/// ceiling into an XDP drop program, and what each receiver takes from it.
///
/// Creates the testbed `zcxgen` (198.18.250.0/24), turns threaded NAPI on at
/// the receiving end, and for each repetition runs every target in turn: the
/// generator in the peer namespace sends COUNT messages (flat out, or at
/// --rate), the target receives on the host end. Every frame is accounted
/// for: received, refused by the full veth ring, or dropped by the receiver
/// (socket buffer, AF_XDP ring, DPDK).
#[derive(Parser, Debug)]
#[command(name = "xdpgen")]
struct Args {
    /// What receives: `sink` (an XDP program that counts and drops, the
    /// least receive work there is) or a zc backend (recvfrom, recvmmsg,
    /// uring, afxdp, dpdk, dpdk-packet).
    #[arg(default_value = "sink")]
    targets: Vec<String>,
    /// Messages per run.
    #[arg(long, default_value_t = 2_000_000)]
    count: u64,
    /// Messages per second; flat out when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Repetitions (targets interleaved in each).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// UDP payload bytes (32 to 1024).
    #[arg(long, default_value_t = 32)]
    payload: usize,
    /// CPU of the generator thread [default: the last CPU].
    #[arg(long)]
    gen_cpu: Option<usize>,
    /// CPU of the receiving end's NAPI thread.
    #[arg(long, default_value_t = 0)]
    napi_cpu: usize,
    /// Run the NAPI thread(s) under SCHED_FIFO at this priority (1-99), ahead
    /// of ordinary threads as softirq work would be.
    #[arg(long)]
    napi_fifo: Option<u8>,
    /// CPU of the receiving thread.
    #[arg(long, default_value_t = 0)]
    rx_cpu: usize,
    /// No threaded NAPI: the receive work runs in the generator's softirq, on
    /// the generator's CPU (GRO is still turned on, for NAPI).
    #[arg(long)]
    softirq: bool,
    /// Frames the kernel builds per flush (1 to 256).
    #[arg(long, default_value_t = 64)]
    kernel_batch: u32,
    /// Messages per BPF_PROG_RUN when flat out, and most per run when paced.
    #[arg(long, default_value_t = RING)]
    batch: usize,
    /// Print every run as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One run of one target.
struct Run {
    target: String,
    gen: GenReport,
    counters: GenCounters,
    /// Messages the target took (the sink: frames it dropped).
    received: u64,
    /// Drops the receiver counted (socket buffer, AF_XDP ring, DPDK).
    rx_drops: u64,
    handler: Option<HandlerReport>,
    gen_cpu_ns: u64,
    napi_cpu_ns: u64,
    rx_cpu_ns: u64,
    /// Receive time: first to last message.
    rx_elapsed: Duration,
}

impl Run {
    fn accounted(&self) -> bool {
        self.counters.built == self.received + self.rx_drops + self.counters.ring_full
    }

    fn json(&self) -> Value {
        let h = self.handler.map(|h| {
            json!({
                "messages": h.messages,
                "gaps": h.seq.gaps,
                "missing": h.seq.missing,
                "duplicates": h.seq.duplicates,
                "latency_ns": {"p50": h.latency.p50, "p99": h.latency.p99, "p999": h.latency.p999, "max": h.latency.max},
            })
        });
        json!({
            "target": self.target,
            "built": self.counters.built,
            "delivered": self.counters.delivered,
            "ring_full": self.counters.ring_full,
            "received": self.received,
            "rx_drops": self.rx_drops,
            "accounted": self.accounted(),
            "prog_runs": self.counters.runs,
            "gen_elapsed_s": self.gen.elapsed.as_secs_f64(),
            "rx_elapsed_s": self.rx_elapsed.as_secs_f64(),
            "built_mpps": mpps(self.counters.built, self.gen.elapsed),
            "received_mpps": mpps(self.received, self.rx_elapsed),
            "gen_cpu_ns_per_built": per(self.gen_cpu_ns, self.counters.built),
            "napi_cpu_ns_per_delivered": per(self.napi_cpu_ns, self.counters.delivered),
            "rx_cpu_ns_per_received": per(self.rx_cpu_ns, self.received),
            "handler": h,
        })
    }
}

fn mpps(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64().max(1e-9) / 1e6
}

fn per(ns: u64, n: u64) -> f64 {
    ns as f64 / n.max(1) as f64
}

fn thread_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// CPU time of kernel threads `tids` (first field of /proc/TID/schedstat).
fn threads_cpu_ns(tids: &[i32]) -> u64 {
    tids.iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{t}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `f` until it stops changing for 100 ms (or 2 s pass).
fn settled(mut f: impl FnMut() -> Result<u64>) -> Result<u64> {
    let t = Instant::now();
    let mut last = f()?;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = f()?;
        if now == last || t.elapsed() > Duration::from_secs(2) {
            return Ok(now);
        }
        last = now;
    }
}

/// Starts the generator in the peer namespace, pinned to `cpu`.
fn start_generator(
    tb: &Testbed,
    a: &Args,
    cpu: usize,
) -> Result<std::thread::JoinHandle<Result<(GenReport, GenCounters, u64)>>> {
    let mut cfg = XdpGenConfig::new(
        &tb.peer_if,
        tb.peer_mac,
        tb.host_mac,
        SocketAddrV4::new(tb.peer_addr, 7000),
        SocketAddrV4::new(tb.host_addr, FEED_PORT),
    );
    cfg.payload_len = a.payload;
    cfg.kernel_batch = a.kernel_batch;
    // Flat out, each frame carries its build time; paced, its intended time.
    cfg.stamp_at_send = a.rate.is_none();
    let gen = GenConfig {
        plan: FeedPlan::new(a.count),
        rate: a.rate,
        symbols: 64,
        payload_len: a.payload,
        batch: a.batch,
    };
    tb.spawn_in_peer(move || {
        pin_current_thread(cpu)?;
        let mut tx = XdpGenerator::open(&cfg)?;
        let cpu0 = thread_cpu_ns();
        let report = generate(&mut tx, &gen, &AtomicBool::new(false))?;
        let cpu_ns = thread_cpu_ns() - cpu0;
        Ok((report, tx.counters()?, cpu_ns))
    })
}

fn join<T>(h: std::thread::JoinHandle<Result<T>>, what: &str) -> Result<T> {
    h.join()
        .map_err(|_| Error::new(ErrorKind::Io, format!("the {what} thread panicked")))?
}

fn run_sink(tb: &Testbed, a: &Args, gen_cpu: usize, napi: &[i32]) -> Result<Run> {
    let sink = XdpSink::attach(&tb.host_if, FEED_PORT)?;
    let napi0 = threads_cpu_ns(napi);
    let gen = start_generator(tb, a, gen_cpu)?;
    let (report, counters, gen_cpu_ns) = join(gen, "generator")?;
    let received = settled(|| sink.dropped())?;
    Ok(Run {
        target: "sink".to_owned(),
        gen: report,
        counters,
        received,
        rx_drops: 0,
        handler: None,
        gen_cpu_ns,
        napi_cpu_ns: threads_cpu_ns(napi) - napi0,
        rx_cpu_ns: 0,
        // The sink has no clock of its own: it takes frames while they are built.
        rx_elapsed: report.elapsed,
    })
}

fn run_backend(tb: &Testbed, a: &Args, name: &str, gen_cpu: usize, napi: &[i32]) -> Result<Run> {
    let mut spec = RxSpec::new(name, SocketAddrV4::new(tb.host_addr, FEED_PORT));
    spec.max_payload = a.payload.max(64);
    if zc::backend(name)?.needs_interface {
        spec.interface = Some(tb.host_if.clone());
    }
    let gen_done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<()>>(1);
    let (rx_cpu, want) = (a.rx_cpu, a.count);
    let done = Arc::clone(&gen_done);
    let receiver = std::thread::Builder::new()
        .name(format!("rx-{name}"))
        .spawn(move || -> Result<(HandlerReport, u64, u64, Duration)> {
            let opened = pin_current_thread(rx_cpu).and_then(|()| open_receiver(&spec));
            let mut rx = match opened {
                Ok(rx) => {
                    let _ = ready_tx.send(Ok(()));
                    rx
                }
                Err(e) => {
                    let msg = e.to_string();
                    let _ = ready_tx.send(Err(e));
                    return Err(Error::new(ErrorKind::Io, msg));
                }
            };
            let drops0 = rx.stats().kernel_drops.unwrap_or(0);
            let mut h = MarketDataHandler::new(HandlerConfig {
                feed_port: Some(FEED_PORT),
                ..Default::default()
            });
            let cpu0 = thread_cpu_ns();
            let (mut first, mut last) = (None, Instant::now());
            let mut idle_since = Instant::now();
            while h.report().messages < want {
                let mut now = 0;
                let n = rx.recv_each(Some(Duration::from_millis(20)), &mut |d| {
                    if now == 0 {
                        now = monotonic_ns();
                    }
                    h.on_datagram(d, now);
                })?;
                if n > 0 {
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                    idle_since = last;
                } else if done.load(Ordering::Acquire)
                    && idle_since.elapsed() > Duration::from_millis(300)
                {
                    break;
                }
            }
            let cpu_ns = thread_cpu_ns() - cpu0;
            let drops = rx.stats().kernel_drops.unwrap_or(0) - drops0;
            let elapsed = first.map_or(Duration::ZERO, |f| last - f);
            Ok((h.report(), drops, cpu_ns, elapsed))
        })
        .map_err(|e| Error::io("spawn the receive thread", e))?;
    let ready = ready_rx
        .recv()
        .unwrap_or_else(|_| Err(Error::new(ErrorKind::Io, "the receive thread died")));
    if let Err(e) = ready {
        let _ = receiver.join();
        return Err(e);
    }
    let napi0 = threads_cpu_ns(napi);
    let gen = start_generator(tb, a, gen_cpu);
    let gen = gen.and_then(|g| join(g, "generator"));
    gen_done.store(true, Ordering::Release);
    let (h, rx_drops, rx_cpu_ns, rx_elapsed) = join(receiver, "receive")?;
    let (report, counters, gen_cpu_ns) = gen?;
    Ok(Run {
        target: name.to_owned(),
        gen: report,
        counters,
        received: h.messages,
        rx_drops,
        handler: Some(h),
        gen_cpu_ns,
        napi_cpu_ns: threads_cpu_ns(napi) - napi0,
        rx_cpu_ns,
        rx_elapsed,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn main() {
    let a = Args::parse();
    if let Err(e) = run(&a) {
        eprintln!("xdpgen: {e}");
        if let Some(fix) = e.fix() {
            eprintln!("  fix: {fix}");
        }
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<()> {
    for t in &a.targets {
        if t != "sink" {
            zc::backend(t)?;
        }
    }
    if a.targets.iter().any(|t| t == "dpdk") && a.targets.iter().any(|t| t == "dpdk-packet") {
        // A DPDK port lives until the process ends (net_af_xdp cannot be
        // reopened in one process), and the first one's XDP program would
        // take the traffic meant for the second.
        return Err(Error::config(
            "dpdk and dpdk-packet cannot share one run: both bind the receiving interface until the process exits",
        )
        .with_fix("run them in two invocations"));
    }
    let cpus = online_cpus();
    let gen_cpu = a.gen_cpu.unwrap_or(cpus - 1);
    let tb = Testbed::create(&TestbedConfig::new("zcxgen", 250))?;
    let napi = if a.softirq {
        // NAPI without a thread: GRO on (no XDP program needed for it).
        let out = std::process::Command::new("ethtool")
            .args(["-K", &tb.host_if, "gro", "on"])
            .status()
            .map_err(|e| Error::io("run ethtool", e))?;
        if !out.success() {
            return Err(Error::new(ErrorKind::Io, "ethtool -K gro on failed"));
        }
        Vec::new()
    } else {
        tb.enable_threaded_napi()?;
        if let Some(p) = a.napi_fifo {
            tb.set_napi_fifo_priority(p)?;
        }
        tb.pin_napi_threads(a.napi_cpu)?
    };
    let placement = format!(
        "generator on CPU {gen_cpu}, {}, receiver on CPU {}",
        if a.softirq {
            "receive work in the generator's softirq".to_owned()
        } else {
            format!(
                "NAPI thread(s) {napi:?} on CPU {}{}",
                a.napi_cpu,
                a.napi_fifo
                    .map_or(String::new(), |p| format!(" at SCHED_FIFO {p}"))
            )
        },
        a.rx_cpu
    );
    let mut runs: Vec<Run> = Vec::new();
    let mut failure = None;
    'reps: for rep in 0..a.reps {
        for t in &a.targets {
            let r = if t == "sink" {
                run_sink(&tb, a, gen_cpu, &napi)
            } else {
                run_backend(&tb, a, t, gen_cpu, &napi)
            };
            match r {
                Ok(r) => {
                    if !a.json {
                        print_run(rep, &r);
                    }
                    runs.push(r);
                }
                Err(e) => {
                    failure = Some(e);
                    break 'reps;
                }
            }
        }
    }
    zc::shutdown();
    if a.json {
        let doc = json!({
            "count": a.count,
            "rate": a.rate,
            "payload": a.payload,
            "kernel_batch": a.kernel_batch,
            "batch": a.batch,
            "placement": placement,
            "cpus": cpus,
            "runs": runs.iter().map(Run::json).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
    } else {
        print_summary(a, &placement, &runs);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(r) = runs.iter().find(|r| !r.accounted()) {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{}: {} frames built, {} received + {} dropped by the receiver + {} refused by the veth ring",
                r.target, r.counters.built, r.received, r.rx_drops, r.counters.ring_full
            ),
        ));
    }
    Ok(())
}

fn print_run(rep: usize, r: &Run) {
    let lat = r
        .handler
        .filter(|h| h.latency.count > 0)
        .map(|h| {
            format!(
                ", latency p50 {:.1} µs p99 {:.1} µs",
                h.latency.p50 as f64 / 1e3,
                h.latency.p99 as f64 / 1e3
            )
        })
        .unwrap_or_default();
    println!(
        "rep {rep} {:<11} built {} ({:.2} Mpps), refused by the ring {}, received {} ({:.2} Mpps), receiver drops {}, {}; CPU ns per message: gen {:.0}, napi {:.0}, rx {:.0}{lat}",
        r.target,
        r.counters.built,
        mpps(r.counters.built, r.gen.elapsed),
        r.counters.ring_full,
        r.received,
        mpps(r.received, r.rx_elapsed),
        r.rx_drops,
        if r.accounted() { "all accounted" } else { "NOT ACCOUNTED" },
        per(r.gen_cpu_ns, r.counters.built),
        per(r.napi_cpu_ns, r.counters.delivered),
        per(r.rx_cpu_ns, r.received),
    );
}

fn print_summary(a: &Args, placement: &str, runs: &[Run]) {
    println!(
        "\n{} messages of {} bytes per run, {}, {} repetition(s); {placement}",
        a.count,
        a.payload,
        a.rate
            .map_or("flat out".to_owned(), |r| format!("{r:.0}/s offered")),
        a.reps
    );
    println!(
        "{:<11} {:>12} {:>14} {:>10} {:>10} {:>10} {:>10}",
        "target", "built Mpps", "received Mpps", "refused %", "gen ns", "napi ns", "rx ns"
    );
    for t in &a.targets {
        let mine: Vec<&Run> = runs.iter().filter(|r| &r.target == t).collect();
        if mine.is_empty() {
            continue;
        }
        let m = |f: &dyn Fn(&Run) -> f64| median(mine.iter().map(|r| f(r)).collect());
        println!(
            "{:<11} {:>12.2} {:>14.2} {:>10.1} {:>10.0} {:>10.0} {:>10.0}",
            t,
            m(&|r| mpps(r.counters.built, r.gen.elapsed)),
            m(&|r| mpps(r.received, r.rx_elapsed)),
            m(&|r| 100.0 * r.counters.ring_full as f64 / r.counters.built.max(1) as f64),
            m(&|r| per(r.gen_cpu_ns, r.counters.built)),
            m(&|r| per(r.napi_cpu_ns, r.counters.delivered)),
            m(&|r| per(r.rx_cpu_ns, r.received)),
        );
    }
    println!("(medians; CPU time per message built (gen), delivered into the veth ring (napi), received (rx))");
}

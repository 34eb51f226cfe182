//! `zc bench`: every chosen backend on the same veth testbed and the same traffic.

use crate::recv::{receive_inline, RxRun, StopWhen};
use crate::report::{fmt_ns, fmt_rate, table, Spread};
use crate::svg::{self, Series};
use clap::Args;
use serde::Serialize;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zc::{enabled_backends, open_receiver, open_sender, RxSpec, TxSpec};
use zc_core::feed::{generate, FeedPlan, GenConfig};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::sys::pin_current_thread;
use zc_core::{Error, ErrorKind, Result};
use zc_testbed::{Testbed, TestbedConfig};

const FEED_PORT: u16 = 9000;

/// Compare backends side by side.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
What it does, per repetition and per backend (backends interleaved, so a
noisy moment hits all of them alike):
  1. max rate: the generator sends --count messages as fast as it can; the
     figure is the rate the receiver handled them at (first to last message).
  2. fixed rate: --fixed-rate messages/s for --fixed-count messages: receiver
     CPU time per message (getrusage of the receive thread; also reported for
     the max-rate run, where batches fill) and one-way latency p50/p99/p99.9/max
     from each message's intended send time.
  3. zero-loss search: --search-steps runs bisecting the offered rate between
     0 and 1.2 x the max rate; the figure is the highest rate with no loss.
  4. latency at --latency-at percentages of that zero-loss rate (10,50,90),
     about a second each, from intended send times.
Every cell is the median of --reps repetitions with [min-max].

Each backend gets its own, identical testbed: a veth pair with one end in a
network namespace made for the run (198.18.0.0/15 addresses), removed at the
end, on error and on Ctrl-C. (A device backend keeps its XDP program or DPDK
port for the whole run; on a shared pair it would take the others' traffic.)

Examples:
  sudo zc bench                                   # every backend in this build
  sudo zc bench --backends recvfrom,recvmmsg --reps 7 --json out.json
  sudo zc bench --quick                           # a smoke run in seconds")]
pub struct BenchArgs {
    /// Backends to compare, comma-separated (default: every one in this build).
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<String>,
    /// Repetitions (medians need 5 or more).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Messages in each max-rate run.
    #[arg(long, default_value_t = 300_000)]
    pub count: u64,
    /// Offered rate of the CPU and latency run, messages/s.
    #[arg(long, default_value_t = 50_000.0)]
    pub fixed_rate: f64,
    /// Messages in each fixed-rate run.
    #[arg(long, default_value_t = 100_000)]
    pub fixed_count: u64,
    /// Bisection steps of the zero-loss search (0 skips it).
    #[arg(long, default_value_t = 5)]
    pub search_steps: usize,
    /// Messages in each zero-loss search run.
    #[arg(long, default_value_t = 100_000)]
    pub search_count: u64,
    /// UDP payload bytes (32 = the market-data message alone: 74-byte frames).
    #[arg(long, default_value_t = 32)]
    pub payload: usize,
    /// Datagrams per burst, receiver and generator.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Backend that generates the traffic (from the peer namespace). The
    /// default is the fastest in this build on veth: the AF_XDP sender (it
    /// skips the peer's UDP/IP stack), else sendmmsg.
    #[arg(long, default_value_t = default_generator())]
    pub generator: String,
    /// CPU for the receive thread.
    #[arg(long, default_value_t = 1)]
    pub rx_cpu: usize,
    /// CPU for the generator thread.
    #[arg(long, default_value_t = 0)]
    pub tx_cpu: usize,
    /// Busy-poll in every receiver that can.
    #[arg(long)]
    pub busy_poll: bool,
    /// Queues on each end of the veth pair.
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Also measure latency at these percentages of each backend's zero-loss
    /// rate (about one second of traffic each); empty to skip.
    #[arg(long, value_delimiter = ',', default_value = "10,50,90")]
    pub latency_at: Vec<f64>,
    /// Write every figure of every repetition here, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown here (tables, ratios, modes, machine and
    /// this command line), ready for docs/.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the chart (latency distribution and rates) here, as SVG.
    #[arg(long, default_value = "bench-out/zc-bench.svg")]
    pub svg: PathBuf,
    /// A short smoke run: 2 repetitions, small counts, 2 search steps.
    #[arg(long)]
    pub quick: bool,
    /// Testbed name prefix: backend i gets namespace `<name><i>-ns` (change it
    /// to run two benches at once; at most 9 characters).
    #[arg(long, default_value = "zcbench")]
    pub testbed: String,
    /// First testbed subnet: backend i gets 198.18.(N+i).0/24.
    #[arg(long, default_value_t = 100)]
    pub subnet: u8,
}

fn default_generator() -> String {
    let fastest = if zc::backend("afxdp").is_ok() {
        "afxdp"
    } else {
        "recvmmsg"
    };
    fastest.to_owned()
}

/// One repetition of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct Rep {
    pub max_rate_pps: f64,
    pub max_offered_pps: f64,
    pub max_run_lost: u64,
    pub max_cpu_ns_per_msg: f64,
    pub zero_loss_pps: f64,
    pub fixed_offered_pps: f64,
    pub cpu_ns_per_msg: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub fixed_run_lost: u64,
    pub kernel_drops: Option<u64>,
    pub latency_at: Vec<LatencyAt>,
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
    #[serde(skip)]
    latency: Option<hdrhistogram::Histogram<u64>>,
}

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    machine: Machine,
    generator: &'a str,
    payload_bytes: usize,
    batch: usize,
    reps: usize,
    backends: &'a [BackendResult],
}

/// What one run measured.
struct RunOut {
    sent: u64,
    offered_pps: f64,
    rx: RxRun,
}

impl RunOut {
    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.rx.report.seq.received)
    }
}

pub fn run(mut a: BenchArgs) -> Result<ExitCode> {
    if a.quick {
        a.reps = a.reps.min(2);
        a.count = a.count.min(50_000);
        a.fixed_count = a.fixed_count.min(20_000);
        a.search_steps = a.search_steps.min(2);
        a.search_count = a.search_count.min(20_000);
    }
    if a.backends.is_empty() {
        a.backends = enabled_backends().map(|b| b.name.to_owned()).collect();
    }
    for name in a.backends.iter().chain(std::iter::once(&a.generator)) {
        zc::backend(name)?;
    }
    if a.reps == 0 {
        return Err(Error::config("--reps must be 1 or more"));
    }
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
            name: n.clone(),
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
                "[{:>4.0}s rep {}/{}] {:<10} max {}  zero-loss {}  cpu {:.0} ns/msg  p50 {} p99 {}",
                started.elapsed().as_secs_f64(),
                rep + 1,
                a.reps,
                r.name,
                fmt_rate(one.0.max_rate_pps),
                fmt_rate(one.0.zero_loss_pps),
                one.0.cpu_ns_per_msg,
                fmt_ns(one.0.p50_ns),
                fmt_ns(one.0.p99_ns)
            );
            r.mode = one.1.to_string();
            r.mode_details = one.1.details.clone();
            r.reps.push(one.0);
            match &mut r.latency {
                Some(h) => {
                    let _ = h.add(&one.2);
                }
                None => r.latency = Some(one.2),
            }
        }
    }
    // Close the ports that backends keep open before their interface goes.
    zc::shutdown();
    drop(testbeds);
    print_table(&a, &results);
    write_outputs(&a, &results)?;
    Ok(ExitCode::SUCCESS)
}

/// Max-rate run, fixed-rate run and zero-loss search for one backend.
fn bench_backend(
    tb: &Testbed,
    a: &BenchArgs,
    name: &str,
    stop: &'static AtomicBool,
) -> Result<(Rep, zc_core::Mode, hdrhistogram::Histogram<u64>)> {
    let max = run_once(tb, a, name, None, a.count, stop)?;
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
    let l = fixed.rx.report.latency;
    let rep = Rep {
        max_rate_pps: max.rx.rate(),
        max_offered_pps: max.offered_pps,
        max_run_lost: max.lost(),
        max_cpu_ns_per_msg: max.rx.cpu_ns as f64 / max.rx.report.messages.max(1) as f64,
        zero_loss_pps: good,
        fixed_offered_pps: fixed.offered_pps,
        cpu_ns_per_msg: fixed.rx.cpu_ns as f64 / fixed.rx.report.messages.max(1) as f64,
        p50_ns: l.p50,
        p99_ns: l.p99,
        p999_ns: l.p999,
        max_ns: l.max,
        fixed_run_lost: fixed.lost(),
        kernel_drops: fixed.rx.rx_stats.kernel_drops,
        latency_at,
    };
    Ok((rep, fixed.rx.mode.clone(), fixed.rx.latency))
}

/// One run: a receiver of `name` on the host end, the generator in the peer namespace.
fn run_once(
    tb: &Testbed,
    a: &BenchArgs,
    name: &str,
    rate: Option<f64>,
    count: u64,
    stop: &'static AtomicBool,
) -> Result<RunOut> {
    let feed = SocketAddrV4::new(tb.host_addr, FEED_PORT);
    let plan = FeedPlan::new(count);
    let mut rx_spec = RxSpec::new(name, feed);
    rx_spec.batch = a.batch;
    // The recvfrom baseline is plain blocking recvfrom by definition.
    rx_spec.busy_poll = a.busy_poll && name != "recvfrom";
    rx_spec.max_payload = a.payload.max(64);
    if zc::backend(name)?.needs_interface {
        rx_spec.interface = Some(tb.host_if.clone());
    }
    let gen_done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<()>>(1);
    let receiver = {
        let gen_done = Arc::clone(&gen_done);
        let rx_cpu = a.rx_cpu;
        std::thread::Builder::new()
            .name(format!("zc-rx-{name}"))
            .spawn(move || -> Result<RxRun> {
                let opened = pin_current_thread(rx_cpu).and_then(|()| open_receiver(&rx_spec));
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
                receive_inline(rx.as_mut(), &mut h, when, None)
            })
            .map_err(|e| Error::io("spawn the receive thread", e))?
    };
    let ready = match ready_rx.recv() {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Io,
            format!("the {name} receive thread died while opening"),
        )),
    };
    if let Err(e) = ready {
        let _ = receiver.join();
        return Err(e);
    }
    let mut tx_spec = TxSpec::new(&a.generator, SocketAddrV4::new(tb.peer_addr, 0), feed);
    tx_spec.batch = a.batch;
    tx_spec.max_payload = a.payload.max(64);
    tx_spec.dst_mac = Some(tb.host_mac);
    if zc::backend(&a.generator)?.needs_interface {
        tx_spec.interface = Some(tb.peer_if.clone());
    }
    let gen_cfg = GenConfig {
        plan,
        rate,
        symbols: 64,
        payload_len: a.payload,
        batch: a.batch,
    };
    let tx_cpu = a.tx_cpu;
    let generator = tb
        .spawn_in_peer(move || {
            pin_current_thread(tx_cpu)?;
            let mut tx = open_sender(&tx_spec)?;
            generate(tx.as_mut(), &gen_cfg, stop)
        })
        .inspect_err(|_| {
            // Let the receiver's idle timer end it.
            gen_done.store(true, Ordering::Relaxed);
        })?;
    let gen = generator.join();
    gen_done.store(true, Ordering::Relaxed);
    let rx = receiver
        .join()
        .map_err(|_| Error::new(ErrorKind::Io, format!("the {name} receive thread panicked")))??;
    if stop.load(Ordering::Relaxed) {
        return Err(Error::new(ErrorKind::Io, "interrupted"));
    }
    let gen = gen.map_err(|_| Error::new(ErrorKind::Io, "the generator thread panicked"))??;
    Ok(RunOut {
        sent: gen.sent,
        offered_pps: gen.sent as f64 / gen.elapsed.as_secs_f64().max(1e-9),
        rx,
    })
}

fn spread(r: &BackendResult, f: impl Fn(&Rep) -> f64) -> Spread {
    Spread::of(r.reps.iter().map(f))
}

/// A titled table of the report.
struct Section {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The report: the comparison table, latency at fractions of the zero-loss
/// rate, the ratios to the first backend, and the modes.
fn sections(a: &BenchArgs, results: &[BackendResult]) -> (Vec<Section>, Vec<String>, Vec<String>) {
    let mpps = |x: f64| format!("{:.3}", x / 1e6);
    let us = |x: f64| format!("{:.1}", x / 1e3);
    let int = |x: f64| format!("{x:.0}");
    let mut out = vec![Section {
        title: format!(
            "{} repetitions, {}-byte payloads, batch {}, generator {}; latency and CPU at {} offered",
            a.reps,
            a.payload,
            a.batch,
            a.generator,
            fmt_rate(a.fixed_rate)
        ),
        header: [
            "backend",
            "max rx Mpps",
            "zero-loss Mpps",
            "CPU ns/msg @max",
            "CPU ns/msg @fixed",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "lost",
        ]
        .map(String::from)
        .to_vec(),
        rows: results
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    spread(r, |x| x.max_rate_pps).show(mpps),
                    spread(r, |x| x.zero_loss_pps).show(mpps),
                    spread(r, |x| x.max_cpu_ns_per_msg).show(int),
                    spread(r, |x| x.cpu_ns_per_msg).show(int),
                    spread(r, |x| x.p50_ns as f64).show(us),
                    spread(r, |x| x.p99_ns as f64).show(us),
                    spread(r, |x| x.p999_ns as f64).show(us),
                    spread(r, |x| x.max_ns as f64).show(us),
                    spread(r, |x| x.fixed_run_lost as f64).show(int),
                ]
            })
            .collect(),
    }];
    if !a.latency_at.is_empty() {
        out.push(Section {
            title: "latency from intended send time (no coordinated omission), medians".into(),
            header: std::iter::once("backend".to_owned())
                .chain(
                    a.latency_at
                        .iter()
                        .map(|p| format!("{p}% of zero-loss: p50 / p99 µs")),
                )
                .collect(),
            rows: results
                .iter()
                .map(|r| {
                    std::iter::once(r.name.clone())
                        .chain(a.latency_at.iter().map(|&p| {
                            let at = |f: fn(&LatencyAt) -> u64| {
                                Spread::of(r.reps.iter().filter_map(|x| {
                                    x.latency_at
                                        .iter()
                                        .find(|l| l.percent_of_zero_loss == p)
                                        .map(|l| f(l) as f64)
                                }))
                            };
                            let (p50, p99) = (at(|l| l.p50_ns), at(|l| l.p99_ns));
                            format!("{:.1} / {:.1}", p50.median / 1e3, p99.median / 1e3)
                        }))
                        .collect()
                })
                .collect(),
        });
    }
    let mut ratios = Vec::new();
    if let Some(base) = results.first() {
        let b = spread(base, |x| x.max_rate_pps).median;
        let bc = spread(base, |x| x.max_cpu_ns_per_msg).median;
        for r in results.iter().skip(1) {
            let m = spread(r, |x| x.max_rate_pps).median;
            let c = spread(r, |x| x.max_cpu_ns_per_msg).median;
            if b > 0.0 && bc > 0.0 {
                ratios.push(format!(
                    "{} / {}: {:.2}x max receive rate, {:.2}x receiver CPU per message at max rate",
                    r.name,
                    base.name,
                    m / b,
                    c / bc
                ));
            }
        }
    }
    let w = results.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let modes = results
        .iter()
        .map(|r| format!("{:<w$}  {}", r.name, r.mode))
        .collect();
    (out, ratios, modes)
}

fn print_table(a: &BenchArgs, results: &[BackendResult]) {
    let (sections, ratios, modes) = sections(a, results);
    for s in &sections {
        let header: Vec<&str> = s.header.iter().map(String::as_str).collect();
        println!("\n{}:\n{}", s.title, table(&header, &s.rows));
    }
    for r in &ratios {
        println!("{r}");
    }
    println!("\nmodes:");
    for m in &modes {
        println!("  {m}");
    }
}

/// The report as Markdown, with the machine and the command that produced it.
fn markdown(a: &BenchArgs, results: &[BackendResult], m: &Machine) -> String {
    let (sections, ratios, modes) = sections(a, results);
    let command: Vec<String> = std::env::args().collect();
    let mut md = format!(
        "Machine: {} ({} cores), Linux {}.\n\nCommand: `{}`\n",
        m.cpu,
        m.cores,
        m.kernel,
        command.join(" ")
    );
    for s in &sections {
        md.push_str(&format!(
            "\n{}:\n\n| {} |\n|{}\n",
            s.title,
            s.header.join(" | "),
            "---|".repeat(s.header.len())
        ));
        for r in &s.rows {
            md.push_str(&format!("| {} |\n", r.join(" | ")));
        }
    }
    md.push('\n');
    for r in &ratios {
        md.push_str(&format!("- {r}\n"));
    }
    md.push_str("\nModes:\n\n```\n");
    for m in &modes {
        md.push_str(m);
        md.push('\n');
    }
    md.push_str("```\n");
    md
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    Machine {
        cpu,
        cores: zc_core::sys::online_cpus(),
        kernel,
    }
}

fn write_outputs(a: &BenchArgs, results: &[BackendResult]) -> Result<()> {
    let m = machine();
    if let Some(path) = &a.json {
        let out = JsonOut {
            machine: machine(),
            generator: &a.generator,
            payload_bytes: a.payload,
            batch: a.batch,
            reps: a.reps,
            backends: results,
        };
        let text = serde_json::to_string_pretty(&out)
            .map_err(|e| Error::new(ErrorKind::Io, format!("encode JSON: {e}")))?;
        write_file(path, &text)?;
        println!("JSON: {}", path.display());
    }
    if let Some(path) = &a.markdown {
        write_file(path, &markdown(a, results, &m))?;
        println!("Markdown: {}", path.display());
    }
    let series: Vec<Series> = results
        .iter()
        .map(|r| {
            let latency = r.latency.as_ref().map_or_else(Vec::new, |h| {
                [
                    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999,
                ]
                .into_iter()
                .map(|p| (p, h.value_at_quantile(p / 100.0)))
                .collect()
            });
            let sp = |s: Spread| (s.median, s.min, s.max);
            Series {
                name: r.name.clone(),
                latency,
                max_rate: sp(spread(r, |x| x.max_rate_pps)),
                zero_loss: sp(spread(r, |x| x.zero_loss_pps)),
            }
        })
        .collect();
    let subtitle = format!(
        "{} ({} cores), Linux {}; veth testbed, {}-byte payloads, {} reps, latency at {}",
        m.cpu,
        m.cores,
        m.kernel,
        a.payload,
        a.reps,
        fmt_rate(a.fixed_rate)
    );
    write_file(
        &a.svg,
        &svg::render("zc bench: backends side by side", &subtitle, &series),
    )?;
    println!("chart: {}", a.svg.display());
    Ok(())
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

//! Receiver capacity, io_uring against recvmmsg, on the veth testbed.
//!
//! `zc bench` measures the rate at which a receiver keeps up with a live
//! generator; on a 2-core machine that figure is bound by the generator, which
//! also runs the whole kernel receive path (softirq) on its core. This harness
//! takes the generator out of the measurement: the peer namespace first fills
//! the receiver's socket with `--count` datagrams while nobody reads, then the
//! receiver, pinned and alone, drains it. Rate = count / drain time; CPU =
//! getrusage(RUSAGE_THREAD) of the receive thread over the drain. Backends are
//! interleaved, and every run checks the socket dropped nothing.
//!
//! With `--rate R` the generator instead sends at R messages/s while the
//! receiver runs (pinned to the other CPU), and the figure is the receiver's
//! CPU time per message at that offered rate.
//!
//! ```text
//! sudo cargo run --release -p zc-uring --example drain -- [--runs 7] [--count 100000] [--batch 64] [--cpu 1] [--spin] [--only uring] [--batch-wait-us 1]
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst, RxStats};
use zc_core::feed::{generate, FeedPlan, GenConfig, GenReport};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::MarketData;
use zc_core::measure::Spread;
use zc_core::sys::{monotonic_ns, pin_current_thread, privileged_or_skip};
use zc_core::{Error, Result};
use zc_epoll::{RecvConfig, SendConfig, SocketApi, SocketReceiver, SocketSender};
use zc_os::cpu::thread_cpu_ns;
use zc_testbed::{Testbed, TestbedConfig};
use zc_uring::{RxConfig, UringReceiver};

const RCVBUF: usize = 64 << 20;

struct Args {
    runs: usize,
    count: u64,
    batch: usize,
    cpu: usize,
    spin: bool,
    /// Only this backend (for profiling one path).
    only: Option<usize>,
    /// The uring receiver's batch wait, µs (0: off).
    batch_wait_us: u64,
    /// Buffers in the uring receiver's provided-buffer ring.
    buffers: u16,
    /// Paced instead of drained: the generator sends at this rate while the
    /// receiver runs, and the figure of interest is CPU per message.
    rate: Option<f64>,
}

fn parse() -> std::result::Result<Args, String> {
    let mut a = Args {
        runs: 7,
        count: 100_000,
        batch: 64,
        cpu: 1,
        spin: false,
        only: None,
        batch_wait_us: 0,
        rate: None,
        buffers: 4096,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--spin" {
            a.spin = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{k} {v}: {e}");
        match k.as_str() {
            "--runs" => a.runs = v.parse().map_err(bad)?,
            "--count" => a.count = v.parse().map_err(bad)?,
            "--batch" => a.batch = v.parse().map_err(bad)?,
            "--cpu" => a.cpu = v.parse().map_err(bad)?,
            "--batch-wait-us" => a.batch_wait_us = v.parse().map_err(bad)?,
            "--buffers" => a.buffers = v.parse().map_err(bad)?,
            "--rate" => a.rate = Some(v.parse::<f64>().map_err(|e| format!("--rate {v}: {e}"))?),
            "--only" => {
                a.only = Some(match v.as_str() {
                    "recvmmsg" => 0,
                    "uring" => 1,
                    _ => return Err(format!("--only {v}: recvmmsg or uring")),
                })
            }
            _ => return Err(format!("unknown option {k}; options: --runs N --count N --batch N --cpu N --spin --only recvmmsg|uring --batch-wait-us N --rate MSGS_PER_S --buffers N")),
        }
    }
    Ok(a)
}

/// Traffic for one run: without a rate, fills the socket before returning;
/// with one, starts a paced generator (pinned to `cpu`) and returns its handle.
fn traffic(
    tb: &Testbed,
    dst: SocketAddr,
    count: u64,
    rate: Option<f64>,
    cpu: usize,
) -> Result<Option<std::thread::JoinHandle<Result<GenReport>>>> {
    let Some(rate) = rate else {
        fill(tb, dst, count)?;
        return Ok(None);
    };
    let (peer, SocketAddr::V4(dst4)) = (tb.peer_addr, dst) else {
        return Err(Error::config("the testbed is IPv4"));
    };
    let gen = tb.spawn_in_peer(move || {
        pin_current_thread(cpu)?;
        let mut tx = SocketSender::open(SendConfig::new(
            SocketApi::Recvmmsg,
            SocketAddr::from((peer, 0)),
            SocketAddr::V4(dst4),
        ))?;
        let cfg = GenConfig {
            plan: FeedPlan::new(count),
            rate: Some(rate),
            symbols: 64,
            payload_len: 32,
            batch: 64,
        };
        generate(&mut tx, &cfg, &AtomicBool::new(false))
    })?;
    Ok(Some(gen))
}

/// Fills the socket at `dst` from the peer namespace with `count` messages.
fn fill(tb: &Testbed, dst: SocketAddr, count: u64) -> Result<()> {
    let peer = tb.peer_addr;
    tb.spawn_in_peer(move || {
        let s = UdpSocket::bind((peer, 0)).map_err(|e| Error::io("bind", e))?;
        let mut buf = [0u8; 32];
        for seq in 0..count {
            let m = MarketData {
                seq: seq as u32,
                symbol: (seq % 64) as u32,
                price: 1.0,
                volume: 1,
                timestamp_ns: monotonic_ns(),
            };
            m.encode(&mut buf)
                .map_err(|e| Error::config(e.to_string()))?;
            s.send_to(&buf, dst).map_err(|e| Error::io("send", e))?;
        }
        Ok(())
    })?
    .join()
    .map_err(|_| Error::config("the generator panicked"))?
}

struct Run {
    pps: f64,
    cpu_ns: f64,
}

/// Drains `count` datagrams through the handler, timing from the first call.
fn drain<R: Receiver>(rx: &mut R, count: u64) -> Result<(Run, RxStats)> {
    let mut h = MarketDataHandler::new(HandlerConfig::default());
    let mut got = 0u64;
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    while got < count {
        let burst = rx.recv_burst(Some(Duration::from_millis(500)))?;
        if burst.is_empty() {
            return Err(Error::config(format!(
                "drain stalled after {got} of {count} datagrams"
            )));
        }
        let now = monotonic_ns();
        for d in burst.iter() {
            h.on_datagram(&d, now);
        }
        got += burst.len() as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu_ns() - cpu0;
    let r = h.report();
    if r.seq.received != count || r.seq.gaps != 0 {
        return Err(Error::config(format!(
            "expected {count} in order, got {:?}",
            r.seq
        )));
    }
    Ok((
        Run {
            pps: count as f64 / secs,
            cpu_ns: cpu as f64 / count as f64,
        },
        rx.stats(),
    ))
}

fn join(gen: Option<std::thread::JoinHandle<Result<GenReport>>>) -> Result<()> {
    if let Some(g) = gen {
        g.join()
            .map_err(|_| Error::config("the generator panicked"))??;
    }
    Ok(())
}

fn median(v: &mut [f64]) -> (f64, f64, f64) {
    Spread::of(v.iter().copied()).parts()
}

fn main() -> std::process::ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("drain: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if !privileged_or_skip("drain benchmark") {
        return std::process::ExitCode::from(2);
    }
    match run(&a) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drain: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<()> {
    pin_current_thread(a.cpu)?;
    let tb = Testbed::create(&TestbedConfig::new("zcur6", 216))?;
    let bind = SocketAddr::from((tb.host_addr, 0));
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpus: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let names = ["recvmmsg", "uring"];
    let gen_cpu = if a.cpu == 0 { 1 } else { 0 };
    let mut modes = [String::new(), String::new()];
    for run in 0..a.runs {
        // Interleaved, and the order flips every run.
        for k in 0..2 {
            let b = if run % 2 == 0 { k } else { 1 - k };
            if a.only.is_some_and(|o| o != b) {
                continue;
            }
            let (r, st) = if b == 0 {
                let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, bind);
                cfg.batch = a.batch;
                cfg.rcvbuf = Some(RCVBUF);
                if a.spin {
                    cfg.busy_poll = zc_epoll::BusyPoll::Spin;
                }
                let mut rx = SocketReceiver::open(cfg)?;
                modes[0] = Receiver::mode(&rx).to_string();
                let gen = traffic(&tb, rx.local_addr(), a.count, a.rate, gen_cpu)?;
                let out = drain(&mut rx, a.count)?;
                join(gen)?;
                out
            } else {
                let mut cfg = RxConfig::new(bind);
                cfg.batch = a.batch;
                cfg.rcvbuf = Some(RCVBUF);
                cfg.buffer_size = 128;
                cfg.buffers = a.buffers;
                cfg.spin = a.spin;
                cfg.batch_wait =
                    (a.batch_wait_us > 0).then(|| Duration::from_micros(a.batch_wait_us));
                let mut rx = UringReceiver::open(&cfg)?;
                modes[1] = Receiver::mode(&rx).to_string();
                let gen = traffic(&tb, rx.local_addr(), a.count, a.rate, gen_cpu)?;
                let out = drain(&mut rx, a.count)?;
                join(gen)?;
                out
            };
            if st.kernel_drops.unwrap_or(0) != 0 {
                return Err(Error::config(format!(
                    "{}: the socket dropped {:?} while filling: lower --count",
                    names[b], st.kernel_drops
                )));
            }
            eprintln!(
                "run {run} {:<8} {:>8.0} pps  {:>6.0} ns CPU/msg",
                names[b], r.pps, r.cpu_ns
            );
            rates[b].push(r.pps);
            cpus[b].push(r.cpu_ns);
        }
    }
    match a.rate {
        None => println!("\n{} runs of {} datagrams (32-byte payloads) drained from a full socket, batch {}, receive thread on CPU {}", a.runs, a.count, a.batch, a.cpu),
        Some(r) => println!("\n{} runs of {} datagrams (32-byte payloads) sent at {r:.0}/s while received, batch {}, receive thread on CPU {}", a.runs, a.count, a.batch, a.cpu),
    }
    println!("| backend  | rate, kpps: median [min–max] | CPU ns/msg: median [min–max] |");
    println!("|----------|------------------------------------|------------------------------|");
    let mut med = [0.0; 2];
    let mut cpu_med = [0.0; 2];
    for b in 0..2 {
        if rates[b].is_empty() {
            continue;
        }
        let (m, lo, hi) = median(&mut rates[b]);
        let (c, clo, chi) = median(&mut cpus[b]);
        med[b] = m;
        cpu_med[b] = c;
        println!(
            "| {:<8} | {:>7.1} [{:.1}–{:.1}] | {:>5.0} [{:.0}–{:.0}] |",
            names[b],
            m / 1e3,
            lo / 1e3,
            hi / 1e3,
            c,
            clo,
            chi
        );
    }
    if a.only.is_none() {
        println!(
            "\nuring / recvmmsg: {:.2}x rate, {:.2}x CPU per message",
            med[1] / med[0],
            cpu_med[1] / cpu_med[0]
        );
    }
    println!("\nmodes:");
    for m in modes.iter().filter(|m| !m.is_empty()) {
        println!("  {m}");
    }
    Ok(())
}

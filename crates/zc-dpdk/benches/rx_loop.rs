//! Receive-loop throughput of zc-dpdk on a vdev, to set beside DPDK's own
//! `dpdk-testpmd --forward-mode=rxonly` on the same vdev and core
//! (`build/bench-dpdk.sh` runs both back to back).
//!
//! ```text
//! cargo bench -p zc-dpdk --bench rx_loop -- [--vdev net_null0[,ARGS]] [--core 1] [--seconds 5] [--batch 32] [--mode datagrams|frames]
//! ```
//!
//! `--mode frames` polls `DpdkReceiver::recv_frames` (rx_burst and bulk free,
//! frames not read): the same work as testpmd's rxonly. `--mode datagrams`
//! (default) checks every frame with zc-core's parser as well.
//!
//! The main thread is the EAL's main lcore on `--core` (pinned by the EAL, with
//! its mempool cache), and polls `Receiver::recv_burst` in a loop: the same
//! path the market-data loop uses (rx_burst, parse every frame, bulk free).
//! After a one-second warm-up it reports the port's `ipackets` per second in
//! `--seconds` one-second windows (the figure testpmd reports as Rx-pps with
//! `--stats-period 1`), and their median.

use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_dpdk::{Eal, EalConfig, Mempool, MempoolConfig, Port, PortConfig, RxConfig};
use zc_os::cpu::thread_cpu_ns;

struct Args {
    vdev: String,
    vdev_args: String,
    core: usize,
    seconds: f64,
    batch: u16,
    frames: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        vdev: "net_null0".to_owned(),
        vdev_args: String::new(),
        core: 1,
        seconds: 5.0,
        batch: 32,
        frames: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        // cargo bench passes --bench to harness=false targets.
        if k == "--bench" {
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--vdev" => {
                let (name, args) = v.split_once(',').unwrap_or((v.as_str(), ""));
                a.vdev = name.to_owned();
                a.vdev_args = args.to_owned();
            }
            "--core" => a.core = v.parse().map_err(|e| format!("--core {v}: {e}"))?,
            "--seconds" => a.seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?,
            "--batch" => a.batch = v.parse().map_err(|e| format!("--batch {v}: {e}"))?,
            "--mode" => {
                a.frames = match v.as_str() {
                    "frames" => true,
                    "datagrams" => false,
                    _ => return Err(format!("--mode {v}: frames or datagrams")),
                }
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rx_loop: {e}\nusage: rx_loop [--vdev net_null0[,ARGS]] [--core 1] [--seconds 5] [--batch 32] [--mode datagrams|frames]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("rx_loop: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> zc_core::Result<()> {
    let mut cfg = EalConfig::no_huge(a.core).vdev(&a.vdev, &a.vdev_args);
    // Pinned to its core, as testpmd's forwarding lcore is.
    cfg.pin_main = true;
    cfg.log_level = Some("warning".to_owned());
    let eal = Eal::start(&cfg)?;
    let pool = Mempool::new(&eal, MempoolConfig::default())?;
    let port = Port::open(&a.vdev, &pool, PortConfig::default())?;
    let mut rx = port.receiver(
        0,
        RxConfig {
            batch: a.batch,
            ..RxConfig::default()
        },
    )?;

    let frames_mode = a.frames;
    let poll_for = |rx: &mut zc_dpdk::DpdkReceiver, d: Duration| -> zc_core::Result<u64> {
        let end = Instant::now() + d;
        let mut polls = 0u64;
        loop {
            for _ in 0..1024 {
                if frames_mode {
                    let burst = rx.recv_frames(Some(Duration::ZERO))?;
                    std::hint::black_box(burst.len());
                } else {
                    let burst = rx.recv_burst(Some(Duration::ZERO))?;
                    std::hint::black_box(burst.len());
                }
            }
            polls += 1024;
            if Instant::now() >= end {
                return Ok(polls);
            }
        }
    };
    let cpu_start = thread_cpu_ns();
    let stats_start = port.stats()?;
    poll_for(&mut rx, Duration::from_secs(1))?;
    // One-second windows, as testpmd's --stats-period 1 reports them.
    let windows = a.seconds.max(1.0).round() as usize;
    let mut rates = Vec::with_capacity(windows);
    let first = port.stats()?;
    let mut before = first;
    let mut t = Instant::now();
    let mut polls = 0u64;
    for _ in 0..windows {
        polls += poll_for(&mut rx, Duration::from_secs(1))?;
        let now = Instant::now();
        let after = port.stats()?;
        rates.push((after.ipackets - before.ipackets) as f64 / (now - t).as_secs_f64());
        before = after;
        t = now;
    }
    let frames = before.ipackets - first.ipackets;
    let s = rx.stats();
    let list: Vec<String> = rates.iter().map(|r| format!("{:.0}", r)).collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "zc-dpdk rx_loop ({}): {} core {} batch {}: median {:.3} Mpps over {windows} 1-s windows ({:.1} frames/poll; datagrams {}, not udp {}, malformed {}; imissed {}, rx_nombuf {})",
        if a.frames { "frames" } else { "datagrams" },
        a.vdev,
        a.core,
        a.batch,
        rates[rates.len() / 2] / 1e6,
        frames as f64 / polls as f64,
        s.datagrams,
        s.not_udp,
        s.malformed,
        before.imissed - first.imissed,
        before.rx_nombuf - first.rx_nombuf,
    );
    println!("Rx-pps per window: {}", list.join(" "));
    // Frames per second of this thread's CPU time, warm-up included: what a
    // time-shared core does not distort (testpmd's is read the same way).
    let cpu_s = (thread_cpu_ns() - cpu_start) as f64 / 1e9;
    let total = before.ipackets - stats_start.ipackets;
    println!(
        "per CPU-second: {:.3} Mpps ({total} frames in {cpu_s:.2} s of thread CPU time)",
        total as f64 / cpu_s / 1e6
    );
    Ok(())
}

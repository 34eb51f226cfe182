//! The DPDK market-data receiver on a kernel interface (e.g. the
//! testbed's veth): a pinned busy-poll loop feeding zc-core's handler, one
//! status line a second, a summary at the end.
//!
//! ```text
//! sudo cargo run --release -p zc-dpdk --example md_receiver -- \
//!     --iface zctbh --driver af_xdp --port 9000 --core 1 --seconds 10
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_dpdk::market_data::{self, LoopConfig};
use zc_dpdk::{
    open_interface, Eal, EalConfig, IfaceDriver, Mempool, MempoolConfig, PortConfig, RxConfig,
};

struct Args {
    iface: String,
    driver: IfaceDriver,
    port: u16,
    core: usize,
    seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        iface: String::new(),
        driver: IfaceDriver::AfXdp,
        port: 9000,
        core: 1,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--iface" => a.iface = v,
            "--driver" => {
                a.driver = match v.as_str() {
                    "af_xdp" => IfaceDriver::AfXdp,
                    "af_packet" => IfaceDriver::AfPacket,
                    _ => return Err(format!("--driver {v}: af_xdp or af_packet")),
                }
            }
            "--port" => a.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?,
            "--core" => a.core = v.parse().map_err(|e| format!("--core {v}: {e}"))?,
            "--seconds" => a.seconds = v.parse().map_err(|e| format!("--seconds {v}: {e}"))?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if a.iface.is_empty() {
        return Err("--iface is required".to_owned());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("md_receiver: {e}\nusage: md_receiver --iface IF [--driver af_xdp|af_packet] [--port 9000] [--core 1] [--seconds 10]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("md_receiver: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> zc_core::Result<()> {
    let mut cfg = EalConfig::no_huge(a.core);
    cfg.log_level = Some("warning".to_owned());
    let eal = Eal::start(&cfg)?;
    let pool = Mempool::new(&eal, MempoolConfig::default())?;
    let port = open_interface(&eal, &a.iface, a.driver, &pool, PortConfig::default())?;
    let accept = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, a.port);
    let mut rx = port.receiver(
        0,
        RxConfig {
            batch: 32,
            accept: Some(accept),
            ..RxConfig::default()
        },
    )?;
    let mut handler = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(a.port),
        ..HandlerConfig::default()
    });
    let cfg = LoopConfig {
        core: Some(a.core),
        duration: Some(Duration::from_secs(a.seconds)),
        ..LoopConfig::default()
    };
    let s = market_data::run(
        &eal,
        &mut rx,
        &mut handler,
        &cfg,
        &AtomicBool::new(false),
        &mut std::io::stderr(),
    )?;
    let r = &s.report;
    println!(
        "md_receiver: {} messages in {:.2} s, {} distinct, {} gaps ({} missing), {} duplicates, {} late; latency p50 {} ns p99 {} ns max {} ns; {} polls",
        r.messages,
        s.elapsed_ns as f64 / 1e9,
        r.seq.received,
        r.seq.gaps,
        r.seq.missing,
        r.seq.duplicates,
        r.seq.late,
        r.latency.p50,
        r.latency.p99,
        r.latency.max,
        s.polls,
    );
    println!("md_receiver: {:?}", s.rx);
    Ok(())
}

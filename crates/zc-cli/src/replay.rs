//! `zc replay FILE`: a capture's UDP payloads through any sender backend.

use crate::json::{is_stdout, JsonOut};
use crate::names::TxBackend;
use crate::report::{fmt_ns, fmt_rate};
use clap::Args;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use zc::{open_sender, TxSpec};
use zc_capture::replay::{replay, Pace, ReplayConfig, SenderMap};
use zc_capture::CaptureReader;
use zc_core::sys::pin_current_thread;
use zc_core::{Error, Result};

/// Most destinations one replay sends to (each holds a socket or a queue).
const MAX_DESTINATIONS: usize = 64;

/// Replay a capture.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Reads pcap or pcapng (Ethernet, VLAN tags, Linux cooked SLL/SLL2, raw IPv4),
takes every UDP datagram over IPv4 and sends its payload with the chosen
backend, one sender per destination. Records that hold no such datagram are
counted by reason. Pacing is open loop: each datagram has an intended send
time fixed in advance, and the summary says how late the sends were against
it (p50/p99/max); a replay never sends early.

Examples:
  zc replay feed.pcap --dst 198.18.0.1:9000                  # original pace, everything to one place
  zc replay feed.pcap --dst-ip 198.18.0.1 --speed 10         # ten times faster, ports kept
  zc replay feed.pcap --dst 198.18.0.1:9000 --rate 100000 --loop 5
  zc replay feed.pcapng --dst 198.18.0.1:9000 --asap --port 9000,9001
  zc replay feed.pcap --backend afxdp --interface veth0 --bind 198.18.0.2:0 \\
      --dst 198.18.0.1:9000 --dst-mac 02:00:00:00:00:01")]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng).
    pub file: PathBuf,
    /// Sender backend.
    #[arg(short, long, value_enum, default_value_t = TxBackend::Sendmmsg)]
    pub backend: TxBackend,
    /// Local address to send from (port 0: any).
    #[arg(long, default_value = "0.0.0.0:0")]
    pub bind: SocketAddrV4,
    /// Send every datagram to this address and port, whatever the capture says.
    #[arg(long, conflicts_with_all = ["dst_ip", "dst_port"])]
    pub dst: Option<SocketAddrV4>,
    /// Rewrite the destination address (ports kept).
    #[arg(long)]
    pub dst_ip: Option<Ipv4Addr>,
    /// Rewrite the destination port (addresses kept).
    #[arg(long)]
    pub dst_port: Option<u16>,
    /// Destination MAC, for backends that write whole frames (AF_XDP, DPDK).
    #[arg(long, value_parser = parse_mac, value_name = "MAC")]
    pub dst_mac: Option<[u8; 6]>,
    /// Network interface (AF_XDP and DPDK backends).
    #[arg(long)]
    pub interface: Option<String>,
    /// Device queue (AF_XDP and DPDK backends).
    #[arg(long, default_value_t = 0)]
    pub queue: u32,
    /// The capture's own pace times this factor (2: twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// A fixed rate instead, in datagrams per second.
    #[arg(long, conflicts_with_all = ["speed", "asap"])]
    pub rate: Option<f64>,
    /// As fast as the sender takes them.
    #[arg(long, conflicts_with = "speed")]
    pub asap: bool,
    /// Times through the file (0: until Ctrl-C).
    #[arg(long = "loop", default_value_t = 1, value_name = "N")]
    pub loops: u64,
    /// Only datagrams to these UDP ports (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "PORT")]
    pub port: Vec<u16>,
    /// Datagrams per send call at most.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Largest payload; larger datagrams are counted and skipped.
    #[arg(long, default_value_t = 2048)]
    pub max_payload: usize,
    /// Pin the sending thread to this CPU.
    #[arg(long)]
    pub pin: Option<usize>,
    /// Write the summary as one JSON object to FILE (`-` or no FILE: stdout,
    /// instead of the text).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::json::parse_target)]
    pub json: Option<PathBuf>,
}

fn parse_mac(s: &str) -> std::result::Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address like 02:00:00:00:00:01"));
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16)
            .map_err(|_| format!("{s:?} is not a MAC address like 02:00:00:00:00:01"))?;
    }
    Ok(mac)
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let stop = crate::stop_flag();
    if let Some(cpu) = a.pin {
        pin_current_thread(cpu)?;
    }
    let pace = match (a.asap, a.rate) {
        (true, _) => Pace::Asap,
        (false, Some(r)) => Pace::Rate(r),
        (false, None) => Pace::Original { speed: a.speed },
    };
    let cfg = ReplayConfig {
        pace,
        loops: a.loops,
        ports: a.port.clone(),
        batch: a.batch,
    };
    // Fail on a bad file before opening any sender.
    drop(CaptureReader::open(&a.file)?);
    let rewrite = |d: SocketAddrV4| match a.dst {
        Some(to) => to,
        None => SocketAddrV4::new(a.dst_ip.unwrap_or(*d.ip()), a.dst_port.unwrap_or(d.port())),
    };
    let quiet = crate::quiet() || a.json.as_deref().is_some_and(is_stdout);
    let mut dests = SenderMap::new(MAX_DESTINATIONS, |d| {
        let to = rewrite(d);
        let mut spec = TxSpec::new(a.backend.name()?, a.bind, to);
        spec.interface = a.interface.clone();
        spec.dst_mac = a.dst_mac;
        spec.queue = a.queue;
        spec.batch = a.batch;
        spec.max_payload = a.max_payload;
        let tx = open_sender(&spec)?;
        if !quiet {
            eprintln!("zc replay: {d} -> {to} with {}", tx.mode());
        }
        Ok(tx)
    });
    let mut open = || CaptureReader::open(&a.file);
    let r = replay(&mut open, &mut dests, &cfg, stop)?;
    if r.sent == 0 && !r.stopped {
        return Err(Error::config(format!(
            "{}: nothing to send: {} records, {} UDP datagrams, {} filtered out by --port",
            a.file.display(),
            r.read.records,
            r.read.udp,
            r.filtered
        )));
    }
    let skipped: Vec<_> = r
        .read
        .skipped
        .iter()
        .map(|(k, n)| json!({ "reason": k, "records": n }))
        .collect();
    if let Some(path) = &a.json {
        let v = json!({
            "file": a.file.display().to_string(),
            "backend": a.backend.to_string(),
            "sent": r.sent,
            "bytes": r.bytes,
            "destinations": r.destinations,
            "loops": r.loops,
            "elapsed_s": r.elapsed.as_secs_f64(),
            "rate_pps": r.rate(),
            "capture_span_s": r.capture_span.as_secs_f64(),
            "filtered": r.filtered,
            "too_large": r.too_large,
            "backpressure": r.backpressure,
            "records": r.read.records,
            "skipped": skipped,
            "late_ns": r.lateness.map(|l| json!({
                "count": l.count, "p50": l.p50, "p99": l.p99, "p999": l.p999, "max": l.max
            })),
            "stopped": r.stopped,
        });
        JsonOut::create(path)?.line(&v)?;
    }
    if !a.json.as_deref().is_some_and(is_stdout) {
        println!(
            "sent         {} datagrams to {} destination(s) in {:.3} s ({}), {} pass(es)",
            r.sent,
            r.destinations,
            r.elapsed.as_secs_f64(),
            fmt_rate(r.rate()),
            r.loops
        );
        println!(
            "left out     filtered {} too-large {} not-udp {}; back-pressure {} times",
            r.filtered,
            r.too_large,
            r.read.skipped_total(),
            r.backpressure
        );
        match r.lateness {
            Some(l) => println!(
                "pacing       late by p50 {} p99 {} p99.9 {} max {} (send time - intended send time)",
                fmt_ns(l.p50),
                fmt_ns(l.p99),
                fmt_ns(l.p999),
                fmt_ns(l.max)
            ),
            None => println!("pacing       none (--asap)"),
        }
    }
    Ok(if r.stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

//! `zc feed send` and `zc feed gen`.

use crate::names::TxBackend;
use clap::Args;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use zc::{open_sender, TxSpec};
use zc_core::{Error, Result};
use zc_feed::file::FileWriter;
use zc_feed::gen::{GenConfig, SessionGen};
use zc_feed::mold::Session;
use zc_feed::publish::{publish, DropPlan, PublishConfig, PublishReport};
use zc_feed::recovery::RecoveryServer;

/// Publish a generated ITCH session.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  zc feed send --dst-a 198.18.0.1:9000 --rate 100000 --messages 1000000
  zc feed send --dst-a 198.18.0.1:9000 --dst-b 198.18.1.1:9000 \\
               --drop-a-every 7 --drop-b-every 5 --serve 198.18.0.2:9001

Both lines carry the same packets (the session follows from --seed); each
drops its own. With --serve, a re-request server keeps every message and
answers MoldUDP64 requests on that address while publishing and for
--linger seconds after the end of the session.")]
pub struct SendArgs {
    /// Sender backend for both lines.
    #[arg(short, long, value_enum, default_value_t = TxBackend::Sendmmsg)]
    backend: TxBackend,
    /// Line A's destination.
    #[arg(long)]
    dst_a: Option<SocketAddrV4>,
    /// Line B's destination.
    #[arg(long)]
    dst_b: Option<SocketAddrV4>,
    /// Local address to send from (port 0: any).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddrV4,
    /// Interface (AF_XDP and DPDK senders write whole frames on it).
    #[arg(long)]
    interface: Option<String>,
    /// Destination MAC (AF_XDP and DPDK senders).
    #[arg(long, value_parser = parse_mac)]
    dst_mac: Option<[u8; 6]>,
    /// MoldUDP64 session name (up to 10 characters).
    #[arg(long, default_value = "ZC00000001")]
    session: String,
    /// Messages before the three closing system events.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Messages per second (open loop); 0: as fast as the sender takes them.
    #[arg(long, default_value_t = 100_000.0)]
    rate: f64,
    /// Instruments in the stock directory.
    #[arg(long, default_value_t = 100)]
    instruments: u16,
    /// Seed of the session's content.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Messages per packet at most (1: lowest latency).
    #[arg(long, default_value_t = 16)]
    per_packet: u16,
    /// Largest UDP payload in bytes.
    #[arg(long, default_value_t = 1472)]
    max_payload: usize,
    /// Line A leaves out every N-th packet.
    #[arg(long)]
    drop_a_every: Option<u64>,
    /// Line B leaves out every N-th packet.
    #[arg(long)]
    drop_b_every: Option<u64>,
    /// Offset of the drops in the period (both lines).
    #[arg(long, default_value_t = 0)]
    drop_offset: u64,
    /// Run a re-request server on this address (with line A).
    #[arg(long)]
    serve: Option<SocketAddrV4>,
    /// Seconds of end-of-session and re-request service after the last message.
    #[arg(long, default_value_t = 1.0)]
    linger: f64,
}

fn parse_mac(s: &str) -> std::result::Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = parts
            .next()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| format!("{s:?} is not a MAC address like 02:00:00:00:00:01"))?;
    }
    Ok(mac)
}

fn session(name: &str) -> Result<Session> {
    Session::new(name).ok_or_else(|| {
        Error::config(format!(
            "session {name:?} must be at most 10 ASCII characters"
        ))
    })
}

pub fn run(a: SendArgs) -> Result<ExitCode> {
    let stop = crate::stop_flag();
    let session = session(&a.session)?;
    let lines: Vec<(&str, SocketAddrV4, Option<u64>)> = [
        a.dst_a.map(|d| ("A", d, a.drop_a_every)),
        a.dst_b.map(|d| ("B", d, a.drop_b_every)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if lines.is_empty() {
        return Err(Error::config(
            "no line to send on: give --dst-a, --dst-b or both",
        ));
    }
    let base = PublishConfig {
        max_payload: a.max_payload,
        messages_per_packet: a.per_packet,
        linger: Duration::from_secs_f64(a.linger.max(0.0)),
        ..PublishConfig::new(
            session,
            GenConfig {
                instruments: a.instruments,
                seed: a.seed,
                ..Default::default()
            },
            a.messages,
            (a.rate > 0.0).then_some(a.rate),
        )
    };
    let start = Arc::new(Barrier::new(lines.len()));
    let mut threads = Vec::new();
    for (i, (name, dst, every)) in lines.into_iter().enumerate() {
        let mut spec = TxSpec::new(a.backend.name()?, a.bind, dst);
        spec.interface = a.interface.clone();
        spec.dst_mac = a.dst_mac;
        spec.max_payload = spec.max_payload.max(a.max_payload);
        let cfg = PublishConfig {
            drops: DropPlan {
                every: every.filter(|&k| k > 0),
                offset: a.drop_offset,
                ..Default::default()
            },
            ..base
        };
        let serve = if i == 0 { a.serve } else { None };
        let start = Arc::clone(&start);
        threads.push(std::thread::spawn(
            move || -> Result<(String, PublishReport, Option<u64>)> {
                let mut tx = open_sender(&spec)?;
                let mut server = serve
                    .map(|addr| {
                        RecoveryServer::bind(
                            SocketAddr::V4(addr),
                            cfg.session,
                            1 << 22,
                            cfg.max_payload,
                        )
                    })
                    .transpose()?;
                start.wait();
                let r = publish(tx.as_mut(), &cfg, server.as_mut(), stop)?;
                Ok((
                    format!("line {name} -> {dst}"),
                    r,
                    server.map(|s| s.stats().messages),
                ))
            },
        ));
    }
    for t in threads {
        let (line, r, served) = t
            .join()
            .map_err(|_| Error::new(zc_core::ErrorKind::Io, "a publisher thread panicked"))??;
        println!(
            "{line}: {} messages in {} packets over {:.2} s, {} packets ({} messages) dropped on purpose, back-pressure {}{}",
            r.messages,
            r.packets,
            r.elapsed.as_secs_f64(),
            r.dropped_packets,
            r.dropped_messages,
            r.backpressure,
            served.map_or(String::new(), |m| format!(", re-request server sent {m} messages"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write a generated session as a NASDAQ-format ITCH file.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Example:
  zc feed gen --out day.itch --messages 10000000
  zc feed recv --itch-file day.itch            # the book from it, offline")]
pub struct GenArgs {
    /// File to write.
    #[arg(long)]
    out: PathBuf,
    /// Messages before the three closing system events.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Instruments in the stock directory.
    #[arg(long, default_value_t = 100)]
    instruments: u16,
    /// Seed of the session's content.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn gen(a: GenArgs) -> Result<ExitCode> {
    let mut g = SessionGen::new(GenConfig {
        instruments: a.instruments,
        seed: a.seed,
        ..Default::default()
    });
    let mut w = FileWriter::create(&a.out)?;
    let mut buf = [0u8; 64];
    // Timestamps from 09:30, one message every 2 µs.
    let t0 = 34_200_000_000_000u64;
    for k in 0..a.messages {
        let n = g.next(t0 + 2_000 * k).encode(&mut buf).unwrap_or(0);
        w.write(&buf[..n])?;
    }
    for f in g.close() {
        let n = f.encode(&mut buf).unwrap_or(0);
        w.write(&buf[..n])?;
    }
    let n = w.messages();
    w.finish()?;
    println!("wrote {n} messages to {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

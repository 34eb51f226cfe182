//! `zc bench --itch`: the ITCH feed (MoldUDP64, decode, order book) on each
//! backend, timed from the publisher's intended send time to the book update.
//!
//! The publisher runs in the peer namespace on the bench's generator backend
//! and stamps every message with the time it was due (open loop, CLOCK_REALTIME
//! as nanoseconds since midnight, the ITCH convention); the receiver applies
//! each delivered message to the book and records `now - stamp`. A message
//! waits in the publisher until its packet is full or nothing else is due, so
//! with more than one message per packet the figure includes that wait.

use super::args::BenchArgs;
use serde::Serialize;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zc::{open_receiver, open_sender, RxSpec, TxSpec};
use zc_core::sys::pin_current_thread;
use zc_core::{Error, ErrorKind, Result};
use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line};
use zc_feed::gen::GenConfig;
use zc_feed::mold::Session;
use zc_feed::online::{receive, LineRx, Until};
use zc_feed::protocol::MoldUdp64;
use zc_feed::publish::{publish, PublishConfig};
use zc_feed::sink::ItchSink;
use zc_testbed::Testbed;

/// A port of its own, so a late datagram of the 32-byte runs is refused
/// (counted as another port's) rather than read as MoldUDP64.
const ITCH_PORT: u16 = 9002;

/// The largest MoldUDP64 packet: a 1500-byte MTU less IPv4 and UDP headers.
const MAX_PAYLOAD: usize = 1472;

/// One ITCH run of one backend.
#[derive(Debug, Clone, Serialize)]
pub struct ItchRep {
    /// Messages per second the publisher offered (the closing ones included).
    pub offered_mps: f64,
    /// Messages the publisher sent.
    pub sent: u64,
    /// Messages that reached the book.
    pub delivered: u64,
    /// Messages given up as lost.
    pub lost: u64,
    /// Datagrams the feed handler refused (any reason).
    pub refused: u64,
    /// Messages the ITCH decoder refused.
    pub decode_errors: u64,
    /// Send time to book update, nanoseconds.
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
    /// See `p50_ns`.
    pub p999_ns: u64,
    /// See `p50_ns`.
    pub max_ns: u64,
}

/// Publishes `--itch-messages` at `--itch-rate` to a `name` receiver that
/// builds the book, and reports what arrived and how late.
pub fn run_itch(
    tb: &Testbed,
    a: &BenchArgs,
    name: &str,
    stop: &'static AtomicBool,
) -> Result<ItchRep> {
    let feed = SocketAddrV4::new(tb.host_addr, ITCH_PORT);
    let session = Session::new("ZCBENCH")
        .ok_or_else(|| Error::config("the bench's MoldUDP64 session name is invalid"))?;
    let cfg = PublishConfig {
        max_payload: MAX_PAYLOAD,
        messages_per_packet: a.itch_per_packet,
        linger: Duration::from_millis(50),
        ..PublishConfig::new(
            session,
            GenConfig::default(),
            a.itch_messages,
            Some(a.itch_rate),
        )
    };
    let mut rx_spec = RxSpec::new(name, feed);
    rx_spec.batch = a.batch;
    rx_spec.busy_poll = a.busy_poll && name != "recvfrom";
    rx_spec.kernel_busy_poll = a
        .kernel_busy_poll
        .filter(|_| matches!(name, "recvmmsg" | "uring" | "afxdp"));
    rx_spec.max_payload = MAX_PAYLOAD;
    if zc::backend(name)?.needs_interface {
        rx_spec.interface = Some(tb.host_if.clone());
    }
    if zc::backend(name)?.feature == "dpdk" {
        rx_spec.dpdk_memory = a.dpdk_memory();
    }
    // Long enough for the whole session at the offered rate, with room to spare.
    let deadline = Duration::from_secs_f64(a.itch_messages as f64 / a.itch_rate + 10.0);
    let (ready_tx, ready_rx) = mpsc::sync_channel::<()>(1);
    // Ends the receiver early when the publisher failed or Ctrl-C stopped it.
    let abandon = Arc::new(AtomicBool::new(false));
    let rx_cpu = a.rx_cpu;
    let rx_abandon = Arc::clone(&abandon);
    let receiver = std::thread::Builder::new()
        .name(format!("zc-itch-{name}"))
        .spawn(move || -> Result<(FeedHandler<MoldUdp64>, ItchSink)> {
            pin_current_thread(rx_cpu)?;
            let mut rx = open_receiver(&rx_spec)?;
            let mut handler = FeedHandler::new(
                MoldUdp64::new(Some(session)),
                FeedConfig {
                    start: Some(1),
                    ..Default::default()
                },
            );
            // Sized for the session (the generator keeps far fewer live
            // orders than messages), allocated before the publisher starts.
            let mut sink = ItchSink::new(
                BookConfig {
                    max_orders: 1 << 20,
                    max_instruments: 1 << 10,
                    ..Default::default()
                },
                true,
            );
            let _ = ready_tx.send(());
            receive(
                &mut [LineRx {
                    line: Line::A,
                    rx: rx.as_mut(),
                    port: ITCH_PORT,
                }],
                &mut handler,
                &mut sink,
                None,
                Until {
                    finished: true,
                    deadline: Some(Instant::now() + deadline),
                    idle: None,
                    stop: &rx_abandon,
                },
                None,
            )?;
            Ok((handler, sink))
        })
        .map_err(|e| Error::io("spawn the ITCH receive thread", e))?;
    if ready_rx.recv().is_err() {
        return Err(match receiver.join() {
            Ok(Err(e)) => e,
            _ => Error::new(
                ErrorKind::Io,
                format!("the {name} ITCH receive thread died while opening"),
            ),
        });
    }
    // The XDP generator sends 32-byte market-data messages only: with
    // `--generator xdp`, ITCH goes through the sender of the paced runs.
    let generator = a.paced_generator().name()?;
    let mut tx_spec = TxSpec::new(generator, SocketAddrV4::new(tb.peer_addr, 0), feed);
    tx_spec.batch = a.batch;
    tx_spec.max_payload = MAX_PAYLOAD;
    tx_spec.dst_mac = Some(tb.host_mac);
    if zc::backend(generator)?.needs_interface {
        tx_spec.interface = Some(tb.peer_if.clone());
    }
    if zc::backend(generator)?.feature == "dpdk" {
        tx_spec.dpdk_memory = a.dpdk_memory();
    }
    let tx_cpu = a.tx_cpu;
    let publisher = tb.spawn_in_peer(move || {
        pin_current_thread(tx_cpu)?;
        let mut tx = open_sender(&tx_spec)?;
        publish(tx.as_mut(), &cfg, None, stop)
    })?;
    let sent = publisher
        .join()
        .map_err(|_| Error::new(ErrorKind::Io, "the ITCH publisher thread panicked"));
    if !matches!(sent, Ok(Ok(_))) || stop.load(Ordering::Relaxed) {
        abandon.store(true, Ordering::Relaxed);
    }
    let (handler, sink) = receiver.join().map_err(|_| {
        Error::new(
            ErrorKind::Io,
            format!("the {name} ITCH receive thread panicked"),
        )
    })??;
    if stop.load(Ordering::Relaxed) {
        return Err(Error::new(ErrorKind::Io, "interrupted"));
    }
    let sent = sent??;
    let s = handler.stats();
    let line = handler.line_stats(Line::A);
    let lat = sink.latency().map(|l| l.summary()).unwrap_or_default();
    Ok(ItchRep {
        offered_mps: sent.messages as f64 / sent.elapsed.as_secs_f64().max(1e-9),
        sent: sent.messages,
        delivered: s.delivered,
        // What never arrived by the deadline counts as lost too.
        lost: sent.messages.saturating_sub(s.delivered),
        refused: line.refused.total(),
        decode_errors: sink.errors().total(),
        p50_ns: lat.p50,
        p99_ns: lat.p99,
        p999_ns: lat.p999,
        max_ns: lat.max,
    })
}

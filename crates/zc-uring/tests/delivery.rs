//! Exact delivery through the io_uring receiver into the market-data handler:
//! every distinct message, every gap and every duplicate counted exactly, on
//! loopback and across the veth testbed.

mod common;

use common::{extra, plan, receive, send_paced};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use zc_core::backend::Receiver;
use zc_core::sys::privileged_or_skip;
use zc_core::DataPath;
use zc_testbed::{Testbed, TestbedConfig};
use zc_uring::{RxConfig, UringReceiver};

fn check(rx: &UringReceiver, h: &zc_core::MarketDataHandler, p: &common::Plan) {
    let r = h.report();
    assert_eq!(r.seq.received, p.distinct, "{r:?}");
    assert_eq!(r.seq.gaps, p.gaps, "{r:?}");
    assert_eq!(r.seq.missing, p.gaps, "{r:?}");
    assert_eq!(r.seq.duplicates, p.duplicates, "{r:?}");
    assert_eq!(r.drops.not_market_data + r.drops.not_ours, 0);
    let s = Receiver::stats(rx);
    assert_eq!(s.datagrams, p.seqs.len() as u64);
    assert_eq!(s.kernel_drops, Some(0), "the socket dropped nothing");
    assert_eq!(extra(&s.extra, "recv_errors"), 0);
}

#[test]
fn loopback_exact_delivery_with_gaps_and_duplicates() {
    loopback_exact_delivery(|_| {}, |_| {});
}

#[test]
fn loopback_exact_delivery_spinning() {
    loopback_exact_delivery(|c| c.spin = true, |m| assert!(m.busy_poll, "{m}"));
}

#[test]
fn loopback_exact_delivery_with_sqpoll() {
    loopback_exact_delivery(
        |c| c.sqpoll_idle = Some(Duration::from_millis(5)),
        |m| assert!(m.details.iter().any(|d| d.starts_with("SQPOLL on")), "{m}"),
    );
}

#[test]
fn loopback_exact_delivery_with_napi_registered() {
    // Loopback has no NAPI: registration works (Linux 6.9+), polling finds nothing
    // to poll, and the mode says both.
    loopback_exact_delivery(
        |c| c.napi_busy_poll = Some(Duration::from_micros(20)),
        |m| {
            let napi = m
                .details
                .iter()
                .find(|d| d.starts_with("NAPI busy poll"))
                .expect("NAPI is reported");
            if napi.contains("registered") {
                assert!(m.busy_poll, "{m}");
            } else {
                assert!(napi.contains("unavailable") && !m.busy_poll, "{m}");
            }
        },
    );
}

fn loopback_exact_delivery(tweak: impl Fn(&mut RxConfig), check_mode: impl Fn(&zc_core::Mode)) {
    let mut cfg = RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    tweak(&mut cfg);
    let mut rx = UringReceiver::open(&cfg).unwrap();
    let mode = Receiver::mode(&rx).clone();
    eprintln!("mode: {mode}");
    assert_eq!(mode.backend, "uring");
    assert_eq!(mode.data_path, DataPath::Copy);
    assert!(
        mode.details
            .iter()
            .any(|d| d.contains("IORING_REGISTER_PBUF_RING")),
        "{mode}"
    );
    assert!(
        mode.details.iter().any(|d| d.starts_with("ring: ")),
        "{mode}"
    );
    check_mode(&mode);
    let dst = rx.local_addr();
    let p = plan(20_000);
    let seqs = p.seqs.clone();
    let gen = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        send_paced(&s, dst, &seqs, 256, Duration::from_micros(200)).unwrap()
    });
    let h = receive(&mut rx, p.seqs.len() as u64, Duration::from_secs(3));
    assert_eq!(gen.join().unwrap(), p.seqs.len() as u64);
    check(&rx, &h, &p);
    let r = h.report();
    // Sources are parsed from the recvmsg header: every message counted as ours.
    assert_eq!(r.messages, p.seqs.len() as u64);
}

#[test]
fn testbed_exact_delivery_with_gaps_and_duplicates() {
    if !privileged_or_skip("testbed_exact_delivery_with_gaps_and_duplicates") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcur1", 211)).unwrap();
    let mut cfg = RxConfig::new(SocketAddr::from((tb.host_addr, 0)));
    cfg.rx_timestamps = true;
    let mut rx = UringReceiver::open(&cfg).unwrap();
    let dst = rx.local_addr();
    let p = plan(50_000);
    let seqs = p.seqs.clone();
    let peer = tb.peer_addr;
    let gen = tb
        .spawn_in_peer(move || {
            let s = UdpSocket::bind((peer, 0)).map_err(|e| zc_core::Error::io("bind", e))?;
            let sent = send_paced(&s, dst, &seqs, 256, Duration::from_micros(200))
                .map_err(|e| zc_core::Error::io("send", e))?;
            Ok((
                sent,
                s.local_addr()
                    .map_err(|e| zc_core::Error::io("getsockname", e))?,
            ))
        })
        .unwrap();
    let mut h = zc_core::MarketDataHandler::new(Default::default());
    let mut got = 0u64;
    let mut src_ok = true;
    let mut stamped = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got < p.seqs.len() as u64 && std::time::Instant::now() < deadline {
        use zc_core::backend::RxBurst;
        let burst = rx.recv_burst(Some(Duration::from_millis(50))).unwrap();
        let now = zc_core::sys::monotonic_ns();
        for d in burst.iter() {
            src_ok &= d.src.ip() == std::net::IpAddr::V4(peer) && d.dst == dst;
            stamped += u64::from(
                d.rx_timestamp
                    .is_some_and(|t| t.clock == zc_core::Clock::Realtime && t.ns > 0),
            );
            h.on_datagram(&d, now);
            got += 1;
        }
    }
    let (sent, _from) = gen.join().unwrap().unwrap();
    assert_eq!(sent, p.seqs.len() as u64);
    assert!(
        src_ok,
        "every source is the peer's address, every destination ours"
    );
    assert_eq!(stamped, got, "every datagram has a kernel timestamp");
    check(&rx, &h, &p);
}

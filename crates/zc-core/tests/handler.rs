//! The handler above the in-memory loopback backend: exact counts, drop reasons,
//! per-symbol state, buffers returned, peer gone.

use std::net::SocketAddr;
use std::time::Duration;
use zc_core::backend::{Datagram, Receiver, RxBurst, Sender};
use zc_core::handler::{Handled, HandlerConfig, MarketDataHandler};
use zc_core::loopback::{self, LoopbackConfig};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::seq::SeqOutcome;
use zc_core::ErrorKind;

#[test]
fn loopback_delivers_gaps_and_duplicates_exactly() {
    let cfg = LoopbackConfig {
        slots: 64,
        batch: 16,
        ..Default::default()
    };
    let (mut tx, mut rx) = loopback::channel(cfg).unwrap();
    // 1000 numbers: those ending in 5 skipped, multiples of 25 sent twice.
    let mut plan = Vec::new();
    for s in 0..1000u32 {
        if s % 10 == 5 {
            continue;
        }
        plan.push(s);
        if s % 25 == 0 {
            plan.push(s);
        }
    }
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(9000),
        ..Default::default()
    });
    let mut next = 0;
    while next < plan.len() {
        let sent = tx
            .send_burst(plan.len() - next, &mut |i, buf| {
                let m = MarketData {
                    seq: plan[next + i],
                    symbol: 1,
                    price: 2.0,
                    volume: 3,
                    timestamp_ns: 10,
                };
                m.encode(buf).unwrap();
                MESSAGE_LEN
            })
            .unwrap();
        next += sent;
        loop {
            let burst = rx.recv_burst(Some(Duration::ZERO)).unwrap();
            if burst.is_empty() {
                break;
            }
            for d in burst.iter() {
                h.on_datagram(&d, 20);
            }
        }
    }
    let r = h.report();
    assert_eq!(r.seq.received, 900);
    assert_eq!(
        r.seq.duplicates, 20,
        "multiples of 50 (odd multiples of 25 were skipped)"
    );
    assert_eq!(r.seq.gaps, 100);
    assert_eq!(r.seq.missing, 100);
    assert_eq!(r.latency.count, 900);
    let s = h.symbol(1).unwrap();
    assert_eq!(s.volume, 2700);
    assert_eq!(s.vwap(), Some(2.0));
    assert_eq!(
        loopback::free_buffers(&rx),
        64,
        "every buffer is back in the pool"
    );
}

#[test]
fn back_pressure_when_the_pool_is_empty_and_recovery_after() {
    let cfg = LoopbackConfig {
        slots: 8,
        batch: 4,
        ..Default::default()
    };
    let (mut tx, mut rx) = loopback::channel(cfg).unwrap();
    let mut fill = |_: usize, buf: &mut [u8]| {
        buf[0] = 1;
        1
    };
    // The pool is the sender's batch: sending all of it is not back-pressure,
    // finding it empty is.
    assert_eq!(tx.send_burst(20, &mut fill).unwrap(), 8);
    assert_eq!(tx.stats().backpressure, 0);
    assert_eq!(tx.send_burst(1, &mut fill).unwrap(), 0);
    assert_eq!(tx.stats().backpressure, 1);
    {
        let burst = rx.recv_burst(None).unwrap();
        assert_eq!(burst.len(), 4);
        // Held by the burst: still not free.
        assert_eq!(tx.send_burst(1, &mut fill).unwrap(), 0);
    }
    assert_eq!(tx.send_burst(10, &mut fill).unwrap(), 4);
}

#[test]
fn an_oversized_payload_is_an_error_and_loses_no_buffer() {
    let cfg = LoopbackConfig {
        slots: 4,
        max_payload: 16,
        ..Default::default()
    };
    let (mut tx, mut rx) = loopback::channel(cfg).unwrap();
    let e = tx
        .send_burst(4, &mut |i, _| if i == 2 { 17 } else { 1 })
        .unwrap_err();
    assert!(
        e.to_string().contains("17 bytes exceeds the 16-byte slot"),
        "{e}"
    );
    assert_eq!(rx.recv_burst(Some(Duration::ZERO)).unwrap().len(), 2);
    assert_eq!(loopback::free_buffers(&rx), 4);
}

#[test]
fn a_peer_that_goes_away_is_reported() {
    let (tx, mut rx) = loopback::channel(LoopbackConfig::default()).unwrap();
    drop(tx);
    let e = rx.recv_burst(None).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::PeerGone);
    let (mut tx, rx) = loopback::channel(LoopbackConfig::default()).unwrap();
    drop(rx);
    assert_eq!(
        tx.send_burst(1, &mut |_, _| 0).unwrap_err().kind(),
        ErrorKind::PeerGone
    );
}

#[test]
fn a_timeout_gives_an_empty_burst() {
    let (_tx, mut rx) = loopback::channel(LoopbackConfig::default()).unwrap();
    let t = std::time::Instant::now();
    assert!(rx
        .recv_burst(Some(Duration::from_millis(20)))
        .unwrap()
        .is_empty());
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn drops_are_counted_by_reason() {
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(9000),
        ..Default::default()
    });
    let mut p = [0u8; MESSAGE_LEN];
    MarketData {
        seq: 1,
        symbol: 1,
        price: 1.0,
        volume: 1,
        timestamp_ns: 0,
    }
    .encode(&mut p)
    .unwrap();
    let ours: SocketAddr = "198.18.0.2:9000".parse().unwrap();
    let other: SocketAddr = "198.18.0.2:9001".parse().unwrap();
    let src: SocketAddr = "198.18.0.1:4000".parse().unwrap();
    let d = |payload, dst| Datagram {
        payload,
        src,
        dst,
        rx_timestamp: None,
    };
    assert_eq!(h.on_datagram(&d(&p, other), 5), Handled::Dropped);
    assert_eq!(h.on_datagram(&d(&p[..31], ours), 5), Handled::Dropped);
    assert_eq!(h.on_frame(&[0u8; 10], 5), Handled::Dropped);
    assert_eq!(
        h.on_datagram(&d(&p, ours), 5),
        Handled::Message(SeqOutcome::InOrder)
    );
    let r = h.report();
    assert_eq!(
        (r.drops.not_ours, r.drops.not_market_data, r.drops.malformed),
        (1, 1, 1)
    );
    assert_eq!(r.drops.last_malformed.unwrap().reason(), "truncated");
    assert_eq!(
        r.drops.malformed_by_reason.iter().collect::<Vec<_>>(),
        [("truncated", 1)]
    );
    assert_eq!(r.drops.malformed_by_reason.to_string(), "truncated 1");
    assert_eq!(r.messages, 1);
}

#[test]
fn the_loopback_sender_keeps_the_send_contract() {
    let (mut tx, mut rx) = loopback::channel(LoopbackConfig {
        slots: 16,
        ..Default::default()
    })
    .unwrap();
    let mut got = 0u64;
    zc_core::contract::check_sender(&mut tx, &mut |want| {
        while got < want {
            let n = rx.recv_burst(Some(Duration::from_secs(2))).unwrap().len();
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        got
    });
}

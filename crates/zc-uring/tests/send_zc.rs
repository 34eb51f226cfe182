//! The sender: every SEND_ZC buffer comes back exactly once, after its
//! notification; small payloads go by plain send; the kernel's copy is reported.

mod common;

use common::{extra, payload, plan, receive};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use zc_core::backend::Sender;
use zc_core::sys::privileged_or_skip;
use zc_core::DataPath;
use zc_testbed::{Testbed, TestbedConfig};
use zc_uring::{RxConfig, TxConfig, UringReceiver, UringSender};

/// Sends `seqs` through `tx`, payload length `len(i)`, retrying on back-pressure.
fn send_all(tx: &mut UringSender, seqs: &[u32], len: impl Fn(u32) -> usize) -> u64 {
    let mut next = 0;
    let mut calls = 0u64;
    while next < seqs.len() {
        let want = (seqs.len() - next).min(64);
        let n = tx
            .send_burst(want, &mut |i, buf| {
                let s = seqs[next + i];
                let l = len(s);
                buf[..32].copy_from_slice(&payload(s));
                buf[32..l].fill(0xab);
                l
            })
            .unwrap();
        next += n;
        calls += 1;
        assert!(calls < 10_000_000, "sender made no progress");
    }
    calls
}

#[test]
fn every_send_zc_buffer_comes_back_exactly_once() {
    // The sink is an io_uring receiver with a large socket buffer, draining
    // on its own thread while the sender runs.
    let mut sink =
        UringReceiver::open(&RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
    let dst = sink.local_addr();
    let mut cfg = TxConfig::new(dst);
    cfg.slots = 32;
    cfg.max_payload = 1024;
    cfg.zc_min_payload = Some(512);
    let mut tx = UringSender::open(&cfg).unwrap();
    let before = Sender::mode(&tx).clone();
    eprintln!("sender mode: {before}");
    assert_eq!(
        before.data_path,
        DataPath::ZeroCopy,
        "zero-copy is what was asked and what the kernel offers: {before}"
    );
    assert!(
        before
            .details
            .iter()
            .any(|d| d.contains("SEND_ZC for payloads ≥ 512 B")),
        "{before}"
    );
    // Odd sequence numbers are large (SEND_ZC), even ones small (plain send).
    let seqs: Vec<u32> = (0..4000).collect();
    let drain = std::thread::spawn(move || {
        let h = receive(&mut sink, 4000, Duration::from_secs(2));
        (
            h.report().messages,
            zc_core::backend::Receiver::stats(&sink).kernel_drops,
        )
    });
    send_all(&mut tx, &seqs, |s| if s % 2 == 1 { 1024 } else { 32 });
    tx.flush(Duration::from_secs(5)).unwrap();
    let st = Sender::stats(&tx);
    eprintln!("sender stats: {st:?}");
    assert_eq!(st.datagrams, 4000);
    assert_eq!(extra(&st.extra, "zc_sends"), 2000);
    assert_eq!(extra(&st.extra, "plain_sends"), 2000);
    assert_eq!(extra(&st.extra, "send_errors"), 0);
    assert_eq!(
        extra(&st.extra, "zc_notifs"),
        2000,
        "one notification per SEND_ZC"
    );
    assert_eq!(
        extra(&st.extra, "unexpected_completions"),
        0,
        "no completion for a buffer not lent out"
    );
    assert_eq!(
        extra(&st.extra, "buffers_returned"),
        4000,
        "every buffer came back once"
    );
    assert_eq!(tx.in_flight(), 0);
    // Loopback always copies: the kernel says so and the mode follows.
    assert_eq!(extra(&st.extra, "zc_copied"), 2000, "{st:?}");
    let after = Sender::mode(&tx);
    assert_eq!(after.data_path, DataPath::Copy, "{after}");
    assert!(
        after.details.iter().any(|d| d.contains("ZC_COPIED")),
        "{after}"
    );
    let (got, drops) = drain.join().unwrap();
    assert_eq!(
        (got, drops),
        (4000, Some(0)),
        "the sink received every datagram"
    );
}

#[test]
fn oversized_payload_is_an_error_and_loses_no_slot() {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut cfg = TxConfig::new(sink.local_addr().unwrap());
    cfg.slots = 8;
    cfg.max_payload = 64;
    let mut tx = UringSender::open(&cfg).unwrap();
    let e = tx
        .send_burst(4, &mut |i, _| if i == 2 { 65 } else { 32 })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("payload of 65 bytes exceeds the 64-byte slot"),
        "{e}"
    );
    assert_eq!(Sender::stats(&tx).datagrams, 2);
    tx.flush(Duration::from_secs(2)).unwrap();
    assert_eq!(tx.in_flight(), 0);
    assert!(UringSender::open(&TxConfig {
        slots: 0,
        ..cfg.clone()
    })
    .unwrap_err()
    .to_string()
    .contains("slots = 0"));
}

#[test]
fn testbed_uring_to_uring_with_send_zc() {
    if !privileged_or_skip("testbed_uring_to_uring_with_send_zc") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcur3", 213)).unwrap();
    let mut rx = UringReceiver::open(&RxConfig::new(SocketAddr::from((tb.host_addr, 0)))).unwrap();
    let dst = rx.local_addr();
    let p = plan(10_000);
    let seqs = p.seqs.clone();
    let peer = tb.peer_addr;
    let gen = tb
        .spawn_in_peer(move || {
            let mut cfg = TxConfig::new(dst);
            cfg.bind = Some(SocketAddr::from((peer, 0)));
            cfg.slots = 64;
            cfg.zc_min_payload = Some(0);
            cfg.max_payload = 256;
            let mut tx = UringSender::open(&cfg)?;
            let mut next = 0;
            while next < seqs.len() {
                let want = (seqs.len() - next).min(32);
                next += tx.send_burst(want, &mut |i, buf| {
                    buf[..32].copy_from_slice(&payload(seqs[next + i]));
                    256
                })?;
                // Paced: the receiver on the other core must keep up.
                std::thread::sleep(Duration::from_micros(50));
            }
            tx.flush(Duration::from_secs(5))?;
            Ok(Sender::stats(&tx))
        })
        .unwrap();
    let h = receive(&mut rx, p.seqs.len() as u64, Duration::from_secs(3));
    let st = gen.join().unwrap().unwrap();
    eprintln!("testbed sender stats: {st:?}");
    assert_eq!(extra(&st.extra, "zc_sends"), p.seqs.len() as u64);
    assert_eq!(extra(&st.extra, "zc_notifs"), p.seqs.len() as u64);
    assert_eq!(extra(&st.extra, "unexpected_completions"), 0);
    assert_eq!(extra(&st.extra, "in_flight"), 0);
    let r = h.report();
    assert_eq!(r.seq.received, p.distinct);
    assert_eq!(r.seq.duplicates, p.duplicates);
    assert_eq!(r.seq.gaps, p.gaps);
}

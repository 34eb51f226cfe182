//! A provided-buffer ring far smaller than the burst, and a completion queue
//! too small for what arrives at once: nothing the kernel delivered is lost,
//! exhaustion and overflow are counted, and the receiver keeps going.

mod common;

use common::{extra, plan, receive, send_paced};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use zc_core::backend::Receiver;
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};
use zc_uring::{RxConfig, UringReceiver};

#[test]
fn tiny_buffer_ring_loses_nothing_and_counts_enobufs() {
    let mut cfg = RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.buffers = 8;
    cfg.batch = 256;
    let mut rx = UringReceiver::open(&cfg).unwrap();
    let dst = rx.local_addr();
    let p = plan(20_000);
    let seqs = p.seqs.clone();
    let gen = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        send_paced(&s, dst, &seqs, 64, Duration::from_micros(100)).unwrap()
    });
    let h = receive(&mut rx, p.seqs.len() as u64, Duration::from_secs(3));
    let sent = gen.join().unwrap();
    let r = h.report();
    let s = Receiver::stats(&rx);
    let drops = s.kernel_drops.expect("SO_MEMINFO drop counter");
    assert_eq!(
        s.datagrams + drops,
        sent,
        "everything sent was either received or counted as dropped by the socket: {s:?}"
    );
    assert_eq!(drops, 0, "the paced sender never overran the socket: {s:?}");
    assert_eq!(r.seq.received, p.distinct);
    assert_eq!(r.seq.duplicates, p.duplicates);
    assert!(
        extra(&s.extra, "enobufs") > 0,
        "an 8-buffer ring runs dry under 256-datagram bursts: {s:?}"
    );
    assert!(extra(&s.extra, "multishot_rearms") > 0, "{s:?}");
    assert!(
        s.bursts as usize >= p.seqs.len() / 8,
        "no burst holds more than the 8 buffers: {s:?}"
    );

    // Recovered: a second feed on the same receiver arrives whole.
    let p2 = plan(2_000);
    let seqs = p2.seqs.clone();
    let gen = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        send_paced(&s, dst, &seqs, 64, Duration::from_micros(100)).unwrap()
    });
    let h2 = receive(&mut rx, p2.seqs.len() as u64, Duration::from_secs(3));
    gen.join().unwrap();
    assert_eq!(h2.report().seq.received, p2.distinct);
}

#[test]
fn completion_queue_overflow_is_counted_and_survived() {
    // 1024 buffers but only 16 completion entries, and 600 datagrams queued
    // before the first wait: the kernel must park completions in its overflow
    // list (and may end the multishot receive, which is re-armed).
    let mut cfg = RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.buffers = 1024;
    cfg.cq_entries = 16;
    cfg.batch = 32;
    let mut rx = UringReceiver::open(&cfg).unwrap();
    let dst = rx.local_addr();
    // Arm the receive, then let datagrams pile up without entering the kernel.
    drop(rx.recv_burst(Some(Duration::ZERO)).unwrap());
    let p = plan(3_000);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let first = &p.seqs[..600];
    send_paced(&s, dst, first, 600, Duration::ZERO).unwrap();
    let h = receive(&mut rx, first.len() as u64, Duration::from_secs(3));
    assert_eq!(
        h.report().messages,
        first.len() as u64,
        "all 600 arrive despite the 16-entry CQ"
    );
    let st = Receiver::stats(&rx);
    eprintln!("after the overflow: {st:?}");
    assert!(
        extra(&st.extra, "cq_overflow") > 0,
        "overflow was seen and counted: {st:?}"
    );
    assert_eq!(st.kernel_drops, Some(0));
    // And the rest of the feed still flows.
    let rest = p.seqs[600..].to_vec();
    let gen = std::thread::spawn(move || {
        send_paced(&s, dst, &rest, 64, Duration::from_micros(100)).unwrap()
    });
    let h2 = receive(&mut rx, (p.seqs.len() - 600) as u64, Duration::from_secs(3));
    gen.join().unwrap();
    assert_eq!(h2.report().messages, (p.seqs.len() - 600) as u64);
}

#[test]
fn testbed_burst_into_tiny_ring_is_accounted_exactly() {
    if !privileged_or_skip("testbed_burst_into_tiny_ring_is_accounted_exactly") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcur2", 212)).unwrap();
    let mut cfg = RxConfig::new(SocketAddr::from((tb.host_addr, 0)));
    cfg.buffers = 4;
    cfg.batch = 512;
    let mut rx = UringReceiver::open(&cfg).unwrap();
    let dst = rx.local_addr();
    let p = plan(20_000);
    let seqs = p.seqs.clone();
    let peer = tb.peer_addr;
    let gen = tb
        .spawn_in_peer(move || {
            let s = UdpSocket::bind((peer, 0)).map_err(|e| zc_core::Error::io("bind", e))?;
            send_paced(&s, dst, &seqs, 128, Duration::from_micros(100))
                .map_err(|e| zc_core::Error::io("send", e))
        })
        .unwrap();
    let h = receive(&mut rx, p.seqs.len() as u64, Duration::from_secs(3));
    let sent = gen.join().unwrap().unwrap();
    let s = Receiver::stats(&rx);
    let drops = s.kernel_drops.unwrap();
    assert_eq!(s.datagrams + drops, sent, "{s:?}");
    assert_eq!(drops, 0, "{s:?}");
    assert_eq!(h.report().seq.received, p.distinct);
    assert!(extra(&s.extra, "enobufs") > 0, "{s:?}");
}

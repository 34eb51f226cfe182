//! Setting up and tearing down rings with operations in flight leaks nothing:
//! the open-file count is unchanged after 100 cycles, and no buffer region had
//! to be leaked to keep the kernel out of freed memory.

mod common;

use common::{open_fds, payload};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;
use zc_core::backend::{Receiver, RxBurst, Sender};
use zc_uring::{leaked_regions, RxConfig, TxConfig, UringReceiver, UringSender};

/// Both tests count process-wide things (descriptors, leaked regions): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn hundred_cycles_with_operations_in_flight_leak_nothing() {
    let _serial = serial();
    let leaked = leaked_regions();
    let gen = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Warm up once so that lazily opened process-wide descriptors exist before counting.
    drop(UringReceiver::open(&RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap());
    let before = open_fds();
    let mut received = 0;
    for cycle in 0..100u32 {
        let mut cfg = RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        cfg.buffers = 64;
        let mut rx = UringReceiver::open(&cfg).unwrap();
        let dst = rx.local_addr();
        // Armed multishot receive, and datagrams in the socket and in
        // completions not yet reaped when the receiver is dropped.
        drop(rx.recv_burst(Some(Duration::ZERO)).unwrap());
        for s in 0..20 {
            gen.send_to(&payload(cycle * 100 + s), dst).unwrap();
        }
        if cycle % 2 == 0 {
            let b = rx.recv_burst(Some(Duration::from_millis(100))).unwrap();
            received += b.len();
            // Dropped with the burst's buffers handed out: the burst goes first
            // (the borrow checker insists), then the receiver below.
        }
        // A sender with SEND_ZC sends whose notifications are not reaped yet.
        let mut tcfg = TxConfig::new(dst);
        tcfg.slots = 16;
        tcfg.max_payload = 64;
        tcfg.zc_min_payload = Some(0);
        let mut tx = UringSender::open(&tcfg).unwrap();
        let n = tx
            .send_burst(16, &mut |i, buf| {
                buf[..32].copy_from_slice(&payload(i as u32));
                32
            })
            .unwrap();
        assert!(n > 0);
        drop(tx);
        drop(rx);
    }
    assert!(received > 0, "the receivers did receive");
    assert_eq!(
        open_fds(),
        before,
        "open descriptors after 100 setup/teardown cycles"
    );
    assert_eq!(
        leaked_regions(),
        leaked,
        "every buffer region was unmapped, none had to be leaked"
    );
}

#[test]
fn dropping_on_another_thread_leaks_memory_but_no_descriptor() {
    // The ring is SINGLE_ISSUER: a thread other than its first user cannot
    // cancel the receive, so the memory is kept (counted) rather than freed.
    let _serial = serial();
    let before = open_fds();
    let mut rx =
        UringReceiver::open(&RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
    drop(rx.recv_burst(Some(Duration::ZERO)).unwrap());
    let leaked = leaked_regions();
    std::thread::spawn(move || drop(rx)).join().unwrap();
    assert_eq!(leaked_regions(), leaked + 1);
    assert_eq!(open_fds(), before);
    // Moving an unused receiver to another thread is fine: it binds there.
    let rx = UringReceiver::open(&RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
    std::thread::spawn(move || {
        let mut rx = rx;
        drop(rx.recv_burst(Some(Duration::ZERO)).unwrap());
    })
    .join()
    .unwrap();
    assert_eq!(leaked_regions(), leaked + 1);
}

#[test]
fn after_drop_no_receive_is_left_holding_the_socket() {
    // A multishot receive still in the kernel would keep the socket (and its
    // port) alive, ready to write the next datagram into the buffers. Drop
    // cancels it and waits for its last completion, so the port is free the
    // moment drop returns.
    let _serial = serial();
    let gen = UdpSocket::bind("127.0.0.1:0").unwrap();
    for cycle in 0..200u32 {
        let mut rx =
            UringReceiver::open(&RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
        let addr = rx.local_addr();
        drop(rx.recv_burst(Some(Duration::ZERO)).unwrap());
        gen.send_to(&payload(cycle), addr).unwrap();
        drop(rx);
        let again = UdpSocket::bind(addr);
        assert!(
            again.is_ok(),
            "cycle {cycle}: {addr} still bound after drop: {:?}",
            again.err()
        );
    }
}

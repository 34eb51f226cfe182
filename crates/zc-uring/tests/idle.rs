//! Waiting for datagrams sleeps in the kernel: an idle receiver burns no CPU.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_uring::{RxConfig, UringReceiver};

#[test]
fn idle_waits_sleep_and_time_out() {
    let mut rx =
        UringReceiver::open(&RxConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).unwrap();
    let dst = rx.local_addr();
    // One datagram first, so the receive has run and re-armed its poll.
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&[1u8; 32], dst)
        .unwrap();
    assert_eq!(
        rx.recv_burst(Some(Duration::from_secs(2))).unwrap().len(),
        1
    );
    let cpu0 = zc_os::CpuTime::thread().total();
    let t0 = Instant::now();
    let mut calls = 0;
    while t0.elapsed() < Duration::from_millis(300) {
        assert!(rx
            .recv_burst(Some(Duration::from_millis(20)))
            .unwrap()
            .is_empty());
        calls += 1;
    }
    let cpu = zc_os::CpuTime::thread().total() - cpu0;
    assert!(
        calls <= 16,
        "each empty wait lasted its 20 ms timeout ({calls} calls in 300 ms)"
    );
    assert!(
        cpu < Duration::from_millis(30),
        "an idle receiver slept: {cpu:?} CPU in 300 ms"
    );
}

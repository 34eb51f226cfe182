//! Waiting for datagrams sleeps in the kernel: an idle receiver burns no CPU.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_uring::{RxConfig, UringReceiver};

fn thread_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

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
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    let mut calls = 0;
    while t0.elapsed() < Duration::from_millis(300) {
        assert!(rx
            .recv_burst(Some(Duration::from_millis(20)))
            .unwrap()
            .is_empty());
        calls += 1;
    }
    let cpu = thread_cpu() - cpu0;
    assert!(
        calls <= 16,
        "each empty wait lasted its 20 ms timeout ({calls} calls in 300 ms)"
    );
    assert!(
        cpu < Duration::from_millis(30),
        "an idle receiver slept: {cpu:?} CPU in 300 ms"
    );
}

//! A timeout too long for the clock (`Duration::MAX`) means "no deadline":
//! the receive returns what arrived instead of panicking on `now + timeout`.
//! A blocking recvmmsg that gets nothing returns empty when its timeout ends.

use std::net::UdpSocket;
use std::time::Duration;
use zc_core::backend::{Receiver, RxBurst};
use zc_epoll::{BusyPoll, RecvConfig, SocketApi, SocketReceiver};

fn receives_with_duration_max(api: SocketApi, wait: BusyPoll) {
    let mut cfg = RecvConfig::new(api, "127.0.0.1:0".parse().unwrap());
    cfg.busy_poll = wait;
    let mut rx = SocketReceiver::open(cfg).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(b"tick", rx.local_addr()).unwrap();
    let burst = rx.recv_burst(Some(Duration::MAX)).unwrap();
    let got: Vec<Vec<u8>> = burst.iter().map(|d| d.payload.to_vec()).collect();
    assert_eq!(got, vec![b"tick".to_vec()]);
}

#[test]
fn recvfrom_takes_a_timeout_of_duration_max() {
    receives_with_duration_max(SocketApi::Recvfrom, BusyPoll::Off);
}

#[test]
fn recvmmsg_takes_a_timeout_of_duration_max() {
    receives_with_duration_max(SocketApi::Recvmmsg, BusyPoll::Off);
    receives_with_duration_max(SocketApi::Recvmmsg, BusyPoll::Blocking);
}

#[test]
fn a_blocking_recvmmsg_returns_empty_at_its_timeout_and_then_receives() {
    let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, "127.0.0.1:0".parse().unwrap());
    cfg.busy_poll = BusyPoll::Blocking;
    let mut rx = SocketReceiver::open(cfg).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        rx.recv_burst(Some(Duration::from_millis(50)))
            .unwrap()
            .len(),
        0
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(45), "{waited:?}");
    assert_eq!(rx.recv_burst(Some(Duration::ZERO)).unwrap().len(), 0);
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3u8 {
        tx.send_to(&[i], rx.local_addr()).unwrap();
    }
    // MSG_WAITFORONE: what is queued comes in one call once the first is there.
    let burst = rx.recv_burst(Some(Duration::from_secs(5))).unwrap();
    let got: Vec<u8> = burst.iter().map(|d| d.payload[0]).collect();
    assert_eq!(got, vec![0, 1, 2]);
}

//! A timeout too long for the clock (`Duration::MAX`) means "no deadline":
//! the receive returns what arrived instead of panicking on `now + timeout`.

use std::net::UdpSocket;
use std::time::Duration;
use zc_core::backend::{Receiver, RxBurst};
use zc_epoll::{RecvConfig, SocketApi, SocketReceiver};

fn receives_with_duration_max(api: SocketApi) {
    let mut rx =
        SocketReceiver::open(RecvConfig::new(api, "127.0.0.1:0".parse().unwrap())).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(b"tick", rx.local_addr()).unwrap();
    let burst = rx.recv_burst(Some(Duration::MAX)).unwrap();
    let got: Vec<Vec<u8>> = burst.iter().map(|d| d.payload.to_vec()).collect();
    assert_eq!(got, vec![b"tick".to_vec()]);
}

#[test]
fn recvfrom_takes_a_timeout_of_duration_max() {
    receives_with_duration_max(SocketApi::Recvfrom);
}

#[test]
fn recvmmsg_takes_a_timeout_of_duration_max() {
    receives_with_duration_max(SocketApi::Recvmmsg);
}

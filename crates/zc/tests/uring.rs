//! The uring backend through the umbrella: opened by name, moves a datagram,
//! and says which io_uring features it got.
#![cfg(feature = "uring")]

use std::time::Duration;
use zc::{open_receiver, open_sender, RxSpec, TxSpec};

#[test]
fn uring_moves_a_datagram_on_loopback_and_reports_its_mode() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port);
    let mut rx = open_receiver(&RxSpec::new("uring", bind)).unwrap();
    let mode = rx.mode().clone();
    assert_eq!(mode.backend, "uring");
    assert!(
        mode.details
            .iter()
            .any(|d| d.contains("provided-buffer ring")),
        "{mode}"
    );
    for name in ["uring", "recvmmsg"] {
        let mut tx = open_sender(&TxSpec::new(name, "127.0.0.1:0".parse().unwrap(), bind)).unwrap();
        assert_eq!(
            tx.send_burst(1, &mut |_, b| {
                b[..3].copy_from_slice(b"abc");
                3
            })
            .unwrap(),
            1
        );
        let mut got = Vec::new();
        rx.recv_each(Some(Duration::from_secs(2)), &mut |d| {
            got.extend_from_slice(d.payload)
        })
        .unwrap();
        assert_eq!(got, b"abc", "sent by {name}");
    }
}

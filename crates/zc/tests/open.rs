//! Opening backends by name: the known ones work, the rest give clear errors.

use std::time::Duration;
use zc::{backend, open_receiver, open_sender, ErrorKind, RxSpec, TxSpec};

#[test]
fn an_unknown_backend_name_lists_the_known_ones() {
    let e = open_receiver(&RxSpec::new("rdma", "127.0.0.1:0".parse().unwrap()))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(
        msg.contains("unknown backend \"rdma\"") && msg.contains("recvmmsg"),
        "{msg}"
    );
    assert!(backend("recvfrom").is_ok());
}

#[test]
fn socket_backends_move_a_datagram_on_loopback() {
    for name in ["recvfrom", "recvmmsg"] {
        // A free port: the umbrella's receiver hides its socket's address.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bind = std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port);
        let mut rx = open_receiver(&RxSpec::new(name, bind)).unwrap();
        assert_eq!(rx.mode().backend, name);
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
        assert_eq!(got, b"abc", "{name}");
    }
}

#[test]
fn an_interface_for_a_socket_backend_is_refused() {
    let mut spec = RxSpec::new("recvmmsg", "127.0.0.1:0".parse().unwrap());
    spec.interface = Some("lo".into());
    assert!(open_receiver(&spec)
        .err()
        .unwrap()
        .to_string()
        .contains("not an interface"));
}

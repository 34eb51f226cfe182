//! Both socket senders keep the `Sender` contract, to a kernel socket on loopback.

use std::net::UdpSocket;
use std::time::Duration;
use zc_core::contract::check_sender;
use zc_epoll::{SendConfig, SocketApi, SocketSender};

fn check(api: SocketApi) {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut cfg = SendConfig::new(
        api,
        "127.0.0.1:0".parse().unwrap(),
        sink.local_addr().unwrap(),
    );
    cfg.batch = 16;
    let mut tx = SocketSender::open(cfg).unwrap();
    let mut got = 0u64;
    let mut buf = [0u8; 64];
    check_sender(&mut tx, &mut |want| {
        while got < want && sink.recv(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
}

#[test]
fn sendto_keeps_the_send_contract() {
    check(SocketApi::Recvfrom);
}

#[test]
fn sendmmsg_keeps_the_send_contract() {
    check(SocketApi::Recvmmsg);
}

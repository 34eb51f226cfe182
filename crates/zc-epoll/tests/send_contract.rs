//! Both socket senders keep the `Sender` contract, to a kernel socket on loopback.

use zc_core::contract::{check_sender, UdpSink};
use zc_epoll::{SendConfig, SocketApi, SocketSender};

fn check(api: SocketApi) {
    let mut sink = UdpSink::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut cfg = SendConfig::new(api, "127.0.0.1:0".parse().unwrap(), sink.addr());
    cfg.batch = 16;
    let mut tx = SocketSender::open(cfg).unwrap();
    check_sender(&mut tx, &mut |want| sink.received(want));
}

#[test]
fn sendto_keeps_the_send_contract() {
    check(SocketApi::Recvfrom);
}

#[test]
fn sendmmsg_keeps_the_send_contract() {
    check(SocketApi::Recvmmsg);
}

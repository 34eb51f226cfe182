//! The io_uring sender keeps the `Sender` contract, to a kernel socket on loopback.

use zc_core::contract::{check_sender, UdpSink};
use zc_uring::{TxConfig, UringSender};

#[test]
fn the_uring_sender_keeps_the_send_contract() {
    let mut sink = UdpSink::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut cfg = TxConfig::new(sink.addr());
    cfg.slots = 16;
    let mut tx = UringSender::open(&cfg).unwrap();
    check_sender(&mut tx, &mut |want| sink.received(want));
}

//! The EAL on hugepages, in memory (no files under /var/run/dpdk): a net_ring
//! round trip. build/setup-host.sh reserves the hugepages (CI runs it).

use std::time::Duration;
use zc_core::backend::{Receiver, RxBurst, Sender};
use zc_core::sys::privileged_or_skip;
use zc_core::wire::UdpFrameSpec;
use zc_dpdk::{
    Eal, EalConfig, Files, Memory, Mempool, MempoolConfig, Port, PortConfig, RxConfig, TxConfig,
};

#[test]
fn hugepages_in_memory_round_trip() {
    if !privileged_or_skip("hugepages_in_memory_round_trip") {
        return;
    }
    let mut cfg = EalConfig::no_huge(0).vdev("net_ring0", "");
    cfg.memory = Memory::Hugepages { mb: Some(64) };
    cfg.files = Files::InMemory;
    let eal = Eal::start(&cfg).unwrap();
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 1023,
            cache: 32,
            ..Default::default()
        },
    )
    .unwrap();
    let port = Port::open("net_ring0", &pool, PortConfig::default()).unwrap();
    let spec = UdpFrameSpec {
        src_mac: [0x02, 0, 0, 0, 0, 1],
        dst_mac: [0x02, 0, 0, 0, 0, 2],
        vlan: Some(42),
        src: "198.18.9.1:40000".parse().unwrap(),
        dst: "198.18.9.2:9000".parse().unwrap(),
        ttl: 64,
        udp_checksum: true,
    };
    let mut tx = port.sender(0, TxConfig::new(spec)).unwrap();
    let mut rx = port.receiver(0, RxConfig::default()).unwrap();
    let sent = tx
        .send_burst(16, &mut |i, buf| {
            buf[..4].copy_from_slice(&(i as u32).to_le_bytes());
            4
        })
        .unwrap();
    assert_eq!(sent, 16);
    let burst = rx.recv_burst(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(burst.len(), 16);
    for (i, d) in burst.iter().enumerate() {
        assert_eq!(
            d.payload,
            &(i as u32).to_le_bytes(),
            "VLAN-tagged frame {i}"
        );
    }
    drop(burst);
    drop((tx, rx, port));
    assert_eq!(pool.in_use(), 0);
}

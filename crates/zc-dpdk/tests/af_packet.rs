//! Exact delivery of market data with gaps and duplicates through net_af_packet
//! on the veth testbed, opened the way the `zc` command does: the process-wide
//! EAL and `open_interface`, whose vdev is detached when the port closes.

mod common;

use zc_dpdk::{open_interface, Eal, EalConfig, IfaceDriver, Mempool, MempoolConfig, PortConfig};

#[test]
fn af_packet_exact_delivery_on_the_testbed() {
    if !zc_core::sys::privileged_or_skip("af_packet_exact_delivery_on_the_testbed") {
        return;
    }
    common::exact_delivery(
        "zcdpdkap",
        common::free_subnet(163),
        "net_af_packet",
        &|tb| {
            let eal = Eal::shared(&EalConfig::no_huge(0)).unwrap();
            let pool = Mempool::new(
                &eal,
                MempoolConfig {
                    mbufs: 4095,
                    cache: 128,
                    ..Default::default()
                },
            )
            .unwrap();
            open_interface(
                &eal,
                &tb.host_if,
                IfaceDriver::AfPacket,
                &pool,
                PortConfig::default(),
            )
            .unwrap()
        },
        false,
    );
    // The shared EAL is still up; a second EAL config is refused, not applied.
    let mut other = EalConfig::no_huge(0);
    other.memory = zc_dpdk::Memory::NoHuge { mb: 512 };
    assert!(Eal::shared(&other)
        .unwrap_err()
        .to_string()
        .contains("already runs with"));
    // The port's vdev was detached when it closed; a missing interface is a
    // clear error and leaves nothing attached.
    let eal = Eal::shared(&EalConfig::no_huge(0)).unwrap();
    assert_eq!(eal.vdevs(), Vec::<String>::new());
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 511,
            cache: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let e = open_interface(
        &eal,
        "zcnosuchif0",
        IfaceDriver::AfPacket,
        &pool,
        PortConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), zc_core::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("zcnosuchif0"), "{e}");
    assert_eq!(eal.vdevs(), Vec::<String>::new());
    drop((pool, eal));
    Eal::release_shared();
}

//! Exact delivery of market data with gaps and duplicates through net_af_packet
//! on the veth testbed, opened the way the `zc` command does: the process-wide
//! EAL and `open_interface`, whose vdev is detached when the port closes.

mod common;

use zc_dpdk::{
    open_interface, open_interface_at, Eal, EalConfig, IfaceDriver, Mempool, MempoolConfig,
    PortConfig,
};

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
    // A device queue the interface lacks (lo has one), and a device queue
    // for net_af_packet, which sees them all: refused before anything is
    // attached.
    for (driver, first, words) in [
        (
            IfaceDriver::AfXdp,
            3,
            "queue 3 is out of range: lo has 1 receive queue",
        ),
        (IfaceDriver::AfPacket, 1, "device queue 1 cannot be chosen"),
    ] {
        let e =
            open_interface_at(&eal, "lo", driver, first, &pool, PortConfig::default()).unwrap_err();
        assert_eq!(e.kind(), zc_core::ErrorKind::Config, "{e}");
        assert!(e.to_string().contains(words), "{e}");
        assert_eq!(eal.vdevs(), Vec::<String>::new());
    }
    drop((pool, eal));
    Eal::release_shared();
}

/// The kernel's `IFF_PROMISC` bit of `interface`, from sysfs.
fn kernel_promiscuous(interface: &str) -> bool {
    let flags = std::fs::read_to_string(format!("/sys/class/net/{interface}/flags")).unwrap();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    flags & 0x100 != 0
}

/// A port leaves the host's interface as it found it: promiscuous mode is
/// opt-in, and what the port turned on it turns off when it closes.
#[test]
fn af_packet_promiscuous_is_opt_in_and_undone_at_close() {
    if !zc_core::sys::privileged_or_skip("af_packet_promiscuous_is_opt_in_and_undone_at_close") {
        return;
    }
    let tb = common::Testbed::create(&common::TestbedConfig::new(
        "zcdpdkpr",
        common::free_subnet(167),
    ))
    .unwrap();
    let eal = Eal::shared(&EalConfig::no_huge(0)).unwrap();
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 4095,
            cache: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!kernel_promiscuous(&tb.host_if));
    for asked in [false, true] {
        // The default config, and the default with promiscuous mode asked for.
        let cfg = PortConfig {
            promiscuous: asked || PortConfig::default().promiscuous,
            ..PortConfig::default()
        };
        let port = open_interface(&eal, &tb.host_if, IfaceDriver::AfPacket, &pool, cfg).unwrap();
        assert_eq!(kernel_promiscuous(&tb.host_if), asked, "asked {asked}");
        drop(port);
        assert!(
            !kernel_promiscuous(&tb.host_if),
            "promiscuous mode left on after close (asked {asked})"
        );
    }
}

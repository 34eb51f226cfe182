//! Exact delivery of market data with gaps and duplicates through net_af_xdp
//! on the veth testbed, with the EAL and vdev set up by hand.

mod common;

use zc_dpdk::{Eal, EalConfig, Mempool, MempoolConfig, Port, PortConfig};

#[test]
fn af_xdp_exact_delivery_on_the_testbed() {
    if !zc_core::sys::privileged_or_skip("af_xdp_exact_delivery_on_the_testbed") {
        return;
    }
    common::exact_delivery(
        "zcdpdkxd",
        common::free_subnet(173),
        "net_af_xdp",
        &|tb| {
            let args = format!("iface={},start_queue=0,queue_count=1", tb.host_if);
            let eal = Eal::start(&EalConfig::no_huge(0).vdev("net_af_xdp0", &args)).unwrap();
            let pool = Mempool::new(
                &eal,
                MempoolConfig {
                    mbufs: 4095,
                    cache: 128,
                    ..Default::default()
                },
            )
            .unwrap();
            Port::open("net_af_xdp0", &pool, PortConfig::default()).unwrap()
        },
        true,
    );
}

//! Exact delivery of market data with gaps and duplicates through net_af_xdp
//! on the veth testbed.

mod common;

#[test]
fn af_xdp_exact_delivery_on_the_testbed() {
    if !zc_core::sys::privileged_or_skip("af_xdp_exact_delivery_on_the_testbed") {
        return;
    }
    common::exact_delivery("zcdpdkxd", common::free_subnet(173), "net_af_xdp", "start_queue=0,queue_count=1", true);
}

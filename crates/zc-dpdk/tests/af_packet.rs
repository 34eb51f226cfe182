//! Exact delivery of market data with gaps and duplicates through net_af_packet
//! on the veth testbed.

mod common;

#[test]
fn af_packet_exact_delivery_on_the_testbed() {
    if !zc_core::sys::privileged_or_skip("af_packet_exact_delivery_on_the_testbed") {
        return;
    }
    common::exact_delivery("zcdpdkap", common::free_subnet(163), "net_af_packet", "qpairs=1", false);
}

//! The bound kernel ABI has the layout the kernel expects, and the libraries link.

use std::mem::size_of;

#[test]
fn af_xdp_abi_sizes_match_the_kernel() {
    assert_eq!(size_of::<xdp_sys::xdp_desc>(), 16);
    assert_eq!(size_of::<xdp_sys::sockaddr_xdp>(), 16);
    assert_eq!(size_of::<xdp_sys::xdp_statistics>(), 48);
    assert_eq!(size_of::<xdp_sys::xdp_ring_offset>(), 32);
    assert_eq!(xdp_sys::AF_XDP, 44);
    assert_eq!(xdp_sys::SOL_XDP, 283);
}

#[test]
fn libbpf_links_and_reports_its_version() {
    // SAFETY: both functions take no arguments and only return constants.
    let (major, minor) = unsafe {
        (
            xdp_sys::libbpf_major_version(),
            xdp_sys::libbpf_minor_version(),
        )
    };
    assert!(major >= 1, "libbpf {major}.{minor}");
}

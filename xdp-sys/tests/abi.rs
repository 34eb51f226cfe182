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

#[test]
fn libxdp_links_and_formats_its_errors() {
    let mut buf = [0i8; 128];
    // SAFETY: buf is writable for its full length, which is passed as the size.
    let rc = unsafe { xdp_sys::libxdp_strerror(-22, buf.as_mut_ptr(), buf.len()) };
    assert_eq!(rc, 0);
    // SAFETY: libxdp_strerror NUL-terminates within the buffer on success.
    let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    assert!(!msg.to_bytes().is_empty());
}

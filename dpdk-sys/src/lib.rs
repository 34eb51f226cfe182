//! Raw bindings to the system DPDK (22.11 or newer, found with pkg-config).
//!
//! - `rte_*`: bindgen output for the EAL, mempool, mbuf and ethdev calls zc uses
//!   (allowlisted in `build.rs`).
//! - `zc_*`: a C shim over DPDK's `static inline` hot path (`rte_eth_rx_burst`,
//!   `rte_eth_tx_burst`, `rte_pktmbuf_alloc`/`_free`/bulk, `rte_pktmbuf_mtod`,
//!   lengths, append), and `zc_rte_errno` for the thread-local `rte_errno`.
//!
//! Everything here is `unsafe` and unchecked; `zc-dpdk` is the safe layer.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

/// The generated bindings: documented by the C headers they come from, and
/// their unsafe blocks (bitfield accessors, layout tests) are bindgen's.
#[allow(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}
pub use bindings::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn links_and_reports_the_dpdk_version() {
        // SAFETY: rte_version returns a pointer to a static NUL-terminated string
        // and needs no EAL.
        let v = unsafe { CStr::from_ptr(rte_version()) };
        assert!(v.to_string_lossy().starts_with("DPDK "), "{v:?}");
    }

    #[test]
    fn shim_links() {
        // SAFETY: both shim functions only read a thread-local and constants.
        let (_errno, rss) = unsafe { (zc_rte_errno(), zc_eth_rss_ip_udp()) };
        assert_ne!(rss, 0);
    }

    #[test]
    fn mbuf_fields_the_safe_layer_reads_are_where_dpdk_puts_them() {
        let m = rte_mbuf::default();
        let base = &m as *const rte_mbuf as usize;
        // Offsets from DPDK 22.11's rte_mbuf_core.h (64-bit): the receive path
        // reads these fields directly instead of calling the shim per packet.
        assert_eq!(&m.buf_addr as *const _ as usize - base, 0);
        assert_eq!(&m.data_off as *const _ as usize - base, 16);
        assert_eq!(&m.pkt_len as *const _ as usize - base, 36);
        assert_eq!(&m.data_len as *const _ as usize - base, 40);
    }
}

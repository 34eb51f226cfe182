//! Reading an mbuf's data in Rust: the hot path reads `buf_addr`, `data_off`
//! and `data_len` directly (their offsets are checked by dpdk-sys's tests and
//! bindgen's layout assertions) instead of calling the shim once per packet.

use dpdk_sys as sys;

/// The data of the first segment of `m` (what `rte_pktmbuf_mtod` points at,
/// `rte_pktmbuf_data_len` bytes).
///
/// # Safety
/// `m` must be a valid mbuf owned by the caller, unchanged and not freed for `'a`.
#[inline]
pub(crate) unsafe fn data<'a>(m: *const sys::rte_mbuf) -> &'a [u8] {
    // SAFETY: the caller guarantees m is valid; buf_addr + data_off is the
    // start of data_len initialised bytes inside the mbuf's buffer.
    unsafe {
        let m = &*m;
        let start = (m.buf_addr as *const u8).add(usize::from(m.data_off));
        std::slice::from_raw_parts(start, usize::from(m.data_len))
    }
}

/// The room of a freshly allocated, empty mbuf from its data start to the end
/// of its buffer (`rte_pktmbuf_tailroom`), writable.
///
/// # Safety
/// `m` must be a valid mbuf owned by the caller with `data_len` 0 (just
/// allocated), not freed or handed to DPDK for `'a`.
#[inline]
pub(crate) unsafe fn room<'a>(m: *mut sys::rte_mbuf) -> &'a mut [u8] {
    // SAFETY: the caller owns m exclusively; data_off..buf_len is its buffer's
    // tail, which nothing else references. The bytes are initialised: mempool
    // memory comes from zero-filled pages and is only ever written with bytes.
    unsafe {
        let m = &mut *m;
        let off = usize::from(m.data_off);
        let start = (m.buf_addr as *mut u8).add(off);
        let len = usize::from(m.buf_len).saturating_sub(off);
        std::slice::from_raw_parts_mut(start, len)
    }
}

//! A packet mbuf pool, freed when the last port and queue using it are gone.
//!
//! The mbufs sit back to back in one IOVA-contiguous memzone when the EAL can
//! reserve one. `rte_pktmbuf_pool_create` instead keeps every mbuf inside one
//! page: with `--no-huge` (4 KiB pages) that is one 2368-byte mbuf per page, a
//! pool spread over 1.7 times its size. DPDK 22.11's `net_af_xdp` registers as
//! its UMEM only `populated_size` × object size from the first mbuf, so on such
//! a pool the kernel refuses every fill-ring address past the first 58 % of the
//! mbufs and drops the frames meant for them (`imissed`, XDP `rx_dropped`):
//! reception stops for good once the receive path has cycled that far into the
//! pool. [`Mempool::outside_af_xdp_umem`] finds such mbufs.

use crate::eal::{rte_strerror, Eal};
use crate::ffi_errno;
use dpdk_sys as sys;
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use zc_core::error::{Error, ErrorKind, Result};

/// Mempool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Mbufs in the pool. DPDK recommends 2^n − 1.
    pub mbufs: u32,
    /// Per-lcore cache (0 to disable); at most 512 and at most mbufs / 1.5.
    pub cache: u32,
    /// Data room per mbuf, headroom included (`RTE_MBUF_DEFAULT_BUF_SIZE`: 2176).
    pub data_room: u16,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            mbufs: 8191,
            cache: 256,
            data_room: sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
        }
    }
}

pub(crate) struct PoolInner {
    ptr: NonNull<sys::rte_mempool>,
    cfg: MempoolConfig,
    name: String,
    /// Objects back to back in one IOVA-contiguous zone ([`create_packed`]).
    packed: bool,
    // Dropped after the pool is freed (field order): the EAL outlives it.
    pub(crate) eal: Eal,
}

// SAFETY: an rte_mempool is built for concurrent use from many threads (its
// ring is multi-producer/multi-consumer; per-lcore caches are keyed by the
// calling thread's lcore id), and this handle only frees it once, on drop.
unsafe impl Send for PoolInner {}
// SAFETY: as above: every operation reached through &PoolInner is thread-safe.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use != 0 {
            tracing::warn!(pool = %self.name, in_use, "freeing a mempool with mbufs still out");
        }
        // SAFETY: ptr came from rte_pktmbuf_pool_create and is freed once; every
        // port and queue that used it holds an Arc<PoolInner> and is gone.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}

impl PoolInner {
    fn in_use(&self) -> u32 {
        // SAFETY: ptr is a live mempool (freed only in drop).
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }
}

/// A pool of packet mbufs.
#[derive(Clone)]
pub struct Mempool {
    pub(crate) inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("cfg", &self.inner.cfg)
            .field("packed", &self.inner.packed)
            .field("available", &self.available())
            .finish()
    }
}

static NEXT_POOL: AtomicU32 = AtomicU32::new(0);

impl Mempool {
    /// Creates a pool on the caller's NUMA socket: its mbufs back to back in
    /// one IOVA-contiguous memzone (what `net_af_xdp` needs, see the module
    /// docs), or, when no such zone can be reserved, page by page as
    /// `rte_pktmbuf_pool_create` lays them out.
    pub fn new(eal: &Eal, cfg: MempoolConfig) -> Result<Mempool> {
        if cfg.mbufs == 0 {
            return Err(Error::config("a mempool needs at least one mbuf"));
        }
        if cfg.cache > 512 || u64::from(cfg.cache) * 3 > u64::from(cfg.mbufs) * 2 {
            return Err(Error::config(format!(
                "mempool cache of {} is above DPDK's limit (512, and at most mbufs/1.5 = {})",
                cfg.cache,
                u64::from(cfg.mbufs) * 2 / 3
            )));
        }
        let headroom = sys::RTE_PKTMBUF_HEADROOM as u16;
        if cfg.data_room <= headroom {
            return Err(Error::config(format!(
                "mbuf data room of {} bytes leaves nothing after the {headroom}-byte headroom",
                cfg.data_room
            )));
        }
        let name = format!("zc_pool_{}", NEXT_POOL.fetch_add(1, Ordering::Relaxed));
        let cname =
            CString::new(name.as_str()).map_err(|_| Error::config("pool name has a NUL byte"))?;
        let (ptr, packed) = match create_packed(&cname, cfg)? {
            Some(ptr) => (ptr, true),
            None => (create_paged(&cname, cfg)?, false),
        };
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                ptr,
                cfg,
                name,
                packed,
                eal: eal.clone(),
            }),
        })
    }

    /// Mbufs free in the pool, per-lcore caches included.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is live while self exists.
        unsafe { sys::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs out of the pool (held by a device, a queue or a burst).
    pub fn in_use(&self) -> u32 {
        self.inner.in_use()
    }

    /// Its settings.
    pub fn config(&self) -> MempoolConfig {
        self.inner.cfg
    }

    /// Bytes an mbuf can hold after the headroom.
    pub fn buf_len(&self) -> u16 {
        self.inner.cfg.data_room - sys::RTE_PKTMBUF_HEADROOM as u16
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }

    /// Whether the mbufs sit back to back in one IOVA-contiguous zone.
    pub fn packed(&self) -> bool {
        self.inner.packed
    }

    /// How many mbufs lie outside the memory DPDK 22.11's `net_af_xdp`
    /// registers as its UMEM for this pool: from the first memory chunk's page
    /// start to the first object plus `populated_size` × object size. The
    /// kernel refuses those mbufs' addresses on the fill ring, so a port
    /// receiving into this pool with net_af_xdp needs 0 here.
    pub fn outside_af_xdp_umem(&self) -> u32 {
        let mp = self.as_ptr();
        // SAFETY: the pool is live and fully populated (Mempool::new); these
        // fields and the memory-chunk list are not changed after population.
        let (first, frame, populated) = unsafe {
            let first = (*mp).mem_list.stqh_first;
            if first.is_null() {
                return 0;
            }
            let frame = u64::from((*mp).header_size)
                + u64::from((*mp).elt_size)
                + u64::from((*mp).trailer_size);
            ((*first).addr as u64, frame, u64::from((*mp).populated_size))
        };
        let mut span = UmemSpan {
            start: first & !(page_size() - 1),
            end: first + populated * frame,
            outside: 0,
        };
        // SAFETY: count_outside_umem matches rte_mempool_obj_cb_t and only
        // reads the object addresses it is given; span outlives the call.
        unsafe {
            sys::rte_mempool_obj_iter(
                mp,
                Some(count_outside_umem),
                (&mut span as *mut UmemSpan).cast(),
            )
        };
        span.outside
    }
}

/// The UMEM range net_af_xdp registers, and the objects found outside it.
struct UmemSpan {
    start: u64,
    end: u64,
    outside: u32,
}

/// `rte_mempool_obj_iter` callback: counts objects (header to trailer) that
/// do not lie within the [`UmemSpan`] behind `opaque`.
unsafe extern "C" fn count_outside_umem(
    mp: *mut sys::rte_mempool,
    opaque: *mut std::os::raw::c_void,
    obj: *mut std::os::raw::c_void,
    _idx: std::os::raw::c_uint,
) {
    // SAFETY: opaque is the &mut UmemSpan outside_af_xdp_umem passed, alive
    // and not otherwise borrowed during rte_mempool_obj_iter; mp is the live
    // pool being iterated.
    let (span, mp) = unsafe { (&mut *opaque.cast::<UmemSpan>(), &*mp) };
    let obj = obj as u64;
    let lo = obj - u64::from(mp.header_size);
    let hi = obj + u64::from(mp.elt_size) + u64::from(mp.trailer_size);
    if lo < span.start || hi > span.end {
        span.outside += 1;
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).unwrap_or(4096)
}

/// A pool whose mbufs are back to back in one IOVA-contiguous memzone, so they
/// may cross page boundaries without breaking DMA (each mbuf's IOVA range is
/// contiguous). `None` when the EAL has no such zone of that size; then the
/// pool is not created and the caller lays it out page by page.
fn create_packed(name: &CString, cfg: MempoolConfig) -> Result<Option<NonNull<sys::rte_mempool>>> {
    let zone = CString::new(format!("{}_mem", name.to_string_lossy()))
        .map_err(|_| Error::config("memzone name has a NUL byte"))?;
    let elt = std::mem::size_of::<sys::rte_mbuf>() as u32 + u32::from(cfg.data_room);
    let private = std::mem::size_of::<sys::rte_pktmbuf_pool_private>() as u32;
    // SAFETY: the EAL runs (the caller holds an Eal); DPDK copies the name.
    // NO_IOVA_CONTIG only stops population from keeping objects inside pages:
    // the zone populated below is IOVA-contiguous, so every object is too.
    let mp = unsafe {
        sys::rte_mempool_create_empty(
            name.as_ptr(),
            cfg.mbufs,
            elt,
            cfg.cache,
            private,
            sys::rte_socket_id() as i32,
            sys::RTE_MEMPOOL_F_NO_IOVA_CONTIG,
        )
    };
    let Some(mp) = NonNull::new(mp) else {
        return Err(create_error(cfg));
    };
    // Frees the pool on every path that gives up on it (each returns after).
    let discard = || {
        // SAFETY: mp came from rte_mempool_create_empty, no mbuf of it is out,
        // and it is freed once: every caller of discard returns right after.
        unsafe { sys::rte_mempool_free(mp.as_ptr()) };
    };
    // SAFETY: mp is a new empty pool; the ops name is DPDK's static string.
    let rc = unsafe {
        sys::rte_mempool_set_ops_byname(
            mp.as_ptr(),
            sys::rte_mbuf_best_mempool_ops(),
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        discard();
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("set the mbuf mempool ops: {}", rte_strerror(-rc)),
        ));
    }
    let mut private = sys::rte_pktmbuf_pool_private {
        mbuf_data_room_size: cfg.data_room,
        mbuf_priv_size: 0,
        flags: 0,
    };
    // SAFETY: mp is an empty pool created with room for this private struct,
    // which rte_pktmbuf_pool_init copies.
    unsafe {
        sys::rte_pktmbuf_pool_init(
            mp.as_ptr(),
            (&mut private as *mut sys::rte_pktmbuf_pool_private).cast(),
        )
    };
    // SAFETY: mp is live; the size fields are set by rte_mempool_create_empty.
    let frame = unsafe {
        let m = mp.as_ref();
        u64::from(m.header_size) + u64::from(m.elt_size) + u64::from(m.trailer_size)
    };
    let len = u64::from(cfg.mbufs) * frame;
    // SAFETY: the EAL runs; DPDK copies the name. Objects need cache-line
    // alignment, and `frame` is a multiple of the cache line.
    let mz = unsafe {
        sys::rte_memzone_reserve_aligned(
            zone.as_ptr(),
            len as usize,
            sys::rte_socket_id() as i32,
            sys::RTE_MEMZONE_IOVA_CONTIG,
            sys::RTE_CACHE_LINE_SIZE,
        )
    };
    if mz.is_null() {
        tracing::info!(pool = ?name, bytes = len, error = %rte_strerror(ffi_errno()), "no IOVA-contiguous memzone for a packed mempool; laying mbufs out page by page");
        discard();
        return Ok(None);
    }
    // SAFETY: mz is a reserved zone of at least `len` bytes; free_zone frees
    // it when the pool's memory chunk goes (rte_mempool_free). The pool is
    // empty, so this places all `mbufs` objects back to back from its start.
    let added = unsafe {
        let z = &*mz;
        sys::rte_mempool_populate_iova(
            mp.as_ptr(),
            z.__bindgen_anon_1.addr.cast(),
            z.iova,
            z.len,
            Some(free_zone),
            mz as *mut std::os::raw::c_void,
        )
    };
    if added < 0 {
        // SAFETY: population failed, so the pool did not take the zone: free it here.
        unsafe { sys::rte_memzone_free(mz) };
    }
    if added != cfg.mbufs as i32 {
        let why = if added < 0 {
            rte_strerror(-added)
        } else {
            format!("{added} of {} mbufs placed", cfg.mbufs)
        };
        discard();
        return Err(Error::new(
            ErrorKind::Exhausted,
            format!("populate mempool {name:?}: {why}"),
        ));
    }
    // SAFETY: the pool is populated; rte_pktmbuf_init initialises each mbuf
    // from the pool's private data (set above) and takes no argument.
    unsafe {
        sys::rte_mempool_obj_iter(
            mp.as_ptr(),
            Some(sys::rte_pktmbuf_init),
            std::ptr::null_mut(),
        )
    };
    Ok(Some(mp))
}

/// Memory-chunk free callback of [`create_packed`]'s pools: frees the zone.
unsafe extern "C" fn free_zone(
    _memhdr: *mut sys::rte_mempool_memhdr,
    opaque: *mut std::os::raw::c_void,
) {
    // SAFETY: opaque is the memzone create_packed reserved for this chunk,
    // freed once, when the pool releases the chunk.
    unsafe { sys::rte_memzone_free(opaque as *const sys::rte_memzone) };
}

/// A pool laid out by `rte_pktmbuf_pool_create`: no mbuf crosses a page.
fn create_paged(name: &CString, cfg: MempoolConfig) -> Result<NonNull<sys::rte_mempool>> {
    // SAFETY: the EAL is running (the caller holds an Eal); the name is
    // NUL-terminated and DPDK copies it. rte_socket_id has no precondition.
    let ptr = unsafe {
        sys::rte_pktmbuf_pool_create(
            name.as_ptr(),
            cfg.mbufs,
            cfg.cache,
            0,
            cfg.data_room,
            sys::rte_socket_id() as i32,
        )
    };
    NonNull::new(ptr).ok_or_else(|| create_error(cfg))
}

fn create_error(cfg: MempoolConfig) -> Error {
    let errno = ffi_errno();
    Error::new(
        ErrorKind::Exhausted,
        format!("create mempool of {} mbufs of {} bytes: {}", cfg.mbufs, cfg.data_room, rte_strerror(errno)),
    )
    .with_fix("give the EAL more memory (-m / Memory::NoHuge { mb }, or more hugepages), or use fewer mbufs")
}

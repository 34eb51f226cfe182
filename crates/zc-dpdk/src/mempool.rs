//! A packet mbuf pool (`rte_pktmbuf_pool_create`), freed when the last port
//! and queue using it are gone.

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
            .field("available", &self.available())
            .finish()
    }
}

static NEXT_POOL: AtomicU32 = AtomicU32::new(0);

impl Mempool {
    /// Creates a pool on the caller's NUMA socket.
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
        let cname = CString::new(name.as_str()).map_err(|_| Error::config("pool name has a NUL byte"))?;
        // SAFETY: the EAL is running (eal exists); the name is NUL-terminated and
        // DPDK copies it. rte_socket_id has no precondition.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                cfg.mbufs,
                cfg.cache,
                0,
                cfg.data_room,
                sys::rte_socket_id() as i32,
            )
        };
        let Some(ptr) = NonNull::new(ptr) else {
            let errno = ffi_errno();
            return Err(Error::new(
                ErrorKind::Exhausted,
                format!(
                    "create mempool of {} mbufs of {} bytes: {}",
                    cfg.mbufs,
                    cfg.data_room,
                    rte_strerror(errno)
                ),
            )
            .with_fix("give the EAL more memory (-m / Memory::NoHuge { mb }, or more hugepages), or use fewer mbufs"));
        };
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                ptr,
                cfg,
                name,
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
}

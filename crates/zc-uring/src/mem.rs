//! Memory the kernel writes into or reads from asynchronously.
//!
//! A [`Region`] is an anonymous private mapping, page aligned (the provided-buffer
//! ring must be) and zeroed. It is unmapped on drop, unless the owner could not
//! prove that the kernel is done with it: then [`Region::release`] keeps it mapped
//! for the life of the process and counts it in [`leaked_regions`], because a
//! mapping freed under an in-flight operation would let the kernel write into
//! memory the allocator has handed to someone else (io-uring issue #156).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use zc_core::{Error, Result};

static LEAKED: AtomicU64 = AtomicU64::new(0);

/// Regions this process deliberately left mapped because an io_uring might
/// still have used them (a ring dropped on another thread than its submitter,
/// or cancellation that did not finish in time). Zero in a correct program.
pub fn leaked_regions() -> u64 {
    LEAKED.load(Ordering::Relaxed)
}

/// An anonymous, zeroed, page-aligned mapping.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Region is plain memory owned by one value; moving the owner to
// another thread moves the only handle to it.
unsafe impl Send for Region {}

impl Region {
    /// Maps `len` bytes (rounded up to whole pages by the kernel).
    pub(crate) fn new(len: usize, what: &str) -> Result<Self> {
        if len == 0 {
            return Err(Error::config(format!("{what}: zero-sized buffer region")));
        }
        // SAFETY: a fresh anonymous private mapping at an address the kernel
        // picks; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os(format!("mmap {len} bytes for {what}")));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| Error::config(format!("mmap for {what} returned a null address")))?;
        Ok(Self { ptr, len })
    }

    /// Start of the mapping.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes mapped.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Unmaps the region when the kernel is known to be done with it
    /// (`kernel_done`); otherwise never unmaps it (see the module docs),
    /// counts it and logs a warning naming `owner`.
    pub(crate) fn release(self, kernel_done: bool, owner: std::fmt::Arguments<'_>) {
        if kernel_done {
            return;
        }
        tracing::warn!(
            "zc-uring: {owner} dropped without confirming the kernel finished with its buffers (other thread than its first user, or the cancel timed out): leaking {} bytes rather than freeing them under the kernel",
            self.len
        );
        LEAKED.fetch_add(1, Ordering::Relaxed);
        std::mem::forget(self);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly the mapping made in `new`, and the owner
        // only drops a Region once no operation that uses it is in flight.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

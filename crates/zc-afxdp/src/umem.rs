//! The UMEM: one page-aligned anonymous mapping cut into equal frames, shared
//! by every socket of a receiver set, and the checks every descriptor passes
//! before a byte of it is touched.

use std::fmt;
use std::ptr::NonNull;
use zc_core::error::{Error, ErrorKind, Result};

/// Frame sizes the kernel accepts in aligned mode.
pub const FRAME_SIZES: [u32; 2] = [2048, 4096];

/// Geometry of a UMEM: `frames` frames of `frame_size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemLayout {
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    /// Number of frames.
    pub frames: u32,
}

/// Why a descriptor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescError {
    /// The address lies beyond the UMEM.
    OutOfUmem {
        /// Descriptor address.
        addr: u64,
        /// UMEM size.
        umem_len: u64,
    },
    /// The bytes run past the end of the UMEM.
    StraddlesEnd {
        /// Descriptor address.
        addr: u64,
        /// Descriptor length.
        len: u32,
        /// UMEM size.
        umem_len: u64,
    },
    /// The bytes run past the end of their frame (into the next one).
    CrossesFrame {
        /// Descriptor address.
        addr: u64,
        /// Descriptor length.
        len: u32,
        /// Frame size.
        frame_size: u32,
    },
}

impl fmt::Display for DescError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DescError::OutOfUmem { addr, umem_len } => {
                write!(f, "descriptor address {addr:#x} lies outside the {umem_len}-byte UMEM")
            }
            DescError::StraddlesEnd { addr, len, umem_len } => write!(
                f,
                "descriptor {addr:#x}+{len} runs past the end of the {umem_len}-byte UMEM"
            ),
            DescError::CrossesFrame { addr, len, frame_size } => write!(
                f,
                "descriptor {addr:#x}+{len} is longer than what is left of its {frame_size}-byte frame"
            ),
        }
    }
}

impl std::error::Error for DescError {}

impl UmemLayout {
    /// Checks the geometry: a supported frame size, at least one frame, and a
    /// total that fits the address space.
    pub fn new(frame_size: u32, frames: u32) -> Result<Self> {
        if !FRAME_SIZES.contains(&frame_size) {
            return Err(Error::config(format!(
                "AF_XDP frame size {frame_size} is not supported: use 2048 or 4096"
            )));
        }
        if frames == 0 {
            return Err(Error::config("a UMEM needs at least one frame"));
        }
        let layout = Self { frame_size, frames };
        if usize::try_from(layout.bytes()).is_err() {
            return Err(Error::config(format!(
                "a UMEM of {frames} × {frame_size} bytes does not fit the address space"
            )));
        }
        Ok(layout)
    }

    /// UMEM size in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.frame_size) * u64::from(self.frames)
    }

    /// Address of frame `i` (the start of its chunk).
    pub fn frame_addr(&self, i: u32) -> u64 {
        u64::from(i) * u64::from(self.frame_size)
    }

    /// Checks that `len` bytes at `addr` lie inside one frame of the UMEM, and
    /// returns the byte range. Every descriptor from the rx or completion ring,
    /// and every one we are asked to transmit, passes here first.
    pub fn check(&self, addr: u64, len: u32) -> Result<std::ops::Range<usize>, DescError> {
        let umem_len = self.bytes();
        if addr >= umem_len {
            return Err(DescError::OutOfUmem { addr, umem_len });
        }
        let end = addr + u64::from(len); // addr < umem_len ≤ usize::MAX: no overflow
        if end > umem_len {
            return Err(DescError::StraddlesEnd {
                addr,
                len,
                umem_len,
            });
        }
        let frame_end = (addr / u64::from(self.frame_size) + 1) * u64::from(self.frame_size);
        if end > frame_end {
            return Err(DescError::CrossesFrame {
                addr,
                len,
                frame_size: self.frame_size,
            });
        }
        // Both fit in usize: checked in `new`.
        Ok(addr as usize..end as usize)
    }

    /// The start of the frame holding `addr`.
    pub fn frame_of(&self, addr: u64) -> u64 {
        addr - addr % u64::from(self.frame_size)
    }
}

/// The UMEM's memory: an anonymous shared mapping, page-aligned by mmap,
/// optionally on 2 MiB hugepages. Unmapped on drop, after every socket using
/// it is closed (the sockets hold an `Arc` to it).
pub struct UmemMemory {
    ptr: NonNull<u8>,
    layout: UmemLayout,
    mapped: usize,
    hugepages: bool,
}

// SAFETY: the mapping is plain memory owned by this value; the sockets that
// share it each touch only the frames they own at any moment (a frame belongs
// to exactly one of: a fill ring, the kernel, a burst, a tx slot, a free list).
unsafe impl Send for UmemMemory {}
// SAFETY: as above: concurrent users access disjoint frames; the kernel
// synchronises its accesses through the rings' acquire/release indices.
unsafe impl Sync for UmemMemory {}

impl UmemMemory {
    /// Maps the UMEM. With `hugepages`, tries `MAP_HUGETLB` first and falls
    /// back to normal pages (reported by [`UmemMemory::on_hugepages`]).
    pub fn map(layout: UmemLayout, hugepages: bool) -> Result<Self> {
        let len = layout.bytes() as usize;
        if hugepages {
            const HUGE: usize = 2 << 20;
            let mapped = len.div_ceil(HUGE) * HUGE;
            if let Some(ptr) = Self::mmap(mapped, libc::MAP_HUGETLB) {
                return Ok(Self {
                    ptr,
                    layout,
                    mapped,
                    hugepages: true,
                });
            }
            tracing::info!("AF_XDP UMEM: no free 2 MiB hugepages, using normal pages");
        }
        match Self::mmap(len, 0) {
            Some(ptr) => Ok(Self {
                ptr,
                layout,
                mapped: len,
                hugepages: false,
            }),
            None => Err(Error::last_os(format!("mmap a {len}-byte UMEM"))),
        }
    }

    fn mmap(len: usize, extra: libc::c_int) -> Option<NonNull<u8>> {
        // SAFETY: a new anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(p.cast())
    }

    /// The geometry.
    pub fn layout(&self) -> UmemLayout {
        self.layout
    }

    /// True when the UMEM sits on hugepages.
    pub fn on_hugepages(&self) -> bool {
        self.hugepages
    }

    /// Start of the mapping (for `XDP_UMEM_REG`).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The bytes of a checked range.
    ///
    /// # Safety
    /// `range` must come from [`UmemLayout::check`] on this UMEM's layout, and
    /// the frame must be owned by the caller (not in a ring the kernel writes)
    /// for the lifetime of the slice.
    pub(crate) unsafe fn slice(&self, range: std::ops::Range<usize>) -> &[u8] {
        // SAFETY: in bounds by `check`; not concurrently written by the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(range.start), range.len()) }
    }

    /// The bytes of a checked range, writable.
    ///
    /// # Safety
    /// As for [`UmemMemory::slice`], and no other reference to that frame exists.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, range: std::ops::Range<usize>) -> &mut [u8] {
        // SAFETY: in bounds by `check`; exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(range.start), range.len()) }
    }
}

impl Drop for UmemMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; every socket that
        // registered it is closed (they hold the Arc this value lives in).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
    }
}

impl fmt::Debug for UmemMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UmemMemory")
            .field("layout", &self.layout)
            .field("hugepages", &self.hugepages)
            .finish()
    }
}

/// A [`DescError`] as a zc error (for the tx path).
pub(crate) fn desc_error(e: DescError) -> Error {
    Error::new(ErrorKind::Config, format!("AF_XDP: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_supported_geometries_are_accepted() {
        assert!(UmemLayout::new(1000, 8).is_err());
        assert!(UmemLayout::new(2048, 0).is_err());
        assert_eq!(UmemLayout::new(4096, 8).unwrap().bytes(), 32768);
    }

    #[test]
    fn descriptors_inside_one_frame_pass() {
        let l = UmemLayout::new(2048, 4).unwrap();
        assert_eq!(l.check(0, 2048), Ok(0..2048));
        assert_eq!(l.check(2048 + 256, 100), Ok(2304..2404));
        assert_eq!(l.check(3 * 2048, 0), Ok(6144..6144));
        assert_eq!(l.frame_of(2048 + 256), 2048);
    }

    #[test]
    fn descriptors_out_of_the_umem_straddling_or_too_long_are_refused() {
        let l = UmemLayout::new(2048, 4).unwrap();
        assert!(matches!(l.check(8192, 1), Err(DescError::OutOfUmem { .. })));
        assert!(matches!(
            l.check(u64::MAX, 1),
            Err(DescError::OutOfUmem { .. })
        ));
        assert!(matches!(
            l.check(8000, 500),
            Err(DescError::StraddlesEnd { .. })
        ));
        assert!(matches!(
            l.check(8191, u32::MAX),
            Err(DescError::StraddlesEnd { .. })
        ));
        assert!(matches!(
            l.check(100, 2000),
            Err(DescError::CrossesFrame { .. })
        ));
        assert!(matches!(
            l.check(0, 2049),
            Err(DescError::CrossesFrame { .. })
        ));
        let msg = l.check(100, 2000).unwrap_err().to_string();
        assert!(msg.contains("2048-byte frame"), "{msg}");
    }

    #[test]
    fn hugepages_are_used_when_free_and_otherwise_reported_absent() {
        let l = UmemLayout::new(2048, 2048).unwrap(); // 4 MiB
        let m = UmemMemory::map(l, true).unwrap();
        if m.on_hugepages() {
            assert_eq!(m.as_ptr() as usize % (2 << 20), 0, "2 MiB aligned");
        }
        let r = l.check(l.frame_addr(2047), 2048).unwrap();
        // SAFETY: a checked range of a UMEM no socket uses.
        unsafe { m.slice_mut(r) }.fill(1);
    }

    #[test]
    fn the_mapping_is_page_aligned_and_writable() {
        let l = UmemLayout::new(4096, 16).unwrap();
        let m = UmemMemory::map(l, false).unwrap();
        assert_eq!(m.as_ptr() as usize % 4096, 0);
        let r = l.check(4096 * 15, 4096).unwrap();
        // SAFETY: a checked range of a UMEM no kernel socket knows about.
        let s = unsafe { m.slice_mut(r.clone()) };
        s.fill(0xab);
        // SAFETY: as above; the mutable slice is no longer used.
        assert!(unsafe { m.slice(r) }.iter().all(|&b| b == 0xab));
    }
}

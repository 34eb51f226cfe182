//! File → socket senders: `sendfile(2)`, its plain twin `pread`+`send`, and
//! `mmap`+`send`.
//!
//! All three move exactly `len` bytes starting at `offset` or return an error:
//! they loop over short writes, wait out `EAGAIN` with `poll` (so they work on
//! blocking and non-blocking sockets alike), and report a file that shrank
//! underneath them as [`truncated`](is_truncated) instead of sending less.
//!
//! `sendfile` and a splice into a socket can raise `SIGPIPE` when the peer is
//! gone. Rust programs ignore `SIGPIPE` from start-up, so the call returns
//! `EPIPE` instead; a C host embedding this crate must ignore it too.

use crate::sys::{cvt, errno, interrupted, send_all, wait, would_block};
use std::fs::File;

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::time::Duration;
use zc_core::{Error, ErrorKind, Result};

/// Which system calls carry a file's bytes to the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileMethod {
    /// `sendfile(2)`: the kernel moves page-cache pages to the socket, no copy
    /// through user space.
    Sendfile,
    /// The plain twin: `pread` into a user buffer, then `send` it (two copies).
    ReadWrite,
    /// `mmap` the file and `send` from the mapping (one copy, no read).
    Mmap,
}

impl std::str::FromStr for FileMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sendfile" => Ok(Self::Sendfile),
            "read-write" | "readwrite" => Ok(Self::ReadWrite),
            "mmap" => Ok(Self::Mmap),
            other => Err(Error::config(format!(
                "unknown file method `{other}`: use sendfile, read-write or mmap"
            ))),
        }
    }
}

/// Largest count handed to one `sendfile` call (the kernel caps it at
/// 0x7ffff000 anyway).
const SENDFILE_MAX: u64 = 1 << 30;

/// Size of the pieces `mmap`+`send` checks the file length before.
const MMAP_CHUNK: u64 = 1 << 20;

/// Text every truncation error carries, see [`is_truncated`].
const TRUNCATED: &str = "file truncated while being sent";

fn truncated(op: &str, at: u64, wanted_end: u64) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{op}: {TRUNCATED} (at byte {at}, {wanted_end} expected); the peer got a short body and the connection must be closed"),
    )
}

/// True when `e` says the file shrank while it was being sent.
pub fn is_truncated(e: &Error) -> bool {
    e.to_string().contains(TRUNCATED)
}

/// Sends `len` bytes of `file` from `offset` with `sendfile(2)`.
///
/// `timeout` is how long the peer may accept nothing before the call gives up.
/// Returns the bytes sent (always `len`).
pub fn send_file(
    sock: BorrowedFd<'_>,
    file: &File,
    offset: u64,
    len: u64,
    timeout: Option<Duration>,
) -> Result<u64> {
    let end = offset
        .checked_add(len)
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or_else(|| Error::config(format!("range {offset}+{len} is beyond any file")))?;
    let mut off = offset as libc::off_t;
    while (off as u64) < end {
        let count = (end - off as u64).min(SENDFILE_MAX) as usize;
        // SAFETY: both descriptors are open for the call; `off` is a valid
        // off_t the kernel reads and advances by the bytes sent.
        let r = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
        match cvt(r) {
            Ok(0) => return Err(truncated("sendfile", off as u64, end)),
            Ok(_) => {}
            Err(e) if would_block(&e) => wait(sock, libc::POLLOUT, timeout, "sendfile")?,
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(Error::io("sendfile", e)),
        }
    }
    Ok(len)
}

/// The plain twin of [`send_file`]: `pread` into `buf`, `send` from it.
pub fn copy_file(
    sock: BorrowedFd<'_>,
    file: &File,
    offset: u64,
    len: u64,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> Result<u64> {
    if buf.is_empty() {
        return Err(Error::config("copy_file needs a non-empty buffer"));
    }
    let end = offset
        .checked_add(len)
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or_else(|| Error::config(format!("range {offset}+{len} is beyond any file")))?;
    let mut off = offset;
    while off < end {
        let want = (end - off).min(buf.len() as u64) as usize;
        // SAFETY: buf has at least `want` writable bytes; the file is open.
        let r = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                want,
                off as libc::off_t,
            )
        };
        match cvt(r) {
            Ok(0) => return Err(truncated("pread", off, end)),
            Ok(n) => {
                send_all(sock, &buf[..n], 0, timeout)?;
                off += n as u64;
            }
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(Error::io("pread", e)),
        }
    }
    Ok(len)
}

/// A read-only shared mapping of a whole file, sent with `send` straight from
/// the mapping.
///
/// # Why a truncated file cannot crash the process
///
/// Touching a mapped page that lies beyond the end of the file raises `SIGBUS`,
/// but only when *user space* touches it. This type never reads the mapping
/// itself: it never even forms a `&[u8]` over it (another process may change the
/// file, which a shared reference forbids). The only reader is the kernel,
/// inside `send(2)`, which copies from the user address with a fault-tolerant
/// copy: a fault on a page past EOF ends the copy early and the call returns
/// the bytes copied so far, or `EFAULT` when there were none — never a signal.
///
/// On top of that, `fstat` before every 1 MB piece notices a shrunken file and
/// returns a clear [truncation error](is_truncated); `EFAULT` covers the race
/// where the file shrinks between that check and the copy. So the check makes
/// the error readable and the kernel's fault handling makes it sound; a
/// SIGBUS handler with `sigsetjmp` was not needed.
#[derive(Debug)]
pub struct MappedFile {
    file: File,
    /// Start of the mapping; `None` for an empty file (nothing can be mapped).
    ptr: Option<NonNull<u8>>,
    len: u64,
}

// SAFETY: the mapping is owned by this value alone, read only by the kernel
// (never dereferenced in user space), and unmapped exactly once in Drop, so it
// may move to and be shared with other threads like the File it came from.
unsafe impl Send for MappedFile {}
// SAFETY: as above; `send_range` takes `&self` and only passes the address to
// send(2), which is safe to do from many threads at once.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps all of `file` (its length at this moment).
    pub fn new(file: File) -> Result<Self> {
        let len = file.metadata().map_err(|e| Error::io("fstat", e))?.len();
        if len == 0 {
            return Ok(Self {
                file,
                ptr: None,
                len,
            });
        }
        let map_len = usize::try_from(len).map_err(|_| {
            Error::config(format!("a {len}-byte file does not fit the address space"))
        })?;
        // SAFETY: a fresh read-only shared mapping chosen by the kernel; no
        // existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os("mmap"));
        }
        Ok(Self {
            file,
            ptr: NonNull::new(p.cast()),
            len,
        })
    }

    /// Length of the mapping: the file's length when it was mapped.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sends `len` bytes from `offset`, checking before every 1 MB piece that
    /// the file still holds them. Returns the bytes sent (always `len`).
    pub fn send_range(
        &self,
        sock: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        timeout: Option<Duration>,
    ) -> Result<u64> {
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                Error::config(format!(
                    "range {offset}+{len} is beyond the {}-byte mapping",
                    self.len
                ))
            })?;
        let Some(base) = self.ptr else {
            return Ok(0);
        };
        let mut off = offset;
        while off < end {
            let piece_end = (off + MMAP_CHUNK).min(end);
            let size = self
                .file
                .metadata()
                .map_err(|e| Error::io("fstat", e))?
                .len();
            if size < piece_end {
                return Err(truncated("mmap send", off, end));
            }
            while off < piece_end {
                let n = (piece_end - off) as usize;
                // SAFETY: off < self.len, so the address lies inside our
                // mapping; only the kernel reads it (see the type's docs).
                let r = unsafe {
                    libc::send(
                        sock.as_raw_fd(),
                        base.as_ptr().add(off as usize).cast(),
                        n,
                        libc::MSG_NOSIGNAL,
                    )
                };
                match cvt(r) {
                    Ok(n) => off += n as u64,
                    Err(e) if would_block(&e) => wait(sock, libc::POLLOUT, timeout, "mmap send")?,
                    Err(e) if interrupted(&e) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {
                        return Err(truncated("mmap send", off, end))
                    }
                    Err(e) => return Err(Error::io("send from mapping", e)),
                }
            }
        }
        Ok(len)
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: exactly the region mmap returned in `new`, unmapped once;
            // no reference into it exists.
            if unsafe { libc::munmap(p.as_ptr().cast(), self.len as usize) } != 0 {
                tracing::warn!("munmap: {}", errno());
            }
        }
    }
}

/// Sends `len` bytes of `file` from `offset` with `method`; `buf` is the
/// user buffer of [`FileMethod::ReadWrite`] (ignored by the others).
pub fn send_with(
    method: FileMethod,
    sock: BorrowedFd<'_>,
    file: &File,
    offset: u64,
    len: u64,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> Result<u64> {
    match method {
        FileMethod::Sendfile => send_file(sock, file, offset, len, timeout),
        FileMethod::ReadWrite => copy_file(sock, file, offset, len, buf, timeout),
        FileMethod::Mmap => {
            let clone = file.try_clone().map_err(|e| Error::io("dup", e))?;
            MappedFile::new(clone)?.send_range(sock, offset, len, timeout)
        }
    }
}

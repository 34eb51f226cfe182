//! The few socket options the backend sets and reads.

use std::os::fd::{AsRawFd, BorrowedFd};
use zc_core::{Error, Result};

fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: `value` is a live i32 and its exact size is passed; the kernel
    // only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn get_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> std::io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which is
    // a live i32 of exactly that size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the receive buffer, beyond `net.core.rmem_max` when privileged, and
/// returns what the kernel granted (it doubles the request for bookkeeping).
pub(crate) fn set_rcvbuf(fd: BorrowedFd<'_>, bytes: usize) -> Result<usize> {
    let want = i32::try_from(bytes)
        .map_err(|_| Error::config(format!("receive buffer of {bytes} bytes is beyond 2 GiB")))?;
    if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want).is_err() {
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, want)
            .map_err(|e| Error::io("setsockopt(SO_RCVBUF)", e))?;
    }
    let got = get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map_err(|e| Error::io("getsockopt(SO_RCVBUF)", e))?;
    Ok(usize::try_from(got).unwrap_or(0))
}

/// Asks for `SCM_TIMESTAMPNS` (CLOCK_REALTIME) on every datagram.
pub(crate) fn enable_timestamps(fd: BorrowedFd<'_>) -> Result<()> {
    set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
        .map_err(|e| Error::io("setsockopt(SO_TIMESTAMPNS)", e))
}

/// Datagrams the socket dropped (full receive buffer), from `SO_MEMINFO`.
pub(crate) fn socket_drops(fd: BorrowedFd<'_>) -> Option<u64> {
    const SK_MEMINFO_DROPS: usize = 8;
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, a live array
    // of exactly that size, and updates `len` to what it wrote.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let written = usize::try_from(len).ok()? / std::mem::size_of::<u32>();
    (rc == 0 && written > SK_MEMINFO_DROPS).then(|| u64::from(info[SK_MEMINFO_DROPS]))
}

/// NAPI id of the device queue the latest datagram came from (0: none, e.g.
/// veth without GRO or XDP), from `SO_INCOMING_NAPI_ID`.
pub(crate) fn incoming_napi_id(fd: BorrowedFd<'_>) -> Option<u32> {
    get_int(fd, libc::SOL_SOCKET, libc::SO_INCOMING_NAPI_ID)
        .ok()
        .map(|v| v as u32)
}

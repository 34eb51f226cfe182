//! Syscall helpers shared by the modules: errno conversion, readiness waits
//! and whole sends.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};
use zc_core::{Error, Result};

/// The errno of the last failed call.
#[inline]
pub(crate) fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// `Ok(n)` for a non-negative syscall return, the errno otherwise.
#[inline]
pub(crate) fn cvt(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as usize)
    }
}

/// True for the errors that mean "try again once the descriptor is ready".
#[inline]
pub(crate) fn would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

/// True for an interrupted call that must simply be repeated.
#[inline]
pub(crate) fn interrupted(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINTR)
}

/// Waits until `fd` reports one of `events` (POLLIN/POLLOUT), or an error or
/// hang-up (the next syscall on it then says what happened). `timeout` is the
/// longest the peer may make no progress; `None` waits forever.
pub(crate) fn wait(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
    what: &str,
) -> Result<()> {
    let deadline = timeout.and_then(zc_core::sys::deadline_after);
    loop {
        let ms = match deadline {
            None => -1,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out(what, timeout.unwrap_or_default()));
                }
                // Round up so that a sub-millisecond remainder does not spin.
                left.as_millis().min(i32::MAX as u128 - 1) as i32 + 1
            }
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd that lives across the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return Ok(());
        }
        if r < 0 {
            let e = errno();
            if interrupted(&e) {
                continue;
            }
            return Err(Error::io(format!("poll ({what})"), e));
        }
    }
}

/// The error for a peer that made no progress within `t`.
pub(crate) fn timed_out(what: &str, t: Duration) -> Error {
    Error::io(
        format!("{what}: no progress within {t:?}"),
        io::Error::from(io::ErrorKind::TimedOut),
    )
}

/// Sends all of `buf` on the socket with `send(MSG_NOSIGNAL | flags)`, waiting
/// out `EAGAIN` and looping over short writes.
pub(crate) fn send_all(
    sock: BorrowedFd<'_>,
    mut buf: &[u8],
    flags: libc::c_int,
    timeout: Option<Duration>,
) -> Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a live slice of buf.len() readable bytes.
        let r = unsafe {
            libc::send(
                sock.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                flags | libc::MSG_NOSIGNAL,
            )
        };
        match cvt(r) {
            Ok(n) => buf = &buf[n..],
            Err(e) if would_block(&e) => wait(sock, libc::POLLOUT, timeout, "send")?,
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(Error::io("send", e)),
        }
    }
    Ok(())
}

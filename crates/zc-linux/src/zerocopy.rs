//! `MSG_ZEROCOPY` sending: the kernel sends straight from the caller's pages,
//! so those pages must not change until the kernel says it is done with them.
//!
//! [`ZeroCopySender::send`] takes the buffer **by value**; the only way to get
//! it back is a [`Completion`], produced when the socket's error queue has
//! reported every send that used it. Reusing a buffer before that is therefore
//! a compile error, not a rule in a comment:
//!
//! ```compile_fail,E0382
//! # fn f(mut zc: zc_linux::ZeroCopySender<Vec<u8>>) {
//! let mut buf = vec![1u8; 64 * 1024];
//! zc.send(buf).unwrap();
//! buf[0] = 2; // error: `buf` was moved into the sender
//! # }
//! ```
//!
//! How completions work (Documentation/networking/msg_zerocopy.rst): every
//! successful `send` with `MSG_ZEROCOPY` gets the next 32-bit id; the kernel
//! later queues notifications on the error queue, each a *range*
//! `[ee_info, ee_data]` of ids that may cover many sends, not necessarily in
//! order. The cmsg is `SOL_IP/IP_RECVERR` on IPv4 and `SOL_IPV6/IPV6_RECVERR`
//! on IPv6 sockets; both are accepted. `ee_code` has
//! `SO_EE_CODE_ZEROCOPY_COPIED` when the kernel fell back to copying: always
//! on loopback and between network namespaces (the receive path must copy
//! before the pages could be handed to another socket), and whenever the device
//! lacks scatter-gather. [`Completion::copied`] and [`ZeroCopyStats`] report it.
//!
//! A large TCP buffer can take several sends (short writes); it comes back
//! when all of their ids have completed. `ENOBUFS` means the socket's option
//! memory (`net.core.optmem_max`) is full of pending notifications: the sender
//! reads the error queue (which frees it) and retries, or waits for sends in
//! flight to complete; only when nothing of its own holds optmem does it send
//! that piece with a plain copy, counted in [`ZeroCopyStats::copy_fallbacks`].

use crate::sys::{cvt, errno, interrupted, send_all, wait, would_block};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zc_core::{Error, ErrorKind, Result};
use zc_os::{cmsg, sockopt};

pub(crate) mod ledger;
use ledger::Ledger;

/// `SO_ZEROCOPY` (asm-generic/socket.h); not in the libc crate.
const SO_ZEROCOPY: libc::c_int = 60;
/// `SO_EE_ORIGIN_ZEROCOPY` (linux/errqueue.h).
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED` (linux/errqueue.h).
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// A buffer whose bytes stay at the same address when the value is moved, and
/// cannot be changed by anyone while the sender owns the value.
///
/// # Safety
///
/// `bytes` must return the same memory every time for the life of the value,
/// however the value moves (so not an inline array), and nothing else may
/// write that memory while the value is owned by a [`ZeroCopySender`].
pub unsafe trait StableBuf: Send {
    /// The bytes to send.
    fn bytes(&self) -> &[u8];
}

// SAFETY: the heap block of a Vec does not move when the Vec does, and only
// the Vec's owner (the sender) could write it.
unsafe impl StableBuf for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: as for Vec: a boxed slice's heap block stays put and is uniquely owned.
unsafe impl StableBuf for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: static data never moves; a shared `'static` slice is never written.
unsafe impl StableBuf for &'static [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: the Arc's block never moves while any clone lives, and a shared
// `[u8]` behind an Arc cannot be written (get_mut needs the only clone, and the
// sender holds one).
unsafe impl StableBuf for Arc<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A buffer given back by the kernel.
#[derive(Debug)]
pub struct Completion<B> {
    /// The buffer, free to reuse.
    pub buf: B,
    /// True when the kernel copied (some of) it instead of sending from it.
    pub copied: bool,
}

/// Counters of one sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroCopyStats {
    /// Buffers accepted by [`ZeroCopySender::send`].
    pub buffers: u64,
    /// Bytes of those buffers.
    pub bytes: u64,
    /// Successful `MSG_ZEROCOPY` sends, i.e. notification ids issued.
    pub ids_issued: u64,
    /// Ids reported complete.
    pub ids_completed: u64,
    /// Of those, ids the kernel reported as copied.
    pub ids_copied: u64,
    /// Error-queue notifications read (each covers a range of ids).
    pub notifications: u64,
    /// Ids reported again, or never issued: must stay 0.
    pub ids_unexpected: u64,
    /// `ENOBUFS` answers.
    pub enobufs: u64,
    /// Pieces sent with a plain copy because `ENOBUFS` persisted with nothing
    /// left to complete.
    pub copy_fallbacks: u64,
    /// Other errors found on the error queue (e.g. ICMP).
    pub queue_errors: u64,
}

/// Why a send failed. `buf` is `Some` when the kernel never got the buffer;
/// `None` when part of it was already sent, in which case it comes back as a
/// [`Completion`] like any other.
#[derive(Debug)]
pub struct SendError<B> {
    /// What failed.
    pub error: Error,
    /// The buffer, when it was not lent to the kernel.
    pub buf: Option<B>,
}

impl<B> std::fmt::Display for SendError<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<B: std::fmt::Debug> std::error::Error for SendError<B> {}

/// A connected TCP or UDP socket (IPv4 or IPv6) sending with `MSG_ZEROCOPY`.
///
/// It must be the only user of the socket's `MSG_ZEROCOPY` ids, because the
/// kernel numbers sends per socket, not per descriptor: a second sender on a
/// `try_clone` of the same socket would take ids this one's ledger counts on
/// and have its buffers handed back while the kernel still reads them. The
/// constructors therefore refuse a socket whose `SO_ZEROCOPY` is already on
/// (a clone already handed to another `ZeroCopySender`, or a socket that has
/// sent with `MSG_ZEROCOPY` before). What they cannot see is code outside zc
/// sending with `MSG_ZEROCOPY` on a clone after the hand-over: don't.
pub struct ZeroCopySender<B: StableBuf> {
    sock: OwnedFd,
    /// Buffers the kernel may still read and the ids their sends took.
    ledger: Ledger<B>,
    stats: ZeroCopyStats,
    timeout: Option<Duration>,
}

impl<B: StableBuf> ZeroCopySender<B> {
    /// Wraps a connected TCP stream.
    pub fn tcp(s: TcpStream) -> Result<Self> {
        Self::new(s.into())
    }

    /// Wraps a *connected* UDP socket (`UdpSocket::connect`).
    pub fn udp(s: UdpSocket) -> Result<Self> {
        if let Err(e) = s.peer_addr() {
            return Err(Error::io("zerocopy UDP socket has no peer", e)
                .with_fix("call UdpSocket::connect before handing it over"));
        }
        Self::new(s.into())
    }

    fn new(sock: OwnedFd) -> Result<Self> {
        match sockopt::get_int(sock.as_fd(), libc::SOL_SOCKET, SO_ZEROCOPY) {
            Ok(0) | Err(_) => {} // off, or a kernel without it: set_int says which
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "zerocopy socket already has SO_ZEROCOPY on: another sender (a try_clone \
                     of it?) may own its MSG_ZEROCOPY ids",
                )
                .with_fix("give each ZeroCopySender its own socket, not a clone of one in use"));
            }
        }
        if let Err(e) = sockopt::set_int(sock.as_fd(), libc::SOL_SOCKET, SO_ZEROCOPY, 1) {
            let err = Error::io("setsockopt(SO_ZEROCOPY)", e);
            return Err(
                if matches!(err.kind(), ErrorKind::Io | ErrorKind::Unsupported) {
                    err.with_kind(ErrorKind::Unsupported).with_fix(
                        "MSG_ZEROCOPY needs Linux 4.14 (TCP) or 5.0 (UDP); use plain send",
                    )
                } else {
                    err
                },
            );
        }
        // SAFETY: fcntl on a socket we own.
        let fl = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_GETFL) };
        if fl < 0 {
            return Err(Error::last_os("fcntl(F_GETFL)"));
        }
        // SAFETY: as above, with plain integer flags.
        if unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(Error::last_os("fcntl(O_NONBLOCK)"));
        }
        Ok(Self {
            sock,
            ledger: Ledger::new(0),
            stats: ZeroCopyStats::default(),
            timeout: Some(Duration::from_secs(30)),
        })
    }

    /// How long a send may wait for socket space, and [`flush`](Self::flush)
    /// for completions, before failing (default 30 s; `None` = forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// The socket, e.g. for socket options. Do not send on it directly with
    /// `MSG_ZEROCOPY`: that would take ids this sender counts on.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Counters so far.
    pub fn stats(&self) -> ZeroCopyStats {
        self.stats
    }

    /// Buffers not yet handed back (pending or completed but not popped).
    pub fn in_flight(&self) -> usize {
        self.ledger.held()
    }

    /// Sends all of `buf` (one datagram for UDP). The buffer stays with the
    /// sender until [`pop_completed`](Self::pop_completed) returns it.
    pub fn send(&mut self, buf: B) -> std::result::Result<(), SendError<B>> {
        let (ptr, len) = {
            let b = buf.bytes();
            (b.as_ptr(), b.len())
        };
        // The buffer joins the in-flight queue *before* its first piece is
        // sent: a large TCP buffer takes several sends, and the completion of
        // its first ids can arrive (and must find it) while later pieces are
        // still waiting for socket space. An empty buffer needs no send at
        // all (the kernel issues no id for it) and completes at once, in order.
        self.ledger.push(buf);
        let mut off = 0usize;
        while off < len {
            // SAFETY: off < len, inside the buffer now owned by in_flight,
            // whose bytes stay at `ptr` (StableBuf) until it is popped.
            let piece = unsafe { ptr.add(off) };
            match self.send_piece(piece, len - off) {
                Ok((n, took_id)) => {
                    off += n;
                    if took_id {
                        self.ledger.took_id();
                        self.stats.ids_issued += 1;
                    }
                }
                Err(error) => {
                    if let Some(buf) = self.ledger.unsend_last() {
                        return Err(SendError {
                            error,
                            buf: Some(buf),
                        });
                    }
                    // Part of it is with the kernel: it comes back completed.
                    return Err(SendError { error, buf: None });
                }
            }
        }
        self.stats.buffers += 1;
        self.stats.bytes += len as u64;
        Ok(())
    }

    /// One send of `len` bytes at `ptr`; returns bytes sent and whether it
    /// used an id.
    fn send_piece(&mut self, ptr: *const u8, len: usize) -> Result<(usize, bool)> {
        let mut plain = false;
        loop {
            let flags = libc::MSG_NOSIGNAL
                | libc::MSG_DONTWAIT
                | if plain { 0 } else { libc::MSG_ZEROCOPY };
            // SAFETY: ptr..ptr+len is readable (see send); the kernel may read
            // it after return, and may: the StableBuf stays in in_flight until
            // the completion of every id it took (see the struct's docs).
            let r = unsafe { libc::send(self.sock.as_raw_fd(), ptr.cast(), len, flags) };
            match cvt(r) {
                Ok(n) => return Ok((n, !plain)),
                Err(e) if interrupted(&e) => {}
                Err(e) if would_block(&e) => {
                    self.poll_completions()?;
                    wait(
                        self.sock.as_fd(),
                        libc::POLLOUT,
                        self.timeout,
                        "zerocopy send",
                    )?;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && !plain => {
                    self.stats.enobufs += 1;
                    // Notifications waiting on the error queue hold optmem:
                    // reading them frees it, so try again at once.
                    if self.poll_completions()? > 0 {
                        continue;
                    }
                    if self.ids_pending() > 0 {
                        // Sends still in flight hold optmem until they complete.
                        self.wait_completion(self.timeout)?;
                    } else {
                        // Nothing of ours holds it: optmem_max is too small
                        // for even one notification. Copy this piece.
                        plain = true;
                        self.stats.copy_fallbacks += 1;
                    }
                }
                Err(e) => return Err(Error::io("send(MSG_ZEROCOPY)", e)),
            }
        }
    }

    fn ids_pending(&self) -> u64 {
        self.stats.ids_issued - self.stats.ids_completed.min(self.stats.ids_issued)
    }

    /// Reads every notification queued now, without waiting. Returns how many
    /// ids completed.
    pub fn poll_completions(&mut self) -> Result<u64> {
        let before = self.stats.ids_completed;
        loop {
            // u64 storage keeps the control buffer aligned for cmsghdr.
            let mut control = [0u64; 32];
            // SAFETY: msghdr is plain old data; all-zero is valid (no name, no iov).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            // SAFETY: msg points at a live control buffer of the stated size.
            let r = unsafe {
                libc::recvmsg(
                    self.sock.as_raw_fd(),
                    &mut msg,
                    libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                let e = errno();
                if would_block(&e) {
                    break;
                }
                if interrupted(&e) {
                    continue;
                }
                return Err(Error::io("recvmsg(MSG_ERRQUEUE)", e));
            }
            let control = cmsg::bytes_of(&control, msg.msg_controllen);
            for ee in cmsg::iter(control).filter_map(|c| cmsg::ExtendedErr::from_cmsg(&c)) {
                if ee.origin == SO_EE_ORIGIN_ZEROCOPY && ee.errno == 0 {
                    let copied = ee.code & SO_EE_CODE_ZEROCOPY_COPIED != 0;
                    self.complete_range(ee.info, ee.data, copied);
                } else {
                    self.stats.queue_errors += 1;
                    tracing::debug!("error queue: origin {} errno {}", ee.origin, ee.errno);
                }
            }
        }
        Ok(self.stats.ids_completed - before)
    }

    /// Applies the completion of ids `lo..=hi` (wrapping) and counts it.
    fn complete_range(&mut self, lo: u32, hi: u32, copied: bool) {
        let a = self.ledger.complete(lo, hi, copied);
        self.stats.notifications += 1;
        self.stats.ids_completed += a.matched;
        if copied {
            self.stats.ids_copied += a.matched;
        }
        self.stats.ids_unexpected += a.unexpected;
    }

    /// The oldest buffer, if the kernel is done with it. Buffers come back in
    /// the order they were sent.
    pub fn pop_completed(&mut self) -> Option<Completion<B>> {
        self.ledger.pop_completed()
    }

    /// Waits until at least one notification arrives (or `timeout`), then reads
    /// them all.
    pub fn wait_completion(&mut self, timeout: Option<Duration>) -> Result<u64> {
        // poll reports POLLERR whenever the error queue is not empty, even
        // with no events asked for.
        wait(self.sock.as_fd(), 0, timeout, "zerocopy completion")?;
        self.poll_completions()
    }

    /// Waits until every buffer sent so far has completed (they still have
    /// to be taken with [`pop_completed`](Self::pop_completed)).
    pub fn flush(&mut self) -> Result<()> {
        let deadline = self.timeout.and_then(zc_core::sys::deadline_after);
        self.poll_completions()?;
        while self.ids_pending() > 0 {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(crate::sys::timed_out(
                    "zerocopy flush",
                    self.timeout.unwrap_or_default(),
                ));
            }
            self.wait_completion(left)?;
        }
        Ok(())
    }
}

impl<B: StableBuf> Drop for ZeroCopySender<B> {
    /// Buffers the kernel may still read are leaked, not freed: freed memory
    /// could be reused and sent in place of the original bytes. Call
    /// [`flush`](ZeroCopySender::flush) first to get them all back.
    fn drop(&mut self) {
        let _ = self.poll_completions();
        let leaked = self.ledger.leak_pending();
        if leaked > 0 {
            tracing::warn!("zerocopy sender dropped with {leaked} buffers still lent to the kernel: leaked them");
        }
    }
}

/// The plain twin: `send` that copies `buf` into the socket, looping over
/// short writes and waiting out `EAGAIN`.
pub fn send_plain(sock: BorrowedFd<'_>, buf: &[u8], timeout: Option<Duration>) -> Result<()> {
    send_all(sock, buf, 0, timeout)
}

//! The socket sender: `sendto` one at a time, or `sendmmsg` batches.

use crate::socket::{bind, check_sizes, udp_socket, zeroed_slice, SendConfig, SocketApi};
use socket2::{SockAddr, Socket};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use zc_core::backend::{DataPath, Mode, SendBurst, Sender, TxStats};
use zc_core::error::{Error, Result};

/// A UDP sender to one destination on a kernel socket (blocking: a full socket
/// buffer waits rather than drops, as a generator wants).
pub struct SocketSender {
    sock: Socket,
    api: SocketApi,
    slot: usize,
    dst: Box<SockAddr>,
    bufs: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    mode: Mode,
    stats: TxStats,
}

// SAFETY: the raw pointers in `iovs` and `hdrs` point only into heap buffers
// this struct owns (`bufs`, `iovs`, and the boxed `dst`), which move with it;
// those into `bufs` and `iovs` are re-derived before every send.
unsafe impl Send for SocketSender {}

impl SocketSender {
    /// Opens and binds the socket and allocates every buffer.
    pub fn open(cfg: SendConfig) -> Result<Self> {
        let batch = match cfg.api {
            SocketApi::Recvfrom => 1,
            SocketApi::Recvmmsg => cfg.batch,
        };
        check_sizes(batch, cfg.max_payload)?;
        let sock = udp_socket(&cfg.dst)?;
        let mut mode = Mode::new(
            match cfg.api {
                SocketApi::Recvfrom => "sendto",
                SocketApi::Recvmmsg => "sendmmsg",
            },
            DataPath::Copy,
            batch,
        );
        if let Some(want) = cfg.sndbuf {
            sock.set_send_buffer_size(want)
                .map_err(|e| Error::io("setsockopt SO_SNDBUF", e))?;
        }
        if let SocketAddr::V4(dst) = cfg.dst {
            if dst.ip().is_multicast() {
                if let SocketAddr::V4(local) = cfg.bind {
                    sock.set_multicast_if_v4(local.ip())
                        .map_err(|e| Error::io(format!("set IP_MULTICAST_IF {}", local.ip()), e))?;
                }
                sock.set_multicast_loop_v4(false)
                    .map_err(|e| Error::io("set IP_MULTICAST_LOOP", e))?;
                mode.details.push(format!("multicast to {dst}"));
            }
        }
        bind(&sock, cfg.bind)?;
        let slot = cfg.max_payload;
        let dst = Box::new(SockAddr::from(cfg.dst));
        let mut tx = SocketSender {
            sock,
            api: cfg.api,
            slot,
            dst,
            bufs: vec![0u8; slot * batch].into_boxed_slice(),
            iovs: zeroed_slice(batch),
            hdrs: zeroed_slice(batch),
            mode,
            stats: TxStats::default(),
        };
        for h in tx.hdrs.iter_mut() {
            h.msg_hdr.msg_name = tx.dst.as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = tx.dst.len();
            h.msg_hdr.msg_iovlen = 1;
        }
        Ok(tx)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr().ok().and_then(|a| a.as_socket())
    }

    fn send_one(&mut self, len: usize) -> Result<bool> {
        // SAFETY: the first `len` (≤ slot) bytes of `bufs` are initialised and
        // `dst` is a valid address of `dst.len()` bytes.
        let n = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                self.bufs.as_ptr().cast(),
                len,
                0,
                self.dst.as_ptr(),
                self.dst.len(),
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR | libc::ENOBUFS) => Ok(false),
                _ => Err(Error::io("sendto", err)),
            };
        }
        Ok(true)
    }

    fn send_many(&mut self, count: usize) -> Result<usize> {
        // Point the headers at the filled slots from pointers derived here, after
        // the fill callback's borrows of `bufs` have ended.
        let bufs = self.bufs.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        for (i, h) in self.hdrs.iter_mut().enumerate().take(count) {
            // SAFETY: i < count ≤ batch; bufs has batch × slot bytes and iovs
            // batch entries, so both offsets are in bounds.
            unsafe {
                (*iovs.add(i)).iov_base = bufs.add(i * self.slot).cast();
                h.msg_hdr.msg_iov = iovs.add(i);
            }
        }
        // SAFETY: the first `count` headers point into our buffers with their
        // lengths set by the caller's fill; `count` ≤ hdrs.len().
        let n = unsafe {
            libc::sendmmsg(
                self.sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                count as libc::c_uint,
                0,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR | libc::ENOBUFS) => Ok(0),
                _ => Err(Error::io("sendmmsg", err)),
            };
        }
        Ok(n as usize)
    }
}

impl Sender for SocketSender {
    fn max_payload(&self) -> usize {
        self.slot
    }

    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize> {
        let mut burst = SendBurst::new(count, self.hdrs.len());
        let mut filled = 0;
        while filled < burst.limit() {
            let buf = &mut self.bufs[filled * self.slot..(filled + 1) * self.slot];
            let Some(len) = burst.fill(fill, filled, buf) else {
                break;
            };
            self.iovs[filled].iov_len = len;
            filled += 1;
        }
        let sent = match self.api {
            SocketApi::Recvfrom if filled == 1 => usize::from(self.send_one(self.iovs[0].iov_len)?),
            SocketApi::Recvmmsg if filled > 0 => self.send_many(filled)?,
            _ => 0,
        };
        for iov in &self.iovs[..sent] {
            burst.sent(iov.iov_len);
        }
        burst.finish(&mut self.stats)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> TxStats {
        self.stats.clone()
    }
}

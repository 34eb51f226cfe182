//! The socket receiver: `recvfrom` one at a time, or `recvmmsg` batches with epoll.

use crate::socket::{
    bind, check_sizes, not_ipv4_multicast, udp_socket, zeroed_slice, BusyPoll, RecvConfig,
    SocketApi,
};
use socket2::Socket;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use zc_core::backend::{DataPath, Datagram, Mode, Receiver, RxBurst, RxStats, RxTimestamp};
use zc_core::error::{Error, Result};
use zc_os::{cmsg, sockaddr, sockopt};

/// Room for one `SCM_TIMESTAMPING` and one `SO_RXQ_OVFL` control message, in
/// u64 words (aligned as cmsghdr requires).
const CTRL_WORDS: usize = (cmsg::TIMESTAMP_SPACE + cmsg::RXQ_OVFL_SPACE).div_ceil(8);

#[derive(Debug, Clone, Copy)]
struct Meta {
    len: usize,
    src: SocketAddr,
    rx_timestamp: Option<RxTimestamp>,
}

/// A UDP receiver on a kernel socket.
///
/// With [`SocketApi::Recvfrom`] each burst holds one datagram from a blocking
/// `recvfrom`. With [`SocketApi::Recvmmsg`] the socket is non-blocking: a burst
/// is one `recvmmsg`, and waiting is `epoll_wait` (or a spin, see [`BusyPoll`]).
pub struct SocketReceiver {
    sock: Socket,
    epoll: Option<OwnedFd>,
    cfg: RecvConfig,
    local: SocketAddr,
    slot: usize,
    bufs: Box<[u8]>,
    names: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    ctrl: Box<[u64]>,
    hdrs: Box<[libc::mmsghdr]>,
    meta: Vec<Meta>,
    /// The `SO_RCVTIMEO` currently set on a blocking socket.
    rcvtimeo: Option<Duration>,
    rxq_ovfl: u32,
    /// The last `recvmmsg` filled the batch: try again before waiting.
    last_full: bool,
    mode: Mode,
    stats: RxStats,
}

// SAFETY: the raw pointers inside `iovs` and `hdrs` point only into the heap
// buffers this struct owns (`bufs`, `names`, `ctrl`, `iovs`), which move with it
// and are never shared, and they are re-derived before every use; the receiver
// is used from one thread at a time.
unsafe impl Send for SocketReceiver {}

impl SocketReceiver {
    /// Opens, configures and binds the socket, and allocates every buffer.
    pub fn open(cfg: RecvConfig) -> Result<Self> {
        let batch = match cfg.api {
            SocketApi::Recvfrom => 1,
            SocketApi::Recvmmsg => cfg.batch,
        };
        check_sizes(batch, cfg.max_payload)?;
        if cfg.api == SocketApi::Recvfrom && cfg.busy_poll != BusyPoll::Off {
            return Err(Error::config(
                "the recvfrom baseline is plain blocking recvfrom: busy polling is a recvmmsg option",
            ));
        }
        let sock = udp_socket(&cfg.bind)?;
        let mut mode = Mode::new(cfg.api.name(), DataPath::Copy, batch);
        if cfg.reuse_port {
            sock.set_reuse_port(true)
                .map_err(|e| Error::io("setsockopt SO_REUSEPORT", e))?;
            mode.details.push("SO_REUSEPORT".into());
        }
        if let Some(want) = cfg.rcvbuf {
            let got = sockopt::size_rcvbuf(sock.as_fd(), want)?;
            mode.details.push(format!("rcvbuf {}", got.granted));
            mode.details.extend(got.capped);
        }
        if cfg.api == SocketApi::Recvmmsg {
            sockopt::set_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)
                .map_err(|e| Error::io("setsockopt SO_RXQ_OVFL", e))?;
            if cfg.timestamps {
                sockopt::enable_rx_timestamps(sock.as_fd())?;
                mode.details.push(sockopt::RX_TIMESTAMPS_MODE.into());
            }
            match cfg.busy_poll {
                BusyPoll::Off => {}
                BusyPoll::Kernel(us) => {
                    let us_i32 = i32::try_from(us)
                        .map_err(|_| Error::config(format!("SO_BUSY_POLL {us} µs is too large")))?;
                    sockopt::set_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_BUSY_POLL, us_i32)
                        .map_err(|e| {
                            Error::io("setsockopt SO_BUSY_POLL", e)
                                .with_fix("SO_BUSY_POLL needs CAP_NET_ADMIN: run as root")
                        })?;
                    sockopt::set_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_PREFER_BUSY_POLL, 1)
                        .map_err(|e| {
                            Error::io("setsockopt SO_PREFER_BUSY_POLL", e)
                                .with_fix("SO_PREFER_BUSY_POLL needs Linux 5.11 or later")
                        })?;
                    mode.busy_poll = true;
                    mode.details.push(format!(
                        "kernel busy poll: SO_BUSY_POLL {us} µs + SO_PREFER_BUSY_POLL in a blocking recvmmsg(MSG_WAITFORONE) (acts on devices with NAPI; veth has it only with GRO or XDP)"
                    ));
                }
                BusyPoll::Spin => {
                    mode.busy_poll = true;
                    mode.details
                        .push("spinning on recvmmsg(MSG_DONTWAIT)".into());
                }
                BusyPoll::Blocking => mode
                    .details
                    .push("blocking recvmmsg(MSG_WAITFORONE), no epoll".into()),
            }
        } else if cfg.timestamps {
            return Err(Error::config(
                "kernel timestamps come in control messages, which recvfrom cannot return: use recvmmsg",
            ));
        }
        bind(&sock, cfg.bind)?;
        if let Some(n) = cfg.steer_by_cpu {
            sockopt::steer_reuseport_by_cpu(sock.as_fd(), n)?;
            mode.details.push(format!(
                "steers the port's datagrams to {n} sockets by receiving CPU"
            ));
        }
        if let Some((group, iface)) = cfg.multicast {
            if !group.is_multicast() {
                return Err(not_ipv4_multicast(group));
            }
            sock.join_multicast_v4(&group, &iface)
                .map_err(|e| Error::io(format!("join multicast group {group} on {iface}"), e))?;
            mode.details.push(format!("joined {group}"));
        }
        let local = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(cfg.bind);
        let epoll = if cfg.api == SocketApi::Recvmmsg && !cfg.busy_poll.blocks() {
            sock.set_nonblocking(true)
                .map_err(|e| Error::io("set O_NONBLOCK", e))?;
            (cfg.busy_poll != BusyPoll::Spin)
                .then(|| epoll_for(&sock))
                .transpose()?
        } else {
            None
        };
        if let Some((group, _)) = cfg.multicast {
            mode.details.push(format!("dst reported as {group}"));
        }
        let slot = cfg.max_payload;
        let rx = SocketReceiver {
            sock,
            epoll,
            local,
            slot,
            bufs: vec![0u8; slot * batch].into_boxed_slice(),
            names: zeroed_slice(batch),
            iovs: zeroed_slice(batch),
            ctrl: vec![0u64; CTRL_WORDS * batch].into_boxed_slice(),
            hdrs: zeroed_slice(batch),
            meta: Vec::with_capacity(batch),
            rcvtimeo: None,
            rxq_ovfl: 0,
            last_full: false,
            mode,
            stats: RxStats::default(),
            cfg,
        };
        Ok(rx)
    }

    /// Points each mmsghdr at its slot's buffer, address and control space and
    /// resets the lengths the kernel overwrites. Done right before every
    /// `recvmmsg`, from pointers derived once here, so no later borrow of the
    /// buffers can invalidate what the kernel is handed.
    fn prepare_headers(&mut self) {
        let batch = self.hdrs.len();
        let bufs = self.bufs.as_mut_ptr();
        let names = self.names.as_mut_ptr();
        let iovs = self.iovs.as_mut_ptr();
        let ctrl = self.ctrl.as_mut_ptr();
        for (i, h) in self.hdrs.iter_mut().enumerate().take(batch) {
            // SAFETY: i < batch, and bufs has batch × slot bytes, names and iovs
            // batch entries, ctrl batch × CTRL_WORDS words: every offset is in bounds.
            let (buf, name, iov, control) = unsafe {
                (
                    bufs.add(i * self.slot),
                    names.add(i),
                    iovs.add(i),
                    ctrl.add(i * CTRL_WORDS),
                )
            };
            // SAFETY: `iov` points at entry i of our own iovec slice (above).
            unsafe {
                iov.write(libc::iovec {
                    iov_base: buf.cast(),
                    iov_len: self.slot,
                })
            };
            h.msg_len = 0;
            h.msg_hdr.msg_name = name.cast();
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = control.cast();
            h.msg_hdr.msg_controllen = CTRL_WORDS * 8;
            h.msg_hdr.msg_flags = 0;
        }
    }

    /// The address the socket is bound to (with the port the kernel chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn dst(&self) -> SocketAddr {
        match self.cfg.multicast {
            Some((group, _)) => SocketAddr::V4(SocketAddrV4::new(group, self.local.port())),
            None => self.local,
        }
    }

    /// The flags of a blocking receive call that waits up to `timeout`
    /// (`MSG_DONTWAIT` for no wait), setting `SO_RCVTIMEO` when it changed.
    fn blocking_flags(&mut self, timeout: Option<Duration>) -> Result<libc::c_int> {
        if timeout == Some(Duration::ZERO) {
            return Ok(libc::MSG_DONTWAIT);
        }
        // SO_RCVTIMEO has microsecond resolution and 0 means "forever".
        let timeout = timeout.map(|t| t.max(Duration::from_micros(1)));
        if self.rcvtimeo != timeout {
            // SO_RCVTIMEO only changes when the caller's timeout does.
            self.sock
                .set_read_timeout(timeout)
                .map_err(|e| Error::io("setsockopt SO_RCVTIMEO", e))?;
            self.rcvtimeo = timeout;
        }
        Ok(0)
    }

    fn recv_one_blocking(&mut self, timeout: Option<Duration>) -> Result<()> {
        let flags = self.blocking_flags(timeout)?;
        let mut namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: the buffer is `slot` writable bytes we own; the address out
        // parameter is a sockaddr_storage with its size in `namelen`.
        let n = unsafe {
            libc::recvfrom(
                self.sock.as_raw_fd(),
                self.bufs.as_mut_ptr().cast(),
                self.slot,
                flags | libc::MSG_TRUNC,
                (&mut self.names[0] as *mut libc::sockaddr_storage).cast(),
                &mut namelen,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(()),
                _ => Err(Error::io("recvfrom", err)),
            };
        }
        let n = n as usize;
        if n > self.slot {
            self.stats.truncated += 1;
        }
        self.meta.push(Meta {
            len: n.min(self.slot),
            src: sockaddr::from_storage(&self.names[0], namelen).unwrap_or(sockaddr::UNKNOWN),
            rx_timestamp: None,
        });
        Ok(())
    }

    /// One `recvmmsg(MSG_DONTWAIT)`; returns how many datagrams arrived.
    fn recv_batch(&mut self) -> Result<usize> {
        self.recv_batch_with(libc::MSG_DONTWAIT)
    }

    /// One `recvmmsg` with `flags`; returns how many datagrams arrived.
    fn recv_batch_with(&mut self, flags: libc::c_int) -> Result<usize> {
        self.prepare_headers();
        // SAFETY: every header points into buffers owned by `self` with the
        // lengths just reset; `hdrs.len()` headers are valid.
        let n = unsafe {
            libc::recvmmsg(
                self.sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(0),
                _ => Err(Error::io("recvmmsg", err)),
            };
        }
        let n = n as usize;
        self.last_full = n == self.hdrs.len();
        for i in 0..n {
            let h = &self.hdrs[i];
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                self.stats.truncated += 1;
            }
            let control = &self.ctrl[i * CTRL_WORDS..(i + 1) * CTRL_WORDS];
            let info = cmsg::receive_info(cmsg::bytes_of(control, h.msg_hdr.msg_controllen));
            if let Some(o) = info.rxq_ovfl {
                self.rxq_ovfl = o;
            }
            self.meta.push(Meta {
                len: (h.msg_len as usize).min(self.slot),
                src: sockaddr::from_storage(&self.names[i], h.msg_hdr.msg_namelen)
                    .unwrap_or(sockaddr::UNKNOWN),
                rx_timestamp: info.timestamp,
            });
        }
        Ok(n)
    }

    /// Waits up to `timeout` in epoll (or spins) until `recv_batch` gets something.
    ///
    /// With epoll, a `recvmmsg` is tried before waiting only when the previous
    /// one filled the whole batch (more is likely queued); otherwise the socket
    /// is probably empty and the try would be a wasted system call, so we go
    /// straight to `epoll_wait`. At low rates that is 2 calls per wake-up, not 3.
    fn recv_batched(&mut self, timeout: Option<Duration>) -> Result<()> {
        if self.cfg.busy_poll.blocks() {
            // Sleeps (after busy-polling the device, with SO_BUSY_POLL) until
            // the first datagram (or SO_RCVTIMEO), then takes whatever else
            // is queued without waiting.
            let flags = self.blocking_flags(timeout)? | libc::MSG_WAITFORONE;
            self.recv_batch_with(flags)?;
            return Ok(());
        }
        let try_first = self.epoll.is_none() || self.last_full || timeout == Some(Duration::ZERO);
        if try_first && self.recv_batch()? > 0 {
            return Ok(());
        }
        if timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        let deadline = timeout.and_then(zc_core::sys::deadline_after);
        loop {
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(());
                    }
                    Some(left)
                }
                None => None,
            };
            if let Some(ep) = &self.epoll {
                epoll_wait(ep, left)?;
            } else {
                std::hint::spin_loop();
            }
            if self.recv_batch()? > 0 {
                return Ok(());
            }
        }
    }
}

fn epoll_for(sock: &Socket) -> Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os("epoll_create1"));
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: both fds are open; `ev` is a valid event for the call.
    let rc = unsafe {
        libc::epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            sock.as_raw_fd(),
            &mut ev,
        )
    };
    if rc != 0 {
        return Err(Error::last_os("epoll_ctl ADD"));
    }
    Ok(ep)
}

fn epoll_wait(ep: &OwnedFd, timeout: Option<Duration>) -> Result<()> {
    let ms = match timeout {
        None => -1,
        // Round up so a short timeout still waits instead of spinning.
        Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    };
    let mut ev = [libc::epoll_event { events: 0, u64: 0 }];
    // SAFETY: `ev` has room for the one event we ask for.
    let rc = unsafe { libc::epoll_wait(ep.as_raw_fd(), ev.as_mut_ptr(), 1, ms) };
    if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        return Err(Error::last_os("epoll_wait"));
    }
    Ok(())
}

/// One burst of a [`SocketReceiver`]. The kernel copied the payloads into the
/// receiver's own buffers, so releasing the burst has nothing to hand back:
/// the next `recv_burst` simply reuses them.
pub struct SocketBurst<'a> {
    rx: &'a mut SocketReceiver,
    dst: SocketAddr,
}

impl RxBurst for SocketBurst<'_> {
    fn len(&self) -> usize {
        self.rx.meta.len()
    }

    fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let m = self.rx.meta.get(i)?;
        let start = i * self.rx.slot;
        Some(Datagram {
            payload: self.rx.bufs.get(start..start + m.len)?,
            src: m.src,
            dst: self.dst,
            rx_timestamp: m.rx_timestamp,
        })
    }
}

impl Receiver for SocketReceiver {
    type Burst<'a> = SocketBurst<'a>;

    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<SocketBurst<'_>> {
        self.meta.clear();
        match self.cfg.api {
            SocketApi::Recvfrom => self.recv_one_blocking(timeout)?,
            SocketApi::Recvmmsg => self.recv_batched(timeout)?,
        }
        let n = self.meta.len();
        if n > 0 {
            self.stats.bursts += 1;
            self.stats.datagrams += n as u64;
            self.stats.bytes += self.meta.iter().map(|m| m.len as u64).sum::<u64>();
        }
        let dst = self.dst();
        Ok(SocketBurst { rx: self, dst })
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> RxStats {
        let mut s = self.stats.clone();
        s.kernel_drops = sockopt::socket_drops(self.sock.as_fd());
        if self.cfg.api == SocketApi::Recvmmsg {
            s.extra.push(("so_rxq_ovfl", u64::from(self.rxq_ovfl)));
        }
        s
    }
}

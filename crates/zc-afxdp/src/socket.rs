//! One AF_XDP socket: the system calls that create, map and bind it, straight
//! over the kernel ABI (`linux/if_xdp.h` through xdp-sys).

use crate::ring::{ConsRing, ProdRing, RingPtrs};
use crate::sys::{errno_error, Ifindex};
use crate::umem::UmemMemory;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use xdp_sys::xdp_desc;
use zc_core::error::{Error, ErrorKind, Result};
use zc_os::sockopt;

/// Ring sizes of one socket (entries, powers of two; 0 = no such ring).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingSizes {
    pub fill: u32,
    pub completion: u32,
    pub rx: u32,
    pub tx: u32,
}

/// How the socket shares its UMEM.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UmemRole {
    /// This socket registers the UMEM.
    Owner,
    /// The UMEM was registered by the socket with this fd (`XDP_SHARED_UMEM`).
    SharedWith(RawFd),
}

/// One ring mapping, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `map_ring`; the ring cursors
        // pointing into it are dropped before it (field order of XskSocket).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A bound AF_XDP socket and its rings.
///
/// Field order is drop order: the ring cursors, then the mappings they point
/// into, then the socket.
pub(crate) struct XskSocket {
    pub fill: ProdRing<u64>,
    pub completion: ConsRing<u64>,
    pub rx: Option<ConsRing<xdp_desc>>,
    pub tx: Option<ProdRing<xdp_desc>>,
    _maps: Vec<Mapping>,
    fd: OwnedFd,
    zero_copy: bool,
}

// SAFETY: the mappings are owned by this value and used only through its ring
// cursors (which are Send); the raw pointers in `Mapping` are only unmapped.
unsafe impl Send for XskSocket {}

/// Sets a socket option, naming it in the error.
fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: i32,
    name: u32,
    value: &T,
    what: &str,
) -> Result<()> {
    sockopt::set(fd, level, name as i32, value)
        .map_err(|e| Error::io(format!("setsockopt {what}"), e))
}

/// The `SOL_XDP` structs read with `getsockopt`.
///
/// # Safety
/// Implemented only for plain C structs of integers: any bytes the kernel
/// writes are a valid value.
unsafe trait XdpOption: Default {}
// SAFETY: plain C struct of integers (linux/if_xdp.h).
unsafe impl XdpOption for xdp_sys::xdp_mmap_offsets {}
// SAFETY: as above.
unsafe impl XdpOption for xdp_sys::xdp_statistics {}
// SAFETY: as above.
unsafe impl XdpOption for xdp_sys::xdp_options {}

/// Reads a `SOL_XDP` option, refusing a short answer from an older kernel.
fn getsockopt<T: XdpOption>(fd: BorrowedFd<'_>, name: u32, what: &str) -> Result<T> {
    let mut value = T::default();
    // SAFETY: `T: XdpOption` is valid for any bytes the kernel writes.
    let len = unsafe { sockopt::get_into(fd, xdp_sys::SOL_XDP as i32, name as i32, &mut value) }
        .map_err(|e| Error::io(format!("getsockopt {what}"), e))?;
    if len != size_of::<T>() {
        return Err(Error::new(ErrorKind::Unsupported, format!(
            "getsockopt {what} returned {len} bytes instead of {}: this kernel's AF_XDP ABI is too old (need 5.4 or later)",
            size_of::<T>()
        )));
    }
    Ok(value)
}

fn map_ring<T>(
    fd: RawFd,
    off: &xdp_sys::xdp_ring_offset,
    size: u32,
    pgoff: u64,
    maps: &mut Vec<Mapping>,
) -> Result<RingPtrs<T>> {
    let len = off.desc as usize + size as usize * size_of::<T>();
    // SAFETY: maps the ring the kernel created for this socket at `pgoff`; the
    // kernel checks the length against the ring.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            pgoff as libc::off_t,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(Error::last_os("mmap an AF_XDP ring"));
    }
    maps.push(Mapping { ptr, len });
    let base = ptr.cast::<u8>();
    // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this ring and lie in the mapping.
    unsafe {
        Ok(RingPtrs {
            producer: base.add(off.producer as usize).cast(),
            consumer: base.add(off.consumer as usize).cast(),
            flags: base.add(off.flags as usize).cast(),
            entries: base.add(off.desc as usize).cast(),
            size,
        })
    }
}

impl XskSocket {
    /// [`XskSocket::open`], retried for up to a second while the queue is busy.
    ///
    /// Closing an AF_XDP socket releases its (interface, queue) slot in a
    /// kernel work item, after `close` returns; a socket reopened on that queue
    /// right away (a restart, a test cycle) gets `EBUSY` for a few
    /// milliseconds. A queue held by a live socket stays busy and the error
    /// is returned after the second.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open_retrying(
        umem: &UmemMemory,
        role: UmemRole,
        sizes: RingSizes,
        ifindex: Ifindex,
        queue: u32,
        zero_copy: bool,
        need_wakeup: bool,
    ) -> Result<Self> {
        let start = std::time::Instant::now();
        loop {
            match Self::open(umem, role, sizes, ifindex, queue, zero_copy, need_wakeup) {
                Err(e)
                    if e.kind() == ErrorKind::AddrInUse
                        && start.elapsed() < std::time::Duration::from_secs(1) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                other => return other,
            }
        }
    }

    /// Creates a socket, registers or shares `umem`, creates and maps the
    /// rings, and binds it to (`ifindex`, `queue`).
    ///
    /// `zero_copy` asks for `XDP_ZEROCOPY` (else `XDP_COPY`) and `need_wakeup`
    /// for `XDP_USE_NEED_WAKEUP`; both apply to the UMEM owner only: sockets
    /// sharing its UMEM inherit them (the kernel refuses them with
    /// `XDP_SHARED_UMEM`).
    #[allow(clippy::too_many_arguments)]
    fn open(
        umem: &UmemMemory,
        role: UmemRole,
        sizes: RingSizes,
        ifindex: Ifindex,
        queue: u32,
        zero_copy: bool,
        need_wakeup: bool,
    ) -> Result<Self> {
        // SAFETY: plain socket creation.
        let raw = unsafe {
            libc::socket(
                xdp_sys::AF_XDP as i32,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            let e = Error::last_os("create an AF_XDP socket");
            return Err(match e.kind() {
                ErrorKind::Permission => e.with_fix("AF_XDP sockets need CAP_NET_RAW (and CAP_NET_ADMIN to attach XDP): run as root"),
                ErrorKind::Unsupported => e.with_fix("this kernel has no AF_XDP (CONFIG_XDP_SOCKETS): run `zc doctor`"),
                _ => e,
            });
        }
        // SAFETY: raw is a new fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let b = fd.as_fd();

        if let UmemRole::Owner = role {
            let layout = umem.layout();
            let reg = xdp_sys::xdp_umem_reg {
                addr: umem.as_ptr() as u64,
                len: layout.bytes(),
                chunk_size: layout.frame_size,
                headroom: 0,
                ..Default::default()
            };
            if let Err(e) = setsockopt(
                b,
                xdp_sys::SOL_XDP as i32,
                xdp_sys::XDP_UMEM_REG,
                &reg,
                "XDP_UMEM_REG",
            ) {
                return Err(memlock_hint(e, layout.bytes()));
            }
        }
        setsockopt(
            b,
            xdp_sys::SOL_XDP as i32,
            xdp_sys::XDP_UMEM_FILL_RING,
            &sizes.fill,
            "XDP_UMEM_FILL_RING",
        )?;
        setsockopt(
            b,
            xdp_sys::SOL_XDP as i32,
            xdp_sys::XDP_UMEM_COMPLETION_RING,
            &sizes.completion,
            "XDP_UMEM_COMPLETION_RING",
        )?;
        if sizes.rx > 0 {
            setsockopt(
                b,
                xdp_sys::SOL_XDP as i32,
                xdp_sys::XDP_RX_RING,
                &sizes.rx,
                "XDP_RX_RING",
            )?;
        }
        if sizes.tx > 0 {
            setsockopt(
                b,
                xdp_sys::SOL_XDP as i32,
                xdp_sys::XDP_TX_RING,
                &sizes.tx,
                "XDP_TX_RING",
            )?;
        }
        let off: xdp_sys::xdp_mmap_offsets =
            getsockopt(b, xdp_sys::XDP_MMAP_OFFSETS, "XDP_MMAP_OFFSETS")?;
        let mut maps = Vec::with_capacity(4);
        let fill_p = map_ring::<u64>(
            s,
            &off.fr,
            sizes.fill,
            xdp_sys::XDP_UMEM_PGOFF_FILL_RING,
            &mut maps,
        )?;
        let comp_p = map_ring::<u64>(
            s,
            &off.cr,
            sizes.completion,
            xdp_sys::XDP_UMEM_PGOFF_COMPLETION_RING,
            &mut maps,
        )?;
        let rx_p = if sizes.rx > 0 {
            Some(map_ring::<xdp_desc>(
                s,
                &off.rx,
                sizes.rx,
                xdp_sys::XDP_PGOFF_RX_RING as u64,
                &mut maps,
            )?)
        } else {
            None
        };
        let tx_p = if sizes.tx > 0 {
            Some(map_ring::<xdp_desc>(
                s,
                &off.tx,
                sizes.tx,
                xdp_sys::XDP_PGOFF_TX_RING as u64,
                &mut maps,
            )?)
        } else {
            None
        };
        // SAFETY: each ring is mapped in `maps`, which lives as long as the
        // cursors (same struct, dropped after them); each end is created once.
        let (fill, completion, rx, tx) = unsafe {
            (
                ProdRing::new(fill_p),
                ConsRing::new(comp_p),
                rx_p.map(|p| ConsRing::new(p)),
                tx_p.map(|p| ProdRing::new(p)),
            )
        };

        let mut flags = 0u16;
        let mut shared_fd = 0u32;
        match role {
            UmemRole::Owner => {
                flags |= if zero_copy {
                    xdp_sys::XDP_ZEROCOPY
                } else {
                    xdp_sys::XDP_COPY
                } as u16;
                if need_wakeup {
                    flags |= xdp_sys::XDP_USE_NEED_WAKEUP as u16;
                }
            }
            // The kernel refuses mode flags with XDP_SHARED_UMEM: they are inherited.
            UmemRole::SharedWith(owner) => {
                flags |= xdp_sys::XDP_SHARED_UMEM as u16;
                shared_fd = owner as u32;
            }
        }
        let addr = xdp_sys::sockaddr_xdp {
            sxdp_family: xdp_sys::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: ifindex.get(),
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: shared_fd,
        };
        // SAFETY: addr is a valid sockaddr_xdp of the size passed.
        let rc = unsafe {
            libc::bind(
                s,
                (&addr as *const xdp_sys::sockaddr_xdp).cast(),
                size_of::<xdp_sys::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let e = Error::last_os(format!(
                "bind the AF_XDP socket to ifindex {} queue {queue} ({})",
                ifindex.get(),
                if matches!(role, UmemRole::SharedWith(_)) {
                    "shared UMEM"
                } else if zero_copy {
                    "zero-copy"
                } else {
                    "copy mode"
                }
            ));
            return Err(if e.raw_os_error() == Some(libc::EBUSY) {
                e.with_kind(ErrorKind::AddrInUse)
                    .with_fix("another AF_XDP socket is bound to this interface queue: stop it, or use another queue")
            } else {
                e
            });
        }
        let opts: xdp_sys::xdp_options = getsockopt(b, xdp_sys::XDP_OPTIONS, "XDP_OPTIONS")?;
        let zero_copy = opts.flags & xdp_sys::XDP_OPTIONS_ZEROCOPY != 0;
        Ok(Self {
            fill,
            completion,
            rx,
            tx,
            _maps: maps,
            fd,
            zero_copy,
        })
    }

    /// The socket's file descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// True when the kernel reports zero-copy (`XDP_OPTIONS_ZEROCOPY`).
    pub(crate) fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The kernel's counters (`XDP_STATISTICS`).
    pub(crate) fn statistics(&self) -> Result<xdp_sys::xdp_statistics> {
        getsockopt(self.fd.as_fd(), xdp_sys::XDP_STATISTICS, "XDP_STATISTICS")
    }

    /// Sets busy-poll options: prefer busy polling, `usecs` of polling and a
    /// NAPI budget of `budget` packets.
    pub(crate) fn set_busy_poll(&self, usecs: u32, budget: u32) -> Result<()> {
        let b = self.fd.as_fd();
        let one: i32 = 1;
        setsockopt(
            b,
            libc::SOL_SOCKET,
            libc::SO_PREFER_BUSY_POLL as u32,
            &one,
            "SO_PREFER_BUSY_POLL",
        )?;
        setsockopt(
            b,
            libc::SOL_SOCKET,
            libc::SO_BUSY_POLL as u32,
            &(usecs as i32),
            "SO_BUSY_POLL",
        )?;
        setsockopt(
            b,
            libc::SOL_SOCKET,
            libc::SO_BUSY_POLL_BUDGET as u32,
            &(budget as i32),
            "SO_BUSY_POLL_BUDGET",
        )
    }

    /// Tells the kernel to look at the rx/fill side (`recvfrom`, non-blocking);
    /// with busy polling this runs the device's NAPI poll in our context.
    pub(crate) fn kick_rx(&self) -> Result<()> {
        // SAFETY: a zero-length receive with no buffer and no address.
        let rc = unsafe {
            libc::recvfrom(
                self.fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if !matches!(
                errno,
                libc::EAGAIN | libc::EINTR | libc::EBUSY | libc::ENOBUFS
            ) {
                return Err(errno_error("recvfrom on the AF_XDP socket", errno));
            }
        }
        Ok(())
    }

    /// Tells the kernel to transmit what is in the tx ring (`sendto`,
    /// non-blocking). In copy mode the frames are sent from this call.
    pub(crate) fn kick_tx(&self) -> Result<()> {
        // SAFETY: a zero-length send with no buffer and no address.
        let rc = unsafe {
            libc::sendto(
                self.fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if !matches!(
                errno,
                libc::EAGAIN | libc::EINTR | libc::EBUSY | libc::ENOBUFS
            ) {
                return Err(errno_error("sendto on the AF_XDP socket", errno));
            }
        }
        Ok(())
    }

    /// Waits until the rx ring has entries, at most `timeout_ms` (-1: forever).
    pub(crate) fn wait_readable(&self, timeout_ms: i32) -> Result<Wait> {
        let mut pfd = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        poll_result(rc, "poll the AF_XDP socket")
    }

    /// The socket's pending error (`SO_ERROR`) as a zc error. The kernel sets
    /// `ENETDOWN` when the interface goes away, and `poll` never reports it
    /// on an AF_XDP socket (`xsk_poll` has no `EPOLLERR`), so waiting
    /// receivers look here between bounded waits.
    pub(crate) fn check_error(&self) -> Result<()> {
        let err = sockopt::get_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_ERROR)
            .map_err(|e| Error::io("getsockopt SO_ERROR on the AF_XDP socket", e))?;
        if err == 0 {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::PeerGone,
            format!("the AF_XDP socket failed: {}", std::io::Error::from_raw_os_error(err)),
        )
        .with_fix("its interface was removed or went down: reopen the receiver once the interface is back"))
    }
}

/// How a bounded wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Something is readable.
    Ready,
    /// The time ran out.
    TimedOut,
    /// A signal arrived (let the caller look at it).
    Interrupted,
}

/// Interprets the return value of `poll`.
pub(crate) fn poll_result(rc: libc::c_int, what: &str) -> Result<Wait> {
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(Wait::Interrupted);
        }
        return Err(Error::io(what, e));
    }
    Ok(if rc > 0 { Wait::Ready } else { Wait::TimedOut })
}

/// One line for the mode report on why zero-copy was not used.
pub(crate) fn zero_copy_refusal(e: &Error) -> String {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => {
            "zero-copy unsupported by the driver (EOPNOTSUPP): copy mode".to_owned()
        }
        _ => format!("zero-copy refused ({e}): copy mode"),
    }
}

/// Turns a failed `XDP_UMEM_REG` into a memlock message when that is the cause.
fn memlock_hint(e: Error, bytes: u64) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOBUFS | libc::ENOMEM | libc::EPERM) => {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: lim is a valid out-pointer.
            unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
            let limit = if lim.rlim_cur == libc::RLIM_INFINITY {
                "unlimited".to_owned()
            } else {
                format!("{} KiB", lim.rlim_cur / 1024)
            };
            Error::new(ErrorKind::Exhausted, format!(
                "{e} (registering a {} KiB UMEM; locked-memory limit {limit})",
                bytes / 1024
            ))
            .with_fix(format!(
                "raise the memlock limit (`ulimit -l unlimited`, or `LimitMEMLOCK=infinity` in a systemd unit) \
                 or grant CAP_IPC_LOCK; or use fewer/smaller frames (UMEM needs {} KiB)",
                bytes / 1024
            ))
        }
        _ => e,
    }
}

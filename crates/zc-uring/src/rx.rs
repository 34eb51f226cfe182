//! The receiver: one multishot `IORING_OP_RECVMSG` on a UDP socket, taking its
//! buffers from a provided-buffer ring registered with the kernel
//! (`IORING_REGISTER_PBUF_RING`).
//!
//! Buffer life cycle: every buffer starts in the ring. The kernel takes one per
//! datagram and names it in the completion (`IORING_CQE_F_BUFFER`); from then
//! on it is ours and is lent to the caller inside an [`UringBurst`]. Dropping
//! the burst writes the buffer ids back at the ring's tail and publishes the
//! tail with a release store, which is when the kernel may use them again.
//! Only a completion hands a buffer out; only a burst's drop gives it back.
//!
//! Layout of one buffer as the kernel fills it (recvmsg multishot):
//! `io_uring_recvmsg_out` (16 bytes) | name (`sockaddr_in6` space) |
//! control (timestamp space, when enabled) | payload.

use crate::mem::Region;
use crate::ring::{self, RingOptions, OP_ASYNC_CANCEL, OP_RECVMSG};
use io_uring::{cqueue, opcode, types, IoUring};
use std::mem::ManuallyDrop;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use zc_core::{
    DataPath, Datagram, Error, ErrorKind, Mode, Receiver, Result, RxBurst, RxStats, RxTimestamp,
};
use zc_os::sockopt;

/// user_data of the multishot receive.
const RECV_TAG: u64 = 1;
/// user_data of the cancel request issued on drop.
const CANCEL_TAG: u64 = 2;
/// The buffer group id of our provided-buffer ring (one ring per io_uring).
const BGID: u16 = 0;
/// `sizeof(struct io_uring_recvmsg_out)`.
const RECVMSG_OUT_LEN: usize = 16;
/// How long drop waits for the kernel to finish a cancelled receive before it
/// gives up and leaks the buffer memory instead of freeing it under the kernel.
const DROP_DEADLINE: Duration = Duration::from_secs(2);

/// Receiver settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxConfig {
    /// Address to bind the UDP socket to (a multicast feed binds the group's
    /// port on 0.0.0.0 or on the group address).
    pub bind: SocketAddr,
    /// Join this IPv4 multicast group on the interface that has the second
    /// address.
    pub multicast: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Datagrams per burst at most.
    pub batch: usize,
    /// Buffers in the provided-buffer ring: a power of two, 1 to 32768.
    pub buffers: u16,
    /// Bytes per buffer, headers included (payload room is this minus
    /// [`RxConfig::header_len`]).
    pub buffer_size: u32,
    /// Completion queue entries, at least 8 (0: twice `buffers`, so a full
    /// ring of datagrams never overflows it).
    pub cq_entries: u32,
    /// `SO_RCVBUF` to ask for (forced past `rmem_max` when privileged).
    pub rcvbuf: Option<usize>,
    /// Submit through a kernel SQPOLL thread that idles after this long.
    pub sqpoll_idle: Option<Duration>,
    /// Register NAPI busy polling on the ring for this long per wait.
    pub napi_busy_poll: Option<Duration>,
    /// `SO_REUSEPORT`, for several receivers on one port.
    pub reuse_port: bool,
    /// Steer the port's datagrams to the group's sockets by receiving CPU
    /// ([`zc_os::sockopt::steer_reuseport_by_cpu`]) for a group of this many
    /// sockets; set on the first socket of the group.
    pub steer_by_cpu: Option<u32>,
    /// Receive timestamps (`SO_TIMESTAMPING`) on every datagram: the NIC's
    /// when it stamps, else the kernel's software stamp.
    pub rx_timestamps: bool,
    /// Let one wait collect up to a whole batch while datagrams are backing
    /// up (the previous wait returned half a batch or more): the kernel waits for
    /// `batch` datagrams for at most this long, then returns as soon as one is
    /// there (`IORING_FEAT_MIN_TIMEOUT`, Linux 6.12). A datagram is held back
    /// by at most this much; in exchange, a busy receiver takes whole batches
    /// per system call instead of the 32 the kernel's multishot loop yields
    /// per round. `None` or zero: every wait ends at the first datagram.
    ///
    /// Off by default: it cuts `io_uring_enter` calls when draining a full
    /// socket, but under live traffic the timer fires whenever a backlog
    /// ends and the CPU per datagram did not improve measurably (the figures
    /// are in docs/io_uring.md).
    pub batch_wait: Option<Duration>,
    /// Busy poll in user space: a waiting [`Receiver::recv_burst`] spins on
    /// the completion queue and the SQ ring's TASKRUN flag instead of
    /// sleeping, and enters the kernel only when that flag says a datagram
    /// arrived (no system call while idle). Burns the core it runs on.
    pub spin: bool,
}

impl RxConfig {
    /// Defaults: batch 64, 4096 buffers of 2048 bytes, 32 MiB receive buffer,
    /// no batch wait, no SQPOLL, no NAPI, no timestamps, no spinning.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            multicast: None,
            batch: 64,
            buffers: 4096,
            buffer_size: 2048,
            cq_entries: 0,
            rcvbuf: Some(32 << 20),
            sqpoll_idle: None,
            napi_busy_poll: None,
            reuse_port: false,
            steer_by_cpu: None,
            rx_timestamps: false,
            batch_wait: None,
            spin: false,
        }
    }

    /// Bytes of each buffer taken by the recvmsg header, name and control space.
    pub fn header_len(&self) -> usize {
        RECVMSG_OUT_LEN + zc_os::sockaddr::NAME_LEN + self.control_len()
    }

    fn control_len(&self) -> usize {
        if self.rx_timestamps {
            zc_os::cmsg::TIMESTAMP_SPACE
        } else {
            0
        }
    }

    fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::config("uring receiver: batch must be at least 1"));
        }
        if !self.buffers.is_power_of_two() || self.buffers > 32768 {
            return Err(Error::config(format!(
                "uring receiver: buffers = {} must be a power of two from 1 to 32768 (the kernel's provided-buffer ring limit)",
                self.buffers
            )));
        }
        let size = self.buffer_size as usize;
        if size <= self.header_len() || size > 65536 + self.header_len() {
            return Err(Error::config(format!(
                "uring receiver: buffer_size = {size} must exceed the {}-byte recvmsg header and leave at most 64 KiB of payload",
                self.header_len()
            )));
        }
        Ok(())
    }
}

/// `struct io_uring_buf`: one entry of a provided-buffer ring. The ring's
/// tail lives in the `resv` field of entry 0.
#[repr(C)]
struct PbufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// The provided-buffer ring and the buffers it hands out, in one mapping:
/// the ring entries (page aligned, as the kernel requires), then the buffers.
struct BufRing {
    region: Region,
    entries: u16,
    buf_size: u32,
    data_off: usize,
    /// Next tail to publish (we are the only producer).
    tail: u16,
}

impl BufRing {
    fn new(entries: u16, buf_size: u32) -> Result<Self> {
        let page = 4096;
        let ring_bytes =
            (usize::from(entries) * std::mem::size_of::<PbufEntry>()).div_ceil(page) * page;
        let data = usize::from(entries) * buf_size as usize;
        let region = Region::new(ring_bytes + data, "io_uring provided-buffer ring")?;
        let mut r = Self {
            region,
            entries,
            buf_size,
            data_off: ring_bytes,
            tail: 0,
        };
        for bid in 0..entries {
            r.push(bid);
        }
        r.publish();
        Ok(r)
    }

    fn ring_addr(&self) -> u64 {
        self.region.as_ptr() as u64
    }

    #[inline]
    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.entries);
        // SAFETY: bid < entries, so the offset stays inside the data part of
        // the region (data_off + entries * buf_size == region.len()).
        unsafe {
            self.region
                .as_ptr()
                .add(self.data_off + usize::from(bid) * self.buf_size as usize)
        }
    }

    /// Writes `bid` into the slot after the last one published; visible to the
    /// kernel only after [`BufRing::publish`].
    #[inline]
    fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.entries - 1));
        let addr = self.buf_ptr(bid) as u64;
        // SAFETY: slot < entries, inside the ring part of the region. The
        // kernel does not read slots between its head and our unpublished
        // tail, so writing them races with nothing. Fields are written one by
        // one so that entry 0's `resv` (the shared tail) is never touched.
        unsafe {
            let e = self.region.as_ptr().cast::<PbufEntry>().add(slot);
            std::ptr::addr_of_mut!((*e).addr).write(addr);
            std::ptr::addr_of_mut!((*e).len).write(self.buf_size);
            std::ptr::addr_of_mut!((*e).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed entry visible to the kernel (release store of the tail).
    #[inline]
    fn publish(&self) {
        // SAFETY: entry 0's `resv` is a naturally aligned u16 inside the
        // mapping that lives as long as self; the kernel reads it with an
        // acquire load and never writes it, so an atomic store is the only
        // access from our side.
        let tail = unsafe {
            AtomicU16::from_ptr(std::ptr::addr_of_mut!(
                (*self.region.as_ptr().cast::<PbufEntry>()).resv
            ))
        };
        tail.store(self.tail, Ordering::Release);
    }
}

/// The `msghdr` the multishot receive was prepared with; only its name and
/// control lengths matter (the kernel reads it when the request is issued).
struct MsgHdr(libc::msghdr);

// SAFETY: the msghdr's pointers are all null; only its lengths are used.
unsafe impl Send for MsgHdr {}

/// The `msghdr` a receive with `cfg` is prepared with: room for a
/// `sockaddr_in6` name and, with timestamps, one timestamp cmsg.
pub fn recv_msghdr(cfg: &RxConfig) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is valid (null pointers, zero lengths).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_namelen = zc_os::sockaddr::NAME_LEN as libc::socklen_t;
    hdr.msg_controllen = cfg.control_len();
    hdr
}

/// One datagram as the kernel laid it out at the start of a filled buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Payload bytes: they start at [`RxConfig::header_len`] and end within
    /// the buffer.
    pub len: u32,
    /// The sender; the unspecified address when the name is not IPv4/IPv6.
    pub src: SocketAddr,
    /// The `SCM_TIMESTAMPING` control message, when asked for and present.
    pub ts: Option<RxTimestamp>,
    /// The datagram was longer than the buffer's payload room.
    pub truncated: bool,
}

/// Reads the `io_uring_recvmsg_out` header, name and control data at the
/// start of `buf` (the bytes the kernel wrote) for a receive prepared with
/// `hdr`; `None` when they do not fit.
pub fn parse_received(buf: &[u8], hdr: &libc::msghdr) -> Option<Received> {
    let out = types::RecvMsgOut::parse(buf, hdr).ok()?;
    // An undecodable name (never for UDP over IPv4/IPv6) is reported as the
    // unspecified address, not guessed.
    let src = zc_os::sockaddr::decode(out.name_data()).unwrap_or(zc_os::sockaddr::UNKNOWN);
    let ts = if hdr.msg_controllen > 0 {
        zc_os::cmsg::receive_info(out.control_data()).timestamp
    } else {
        None
    };
    Some(Received {
        len: out.payload_data().len() as u32,
        src,
        ts,
        truncated: out.is_payload_truncated(),
    })
}

/// One datagram handed out in the current burst.
#[derive(Clone, Copy)]
struct Held {
    bid: u16,
    len: u32,
    src: SocketAddr,
    ts: Option<RxTimestamp>,
}

#[derive(Default)]
struct Counters {
    enobufs: u64,
    arms: u64,
    cq_overflow: u64,
    recv_errors: u64,
}

/// io_uring receiver: multishot recvmsg into a kernel-registered buffer ring.
///
/// The ring is created `SINGLE_ISSUER` and disabled; the first thread that
/// calls [`Receiver::recv_burst`] enables it and from then on is the only one
/// that may use or drop it (a drop elsewhere cannot cancel the receive, so the
/// buffer memory is leaked rather than freed under the kernel, and counted in
/// [`crate::leaked_regions`]).
pub struct UringReceiver {
    ring: ManuallyDrop<IoUring>,
    bufs: ManuallyDrop<BufRing>,
    socket: UdpSocket,
    hdr: Box<MsgHdr>,
    local: SocketAddr,
    header_len: usize,
    held: Vec<Held>,
    armed: bool,
    spin: bool,
    batch_wait_us: Option<u32>,
    /// The latest wait returned half a batch or more.
    backlog: bool,
    needs_enable: bool,
    single_issuer: bool,
    owner: Option<ThreadId>,
    pending_error: Option<i32>,
    counters: Counters,
    mode: Mode,
    stats: RxStats,
}

/// A UDP socket bound to `bind`, with `SO_REUSEPORT` set first when asked.
fn bind_udp(bind: SocketAddr, reuse_port: bool) -> Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(bind),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(|e| Error::io("socket(UDP)", e))?;
    if reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(|e| Error::io("setsockopt SO_REUSEPORT", e))?;
    }
    socket
        .bind(&bind.into())
        .map_err(|e| Error::io(format!("bind UDP {bind}"), e))?;
    Ok(socket.into())
}

impl UringReceiver {
    /// Binds the socket, creates the ring with the best flags this kernel
    /// accepts, and registers the buffer ring. Nothing is submitted until the
    /// first [`Receiver::recv_burst`].
    pub fn open(cfg: &RxConfig) -> Result<Self> {
        cfg.validate()?;
        let socket = bind_udp(cfg.bind, cfg.reuse_port)?;
        let local = socket
            .local_addr()
            .map_err(|e| Error::io("getsockname", e))?;
        let mut details = vec!["multishot recvmsg".to_owned()];
        if cfg.reuse_port {
            details.push("SO_REUSEPORT".to_owned());
        }
        if let Some(n) = cfg.steer_by_cpu {
            sockopt::steer_reuseport_by_cpu(socket.as_fd(), n)?;
            details.push(format!(
                "steers the port's datagrams to {n} sockets by receiving CPU"
            ));
        }
        if let Some(bytes) = cfg.rcvbuf {
            let got = sockopt::size_rcvbuf(socket.as_fd(), bytes)?;
            details.push(format!("rcvbuf {}", got.granted));
            details.extend(got.capped);
        }
        if let Some((group, iface)) = cfg.multicast {
            socket.join_multicast_v4(&group, &iface).map_err(|e| {
                Error::io(
                    format!("join multicast group {group} on the interface with {iface}"),
                    e,
                )
            })?;
            details.push(format!("multicast {group} joined on {iface}"));
        }
        if cfg.rx_timestamps {
            sockopt::enable_rx_timestamps(socket.as_fd())?;
            details.push(sockopt::RX_TIMESTAMPS_MODE.to_owned());
        }

        // Only the receive and, on drop, one cancel are ever queued.
        let sq_entries = 8;
        let cq_entries = if cfg.cq_entries == 0 {
            u32::from(cfg.buffers) * 2
        } else {
            cfg.cq_entries
        }
        .max(sq_entries);
        let built = ring::build(
            RingOptions {
                sq_entries,
                cq_entries,
                sqpoll_idle: cfg.sqpoll_idle,
            },
            &mut details,
        )?;
        ring::require_opcodes(&built.ring, &[OP_RECVMSG, OP_ASYNC_CANCEL])?;

        let bufs = BufRing::new(cfg.buffers, cfg.buffer_size)?;
        // SAFETY: the ring memory is a live page-aligned mapping of
        // `buffers` entries owned by the receiver; Drop cancels the receive
        // and waits for its last completion (or leaks the mapping) before it
        // is unmapped, so the kernel never uses it after it is freed.
        unsafe { built.ring.submitter().register_buf_ring_with_flags(bufs.ring_addr(), cfg.buffers, BGID, 0) }.map_err(|e| {
            Error::io("io_uring_register(IORING_REGISTER_PBUF_RING)", e)
                .with_fix("provided-buffer rings need Linux 5.19 and multishot recvmsg 6.0: upgrade the kernel or use the recvmmsg backend")
        })?;
        details.push(format!(
            "provided-buffer ring: {} × {} B registered (IORING_REGISTER_PBUF_RING), {} B payload room",
            cfg.buffers,
            cfg.buffer_size,
            cfg.buffer_size as usize - cfg.header_len()
        ));

        let mut busy_poll = false;
        if let Some(t) = cfg.napi_busy_poll {
            let us = u32::try_from(t.as_micros()).unwrap_or(u32::MAX);
            let mut napi = types::Napi::new()
                .set_busy_poll_timeout(us)
                .set_prefer_busy_poll(true);
            match built.ring.submitter().register_napi(&mut napi) {
                Ok(()) => {
                    busy_poll = true;
                    details.push(format!(
                        "NAPI busy poll {us} µs registered (acts only on devices with NAPI: see the napi_id counter; veth has it only with GRO or XDP)"
                    ));
                }
                Err(e) => details.push(format!(
                    "NAPI busy poll unavailable ({e}; needs Linux 6.9): waiting on interrupts"
                )),
            }
        }

        let hdr = Box::new(MsgHdr(recv_msghdr(cfg)));

        let batch_wait_us = cfg
            .batch_wait
            .map(|d| u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
            .filter(|&us| us > 0 && cfg.batch > 1);
        let batch_wait_us = match batch_wait_us {
            Some(us) if built.ring.params().is_feature_min_timeout() => {
                details.push(format!("batch wait under backlog: up to {us} µs for a full batch, then the first datagram (IORING_FEAT_MIN_TIMEOUT)"));
                Some(us)
            }
            Some(_) => {
                details.push("batch wait unavailable (needs Linux 6.12): each wait ends at the first datagram".to_owned());
                None
            }
            None => None,
        };
        if cfg.spin {
            details.push(if built.sqpoll || !built.taskrun_flag {
                "busy poll: spinning on the completion queue in user space".to_owned()
            } else {
                "busy poll: spinning on the CQ and the SQ ring's TASKRUN flag in user space (no system call while idle)".to_owned()
            });
        }
        let mut mode = Mode::new("uring", DataPath::Copy, cfg.batch);
        mode.busy_poll = busy_poll || cfg.spin;
        mode.details = details;
        Ok(Self {
            needs_enable: built.disabled,
            single_issuer: built.single_issuer,
            ring: ManuallyDrop::new(built.ring),
            bufs: ManuallyDrop::new(bufs),
            socket,
            hdr,
            local,
            header_len: cfg.header_len(),
            held: Vec::with_capacity(cfg.batch),
            armed: false,
            spin: cfg.spin,
            batch_wait_us,
            backlog: false,
            owner: None,
            pending_error: None,
            counters: Counters::default(),
            mode,
            stats: RxStats::default(),
        })
    }

    /// The bound address (the port the kernel picked when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Enables the ring on first use and (re-)arms the multishot receive.
    fn start(&mut self) -> Result<()> {
        if self.needs_enable {
            ring::enable(&self.ring)?;
            self.needs_enable = false;
            self.owner = Some(std::thread::current().id());
        }
        if !self.armed {
            let entry =
                opcode::RecvMsgMulti::new(types::Fd(self.socket.as_raw_fd()), &self.hdr.0, BGID)
                    .build()
                    .user_data(RECV_TAG);
            // SAFETY: the entry points at `self.hdr`, boxed and alive for the
            // receiver's life; its buffers come from the registered ring.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_err() {
                // Only the receive and one cancel are ever queued; a full SQ
                // means the kernel has not consumed them yet: submit, retry.
                self.ring
                    .submit()
                    .map_err(|e| ring::enter_error("io_uring_enter (submit)", e))?;
                // SAFETY: as above.
                unsafe { self.ring.submission().push(&entry) }.map_err(|_| {
                    Error::new(ErrorKind::Exhausted, "io_uring submission queue stays full")
                })?;
            }
            self.counters.arms += 1;
            self.armed = true;
        }
        Ok(())
    }

    /// Takes completions into `held`, up to the batch size.
    fn reap(&mut self) {
        let room = self.mode.batch - self.held.len();
        let (_, sq, mut cq) = self.ring.split();
        if sq.cq_overflow() {
            // The kernel parked completions in its overflow list (it keeps
            // them: IORING_FEAT_NODROP); the next enter flushes them.
            self.counters.cq_overflow += 1;
        }
        drop(sq);
        let mut returned = false;
        for _ in 0..room {
            let Some(cqe) = cq.next() else { break };
            if cqe.user_data() != RECV_TAG {
                continue;
            }
            let flags = cqe.flags();
            if !cqueue::more(flags) {
                self.armed = false;
            }
            let res = cqe.result();
            if res < 0 {
                match -res {
                    libc::ENOBUFS => self.counters.enobufs += 1,
                    libc::ECANCELED => {}
                    errno => {
                        self.counters.recv_errors += 1;
                        self.pending_error = Some(errno);
                    }
                }
                continue;
            }
            let Some(bid) = cqueue::buffer_select(flags) else {
                self.counters.recv_errors += 1;
                continue;
            };
            if bid >= self.bufs.entries {
                // Not a buffer of ours: nothing to read and nothing to return.
                self.counters.recv_errors += 1;
                continue;
            }
            let used = (res as u32).min(self.bufs.buf_size) as usize;
            // SAFETY: the kernel handed buffer `bid` to us with this
            // completion and wrote `used` bytes into it; it is no longer in the
            // ring, so the kernel does not write it until we push it back.
            let buf = unsafe { std::slice::from_raw_parts(self.bufs.buf_ptr(bid), used) };
            match parse_received(buf, &self.hdr.0) {
                Some(r) => {
                    if r.truncated {
                        self.stats.truncated += 1;
                    }
                    self.held.push(Held {
                        bid,
                        len: r.len,
                        src: r.src,
                        ts: r.ts,
                    });
                }
                None => {
                    self.stats.malformed += 1;
                    self.bufs.push(bid);
                    returned = true;
                }
            }
        }
        drop(cq);
        if returned {
            self.bufs.publish();
        }
    }

    /// Waits for completions until `deadline` (None: forever), re-arming the
    /// receive when it ended.
    fn fill(&mut self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.and_then(zc_core::sys::deadline_after);
        loop {
            self.start()?;
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // Spinning polls without waiting: the zero-timeout wait enters the
            // kernel only when the SQ ring flags say there is deferred work
            // (a datagram arrived) or something to submit.
            let wait_for = if self.spin {
                Some(Duration::ZERO)
            } else {
                left
            };
            let want = self.mode.batch - self.held.len();
            // Batch waits only while there is a backlog: otherwise the
            // min-wait timer fires on most waits, a timer interrupt and a
            // wakeup for nothing (docs/io_uring.md counts them for a
            // definition where any wait returning 2 was a backlog).
            let min_wait = if self.backlog {
                self.batch_wait_us
            } else {
                None
            };
            let got = ring::wait(&mut self.ring, want, wait_for, min_wait)
                .map_err(|e| ring::enter_error("io_uring_enter (wait for datagrams)", e))?;
            self.reap();
            // Half a batch or more from one wait: the kernel's multishot loop
            // (32 datagrams a round) had to come back for more.
            self.backlog = self.held.len() * 2 >= self.mode.batch;
            if let Some(errno) = self.pending_error.take() {
                if self.held.is_empty() {
                    return Err(Error::io(
                        format!("io_uring multishot recvmsg on {}", self.local),
                        std::io::Error::from_raw_os_error(errno),
                    ));
                }
                self.pending_error = Some(errno);
            }
            let timed_out = left.is_some_and(|l| l.is_zero())
                || (!got && deadline.is_some_and(|d| Instant::now() >= d));
            if !self.held.is_empty() || timed_out {
                return Ok(());
            }
            if self.spin {
                std::hint::spin_loop();
            }
        }
    }

    /// Cancels the receive and reaps until its last completion; false when
    /// that could not be confirmed.
    fn quiesce(&mut self) -> bool {
        if self.needs_enable {
            return true; // never enabled: nothing was ever submitted
        }
        if self.single_issuer && self.owner != Some(std::thread::current().id()) {
            return false;
        }
        // Queued but unsubmitted entries still count as in flight: submit
        // them so the cancel finds them.
        let mut in_flight = self.armed;
        if in_flight {
            let cancel = opcode::AsyncCancel::new(RECV_TAG)
                .build()
                .user_data(CANCEL_TAG);
            // SAFETY: a cancel entry carries no pointers.
            if unsafe { self.ring.submission().push(&cancel) }.is_err() {
                // The queue was full: submit makes room, then push again.
                if self.ring.submit().is_err() {
                    return false;
                }
                // SAFETY: as above, a cancel entry carries no pointers.
                if unsafe { self.ring.submission().push(&cancel) }.is_err() {
                    return false;
                }
            }
        }
        let deadline = Instant::now() + DROP_DEADLINE;
        while in_flight {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero()
                || ring::wait(
                    &mut self.ring,
                    1,
                    Some(left.min(Duration::from_millis(100))),
                    None,
                )
                .is_err()
            {
                return false;
            }
            for cqe in self.ring.completion() {
                if cqe.user_data() == RECV_TAG && !cqueue::more(cqe.flags()) {
                    in_flight = false;
                }
            }
        }
        true
    }
}

impl std::fmt::Debug for UringReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringReceiver")
            .field("local", &self.local)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A burst of [`UringReceiver`]; dropping it gives the buffers back to the kernel.
pub struct UringBurst<'a> {
    rx: &'a mut UringReceiver,
}

impl RxBurst for UringBurst<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.rx.held.len()
    }

    #[inline]
    fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let h = self.rx.held.get(i)?;
        // SAFETY: `h.bid` came from a completion and stays out of the kernel's
        // ring until this burst is dropped, which the borrow on the receiver
        // outlives; header_len + len <= buf_size was checked when parsing.
        let payload = unsafe {
            std::slice::from_raw_parts(
                self.rx.bufs.buf_ptr(h.bid).add(self.rx.header_len),
                h.len as usize,
            )
        };
        Some(Datagram {
            payload,
            src: h.src,
            dst: self.rx.local,
            rx_timestamp: h.ts,
        })
    }
}

impl Drop for UringBurst<'_> {
    fn drop(&mut self) {
        let rx = &mut *self.rx;
        if rx.held.is_empty() {
            return;
        }
        for h in &rx.held {
            rx.bufs.push(h.bid);
        }
        rx.held.clear();
        rx.bufs.publish();
    }
}

impl Receiver for UringReceiver {
    type Burst<'a> = UringBurst<'a>;

    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<UringBurst<'_>> {
        if !self.held.is_empty() {
            // The previous burst was forgotten (mem::forget) instead of
            // dropped: give its buffers back now.
            drop(UringBurst { rx: self });
        }
        self.start()?;
        self.reap();
        if self.held.is_empty() {
            self.fill(timeout)?;
        }
        let n = self.held.len();
        if n > 0 {
            self.stats.bursts += 1;
            self.stats.datagrams += n as u64;
            self.stats.bytes += self.held.iter().map(|h| u64::from(h.len)).sum::<u64>();
        }
        Ok(UringBurst { rx: self })
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> RxStats {
        let mut s = self.stats.clone();
        s.kernel_drops = sockopt::socket_drops(self.socket.as_fd());
        s.extra = vec![
            ("enobufs", self.counters.enobufs),
            ("multishot_rearms", self.counters.arms.saturating_sub(1)),
            ("cq_overflow", self.counters.cq_overflow),
            ("recv_errors", self.counters.recv_errors),
            (
                "napi_id",
                // NAPI id of the device queue the latest datagram came from
                // (0: none, e.g. veth without GRO or XDP).
                sockopt::get_int(
                    self.socket.as_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_INCOMING_NAPI_ID,
                )
                .map_or(0, |id| u64::from(id as u32)),
            ),
        ];
        s
    }
}

impl Drop for UringReceiver {
    fn drop(&mut self) {
        let quiet = self.quiesce();
        // SAFETY: dropped exactly once, here; not used afterwards. Closing the
        // ring first makes the kernel tear down whatever is left.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        // SAFETY: taken exactly once, here; not used afterwards.
        let bufs = unsafe { ManuallyDrop::take(&mut self.bufs) };
        bufs.region
            .release(quiet, format_args!("receiver on {}", self.local));
    }
}

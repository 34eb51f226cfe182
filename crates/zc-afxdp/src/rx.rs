//! The AF_XDP receiver: one socket per (interface, queue), frames handed out
//! as borrowed datagrams and returned to the fill ring when the burst drops.

use crate::program::{FilterProgram, MAX_QUEUES, RX_META_LEN, RX_META_MAGIC};
use crate::ring::ConsRing;
use crate::socket::{poll_result, zero_copy_refusal, RingSizes, UmemRole, Wait, XskSocket};
use crate::sys::{ifindex, raise_memlock};
use crate::umem::{UmemLayout, UmemMemory};
use crate::{ring_size, AfXdpConfig, ZeroCopy};
use std::net::{SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdp_sys::xdp_desc;
use zc_core::backend::{Clock, DataPath, Datagram, Mode, Receiver, RxBurst, RxStats, RxTimestamp};
use zc_core::error::{Error, ErrorKind, Result};
use zc_core::wire::{parse_udp_frame, MalformedCounts};
use zc_nic::check_queue;
use zc_os::multicast::Membership;

/// One parsed datagram of the current burst: where its frame and its payload
/// are in the UMEM.
#[derive(Debug, Clone)]
struct Entry {
    frame: Range<usize>,
    payload: Range<usize>,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    /// The frame's receive stamp from its metadata, if it has one.
    stamp: Option<RxTimestamp>,
}

/// Receive-side counters of one socket.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    datagrams: u64,
    bytes: u64,
    bursts: u64,
    malformed: u64,
    malformed_by_reason: MalformedCounts,
    /// Well-formed frames that were not IPv4/UDP.
    not_udp: u64,
    /// Descriptors from the kernel that did not lie inside one UMEM frame.
    refused: u64,
}

/// Takes up to `want` descriptors off `rx`: every descriptor is checked against
/// the UMEM layout before its bytes are read, every frame goes to `held` (to
/// be refilled when the burst ends) and every well-formed UDP frame to
/// `entries`. A descriptor that fails the check is counted in `refused`;
/// when its address lies inside the UMEM (an over-long or straddling length)
/// its frame still goes to `held`, or the fill ring would shrink by one frame
/// for good. Only an address outside the UMEM names no frame to return.
/// With `stamps`, each frame's receive stamp is taken from its XDP metadata.
#[allow(clippy::too_many_arguments)]
fn collect(
    rx: &mut ConsRing<xdp_desc>,
    want: u32,
    layout: UmemLayout,
    umem: &UmemMemory,
    stamps: bool,
    held: &mut Vec<u64>,
    entries: &mut Vec<Entry>,
    c: &mut Counters,
) -> u32 {
    let peek = rx.peek(want);
    let n = peek.len();
    for i in 0..n {
        let Some(d) = peek.get(i) else { break };
        let range = match layout.check(d.addr, d.len) {
            Ok(r) => r,
            Err(e) => {
                c.refused += 1;
                tracing::warn!(%e, "AF_XDP: refused a descriptor from the rx ring");
                if d.addr < layout.bytes() {
                    held.push(layout.frame_of(d.addr));
                }
                continue;
            }
        };
        let frame_start = layout.frame_of(d.addr);
        held.push(frame_start);
        let start = range.start;
        let stamp = if stamps {
            // SAFETY: as for the frame below: the metadata lies in the same
            // checked frame, in front of the descriptor's bytes, and the frame
            // is ours until it goes back to the fill ring.
            unsafe { take_stamp(umem, frame_start as usize, start) }
        } else {
            None
        };
        // SAFETY: the range was checked against this UMEM's layout, and the frame
        // was just consumed from the rx ring: the kernel no longer writes it and
        // it stays ours until `held` goes back to the fill ring.
        let frame = unsafe { umem.slice(range.clone()) };
        match parse_udp_frame(frame) {
            Ok(f) => {
                let payload = f.payload();
                let off = payload.as_ptr() as usize - frame.as_ptr() as usize;
                entries.push(Entry {
                    frame: range,
                    payload: start + off..start + off + payload.len(),
                    src: f.src(),
                    dst: f.dst(),
                    stamp,
                });
                c.bytes += payload.len() as u64;
            }
            Err(e) if e.is_other_protocol() => c.not_udp += 1,
            Err(e) => {
                c.malformed += 1;
                c.malformed_by_reason.add(&e);
            }
        }
    }
    peek.release(n);
    c.datagrams += entries.len() as u64;
    if !entries.is_empty() {
        c.bursts += 1;
    }
    n
}

/// The XDP program's receive stamp in front of the frame bytes at `start`
/// (`struct zc_rx_meta`): the NIC's when the driver gave one, else
/// CLOCK_MONOTONIC at the hook; `None` when the room there holds no
/// metadata of ours. The magic is cleared after reading, so a stamp left in
/// a reused frame is never taken for a later frame's.
///
/// # Safety
/// `frame_start..start` must lie in one frame of `umem` that the caller owns
/// (taken off the rx ring, not yet back in the fill ring), with no other
/// reference to those bytes.
unsafe fn take_stamp(umem: &UmemMemory, frame_start: usize, start: usize) -> Option<RxTimestamp> {
    if start < frame_start + RX_META_LEN {
        return None;
    }
    // SAFETY: inside the caller's frame, in front of its data (contract above).
    let meta = unsafe { umem.slice_mut(start - RX_META_LEN..start) };
    let u64_at = |m: &[u8], at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&m[at..at + 8]);
        u64::from_ne_bytes(b)
    };
    let magic = &mut meta[16..20];
    if u32::from_ne_bytes([magic[0], magic[1], magic[2], magic[3]]) != RX_META_MAGIC {
        return None;
    }
    magic.fill(0);
    let (xdp_ns, nic_ns) = (u64_at(meta, 0), u64_at(meta, 8));
    Some(if nic_ns != 0 {
        RxTimestamp {
            ns: nic_ns,
            clock: Clock::NicHardware,
        }
    } else {
        RxTimestamp {
            ns: xdp_ns,
            clock: Clock::Monotonic,
        }
    })
}

/// What [`collect`] made of descriptors from the rx ring, for the fuzz target.
#[cfg(feature = "fuzzing")]
#[derive(Debug)]
pub struct Collected {
    /// Descriptors taken off the ring.
    pub taken: u32,
    /// Frames to go back to the fill ring.
    pub held: Vec<u64>,
    /// Where each parsed datagram's payload lies in the UMEM.
    pub payloads: Vec<Range<usize>>,
    /// Descriptors refused by the UMEM check.
    pub refused: u64,
    /// Descriptors inside the UMEM that held no UDP frame.
    pub malformed: u64,
}

/// Maps a UMEM of `layout` holding `content` (from address 0), puts `descs`
/// (address, length) on an rx ring as the kernel would, and collects up to
/// `want` of them as a burst does.
#[cfg(feature = "fuzzing")]
pub fn collect_descriptors(
    layout: UmemLayout,
    content: &[u8],
    descs: &[(u64, u32)],
    want: u32,
) -> Collected {
    let umem = UmemMemory::map(layout, false).expect("map a small UMEM");
    let n = content.len().min(layout.bytes() as usize);
    // SAFETY: 0..n lies inside the mapping (n is at most its size), which is
    // fresh: no socket uses it and no other reference to its bytes exists.
    unsafe { umem.slice_mut(0..n) }.copy_from_slice(&content[..n]);
    let mut ring = crate::ring::LoopRing::<xdp_desc>::new(descs.len() as u32, 0);
    ring.produce(
        descs.iter().map(|&(addr, len)| xdp_desc {
            addr,
            len,
            options: 0,
        }),
        u32::MAX,
        true,
    );
    let (mut held, mut entries, mut c) = (Vec::new(), Vec::new(), Counters::default());
    let taken = collect(
        &mut ring.cons,
        want,
        layout,
        &umem,
        true,
        &mut held,
        &mut entries,
        &mut c,
    );
    let payloads = entries.into_iter().map(|e| e.payload).collect();
    Collected {
        taken,
        held,
        payloads,
        refused: c.refused,
        malformed: c.malformed + c.not_udp,
    }
}

/// An AF_XDP receiver bound to one queue of one interface.
///
/// Field order is drop order: the socket closes first (the kernel stops
/// writing into the UMEM), then the program is detached if this was its last
/// socket, then the UMEM is unmapped if this was its last user.
pub struct AfXdpReceiver {
    sock: XskSocket,
    held: Vec<u64>,
    entries: Vec<Entry>,
    to_fill: Vec<u64>,
    layout: UmemLayout,
    batch: u32,
    /// Frames carry the XDP program's receive stamp.
    stamps: bool,
    busy_poll: bool,
    spin: bool,
    need_wakeup: bool,
    queue: u32,
    mode: Mode,
    counters: Counters,
    program: Arc<FilterProgram>,
    umem: Arc<UmemMemory>,
    /// Multicast groups held joined while any receiver lives.
    _joined: Arc<Vec<Membership>>,
}

/// A burst of datagrams borrowed from the UMEM; dropping it puts their frames
/// back into the fill ring.
pub struct AfXdpBurst<'a> {
    rx: &'a mut AfXdpReceiver,
}

impl RxBurst for AfXdpBurst<'_> {
    fn len(&self) -> usize {
        self.rx.entries.len()
    }

    fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let e = self.rx.entries.get(i)?;
        // SAFETY: the range lies in a frame taken off the rx ring by `collect`
        // (checked there) and held until this burst drops, which needs `&mut`.
        let payload = unsafe { self.rx.umem.slice(e.payload.clone()) };
        Some(Datagram {
            payload,
            src: SocketAddr::V4(e.src),
            dst: SocketAddr::V4(e.dst),
            rx_timestamp: e.stamp,
        })
    }

    fn frame(&self, i: usize) -> Option<&[u8]> {
        let e = self.rx.entries.get(i)?;
        // SAFETY: as in `get`: the descriptor's range was checked by `collect`
        // and its frame is held until this burst drops.
        Some(unsafe { self.rx.umem.slice(e.frame.clone()) })
    }
}

impl Drop for AfXdpBurst<'_> {
    fn drop(&mut self) {
        self.rx.release_burst();
        self.rx.refill();
    }
}

impl AfXdpReceiver {
    /// Sends the frames of the ending burst toward the fill ring. Also run at
    /// the next `recv_burst`, for a burst leaked with `mem::forget`.
    fn release_burst(&mut self) {
        self.entries.clear();
        self.to_fill.append(&mut self.held);
    }

    /// Puts every frame waiting in `to_fill` into the fill ring. The fill ring
    /// holds all of this socket's frames, so they always fit; if a kick is
    /// needed (`need_wakeup` set by a zero-copy driver), it is given.
    fn refill(&mut self) {
        let mut r = self.sock.fill.reserve(self.to_fill.len() as u32);
        while let Some(&addr) = self.to_fill.last() {
            if !r.push(addr) {
                break;
            }
            self.to_fill.pop();
        }
        r.commit();
    }

    fn fill_needs_wakeup(&self) -> bool {
        self.need_wakeup && self.sock.fill.flags() & xdp_sys::XDP_RING_NEED_WAKEUP != 0
    }

    fn collect(&mut self) -> u32 {
        let Some(rx) = self.sock.rx.as_mut() else {
            return 0;
        };
        collect(
            rx,
            self.batch,
            self.layout,
            &self.umem,
            self.stamps,
            &mut self.held,
            &mut self.entries,
            &mut self.counters,
        )
    }

    /// Datagram descriptors waiting in the rx ring (re-reads the kernel's index).
    fn rx_ready(&mut self) -> u32 {
        self.sock.rx.as_mut().map_or(0, |rx| rx.available())
    }

    /// Frames currently in the fill ring (the kernel's stock of empty buffers).
    pub fn fill_level(&self) -> u32 {
        self.sock.fill.outstanding()
    }

    /// The queue this receiver is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The XDP program shared by this interface's receivers.
    pub fn program(&self) -> &FilterProgram {
        &self.program
    }

    /// The kernel's counters for this socket (`XDP_STATISTICS`).
    pub fn xdp_statistics(&self) -> Result<xdp_sys::xdp_statistics> {
        self.sock.statistics()
    }
}

/// Longest single wait in `poll`: between waits the socket's error is checked,
/// because an AF_XDP socket whose interface went away is never readable and
/// `poll` does not report the error.
const WAIT_SLICE_MS: i32 = 1000;

/// Spins between two checks of the socket's error in spin mode.
const CHECK_EVERY_SPINS: u32 = 1 << 20;

/// Milliseconds to wait in one `poll` until `deadline` (rounded up, so that a
/// sub-millisecond wait still waits), at most [`WAIT_SLICE_MS`].
fn wait_slice_ms(deadline: Option<Instant>) -> i32 {
    match deadline {
        None => WAIT_SLICE_MS,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            i32::try_from(left.as_micros().div_ceil(1000))
                .unwrap_or(i32::MAX)
                .min(WAIT_SLICE_MS)
        }
    }
}

impl Receiver for AfXdpReceiver {
    type Burst<'a> = AfXdpBurst<'a>;

    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<AfXdpBurst<'_>> {
        self.release_burst();
        if !self.to_fill.is_empty() {
            self.refill();
        }
        if self.busy_poll || self.fill_needs_wakeup() {
            self.sock.kick_rx()?;
        }
        if self.collect() == 0 && timeout != Some(Duration::ZERO) {
            let deadline = timeout.and_then(zc_core::sys::deadline_after);
            let mut spins = 0u32;
            loop {
                if self.busy_poll {
                    // Busy polling: recvfrom runs the NAPI poll in this thread
                    // (and fails once the socket is unbound).
                    self.sock.kick_rx()?;
                } else if self.spin {
                    spins = spins.wrapping_add(1);
                    if spins % CHECK_EVERY_SPINS == 0 {
                        self.sock.check_error()?;
                    }
                    std::hint::spin_loop();
                } else {
                    match self.sock.wait_readable(wait_slice_ms(deadline))? {
                        Wait::Ready => {}
                        Wait::TimedOut => self.sock.check_error()?,
                        Wait::Interrupted if deadline.is_none() => break, // let the caller look at the signal
                        Wait::Interrupted => {}
                    }
                }
                if self.collect() > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
        Ok(AfXdpBurst { rx: self })
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> RxStats {
        let c = self.counters;
        let k = self.sock.statistics().ok();
        let (matched, passed) = self.program.counters();
        let mut extra = vec![
            ("refused_descs", c.refused),
            ("fill_ring_avail", u64::from(self.fill_level())),
            ("xdp_matched_all_queues", matched),
            ("xdp_passed_all_queues", passed),
        ];
        if self.stamps {
            extra.push(("xdp_unstamped_all_queues", self.program.stamps_refused()));
            extra.push(("xdp_nic_stamped_all_queues", self.program.nic_stamped()));
        }
        if let Some(k) = k {
            extra.extend([
                ("xdp_rx_dropped", k.rx_dropped),
                ("xdp_rx_ring_full", k.rx_ring_full),
                ("xdp_fill_ring_empty", k.rx_fill_ring_empty_descs),
                ("xdp_rx_invalid_descs", k.rx_invalid_descs),
                ("xdp_tx_invalid_descs", k.tx_invalid_descs),
            ]);
        }
        RxStats {
            datagrams: c.datagrams,
            bytes: c.bytes,
            bursts: c.bursts,
            kernel_drops: k.map(|k| k.rx_dropped + k.rx_ring_full),
            truncated: 0,
            malformed: c.malformed,
            malformed_by_reason: c.malformed_by_reason,
            not_udp: c.not_udp,
            not_ours: 0,
            extra,
        }
    }
}

/// Every queue of a receiver set behind one [`Receiver`]: each burst comes
/// from one queue, taking the queues in turn, so a device whose traffic is
/// spread over several queues is received through one handle. Waiting polls
/// all the sockets at once (or spins on all the rings with `spin`).
pub struct AfXdpQueues {
    rxs: Vec<AfXdpReceiver>,
    next: usize,
    pollfds: Vec<libc::pollfd>,
    mode: Mode,
}

impl AfXdpQueues {
    /// Opens one socket per queue of `cfg.queues` (see [`open_receivers`]).
    pub fn open(cfg: &AfXdpConfig) -> Result<Self> {
        let rxs = open_receivers(cfg)?;
        let mut mode = rxs[0].mode.clone();
        mode.queue = None;
        mode.details
            .push(format!("queues {:?} in turn", cfg.queues));
        let pollfds = rxs
            .iter()
            .map(|r| libc::pollfd {
                fd: r.sock.fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Ok(Self {
            rxs,
            next: 0,
            pollfds,
            mode,
        })
    }

    /// The per-queue receivers.
    pub fn queues(&self) -> &[AfXdpReceiver] {
        &self.rxs
    }

    /// The first queue, from `next` on, with descriptors waiting.
    fn ready_queue(&mut self) -> Option<usize> {
        let n = self.rxs.len();
        (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| self.rxs[i].rx_ready() > 0)
    }

    /// Waits for any socket, one slice at most; checks every socket's error
    /// when the slice ran out.
    fn wait_any(&mut self, deadline: Option<Instant>) -> Result<Wait> {
        let ms = wait_slice_ms(deadline);
        // SAFETY: pollfds is a valid array of its length, one entry per socket we own.
        let rc = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                ms,
            )
        };
        let wait = poll_result(rc, "poll the AF_XDP sockets")?;
        if wait == Wait::TimedOut {
            for rx in &self.rxs {
                rx.sock.check_error()?;
            }
        }
        Ok(wait)
    }
}

impl Receiver for AfXdpQueues {
    type Burst<'a> = AfXdpBurst<'a>;

    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<AfXdpBurst<'_>> {
        let deadline = timeout.and_then(zc_core::sys::deadline_after);
        let (spin, busy) = (self.rxs[0].spin, self.rxs[0].busy_poll);
        let mut spins = 0u32;
        let found = loop {
            if busy {
                for rx in &self.rxs {
                    rx.sock.kick_rx()?;
                }
            }
            if let Some(i) = self.ready_queue() {
                break i;
            }
            if timeout == Some(Duration::ZERO) || deadline.is_some_and(|d| Instant::now() >= d) {
                break self.next;
            }
            if spin || busy {
                spins = spins.wrapping_add(1);
                if spins % CHECK_EVERY_SPINS == 0 {
                    for rx in &self.rxs {
                        rx.sock.check_error()?;
                    }
                }
                std::hint::spin_loop();
            } else if self.wait_any(deadline)? == Wait::Interrupted && deadline.is_none() {
                break self.next; // a signal: let the caller look at it
            }
        };
        self.next = (found + 1) % self.rxs.len();
        self.rxs[found].recv_burst(Some(Duration::ZERO))
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Sums over the queues (interface-wide filter counters are taken once).
    fn stats(&self) -> RxStats {
        let mut total = RxStats::default();
        for rx in &self.rxs {
            let s = rx.stats();
            total.datagrams += s.datagrams;
            total.bytes += s.bytes;
            total.bursts += s.bursts;
            total.malformed += s.malformed;
            total.malformed_by_reason.merge(&s.malformed_by_reason);
            total.not_udp += s.not_udp;
            total.not_ours += s.not_ours;
            total.truncated += s.truncated;
            total.kernel_drops = match (total.kernel_drops, s.kernel_drops) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            for (name, v) in s.extra {
                match total.extra.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, t)) if name.ends_with("_all_queues") => *t = (*t).max(v),
                    Some((_, t)) => *t += v,
                    None => total.extra.push((name, v)),
                }
            }
        }
        total
    }
}

fn validate(cfg: &AfXdpConfig) -> Result<()> {
    if cfg.queues.is_empty() {
        return Err(Error::config("AF_XDP: no queue given"));
    }
    for (i, q) in cfg.queues.iter().enumerate() {
        if *q >= MAX_QUEUES {
            return Err(Error::config(format!(
                "AF_XDP: queue {q} is above the filter's limit of {}",
                MAX_QUEUES - 1
            )));
        }
        if cfg.queues[..i].contains(q) {
            return Err(Error::config(format!(
                "AF_XDP: queue {q} is listed twice (one socket per queue)"
            )));
        }
    }
    if cfg.batch == 0 || cfg.batch > cfg.frames_per_queue as usize {
        return Err(Error::config(format!(
            "AF_XDP: batch {} must be between 1 and the {} frames per queue",
            cfg.batch, cfg.frames_per_queue
        )));
    }
    ring_size("AF_XDP rx ring", cfg.rx_ring)?;
    if let Some(bp) = cfg.busy_poll {
        if bp.budget == 0 {
            return Err(Error::config("AF_XDP: busy-poll budget must be at least 1"));
        }
    }
    Ok(())
}

/// Opens one receiver per queue in `cfg.queues`, sharing one UMEM and one
/// XDP program on `cfg.ifname`.
///
/// The program is detached when the last receiver is dropped (or the process
/// exits in any way: it is held by a BPF link). Errors name what is missing:
/// the interface, the queue, privileges, memlock.
pub fn open_receivers(cfg: &AfXdpConfig) -> Result<Vec<AfXdpReceiver>> {
    validate(cfg)?;
    let ifidx = ifindex(&cfg.ifname)?;
    for &q in &cfg.queues {
        check_queue(&cfg.ifname, q)?;
    }
    let per_queue = cfg.frames_per_queue;
    let total = per_queue
        .checked_mul(cfg.queues.len() as u32)
        .ok_or_else(|| Error::config("AF_XDP: too many frames"))?;
    let layout = UmemLayout::new(cfg.frame_size, total)?;
    let fill_size = ring_size(
        "AF_XDP fill ring",
        per_queue.checked_next_power_of_two().unwrap_or(0),
    )?;
    raise_memlock(layout.bytes());

    let joined = cfg
        .multicast
        .iter()
        .map(|&group| Membership::join(group, ifidx.get()))
        .collect::<Result<Vec<_>>>()?;
    let mut addrs = cfg.addrs.clone();
    addrs.extend_from_slice(&cfg.multicast);
    let joined = Arc::new(joined);
    let program = Arc::new(
        FilterProgram::attach(ifidx, &cfg.ports, &addrs, cfg.xdp_mode, cfg.rx_timestamps).map_err(
            |e| {
                if e.kind() == ErrorKind::NotFound {
                    e.with_fix(format!(
                        "the interface {} went away while attaching",
                        cfg.ifname
                    ))
                } else {
                    e
                }
            },
        )?,
    );
    let umem = Arc::new(UmemMemory::map(layout, cfg.hugepages)?);
    let sizes = RingSizes {
        fill: fill_size,
        completion: 64,
        rx: cfg.rx_ring,
        tx: 0,
    };

    let mut details = vec![format!("xdp {}", program.mode().name())];
    details.extend(
        joined
            .iter()
            .map(|m| format!("joined {} by a kernel socket", m.group())),
    );
    if let Some(why) = program.native_refused() {
        details.push(format!("native xdp refused: {why}"));
    }
    let first_queue = cfg.queues[0];
    let (owner, zc_refused) = match cfg.zero_copy {
        ZeroCopy::Off => (
            XskSocket::open_retrying(
                &umem,
                UmemRole::Owner,
                sizes,
                ifidx,
                first_queue,
                false,
                cfg.need_wakeup,
            )?,
            None,
        ),
        ZeroCopy::Require => (
            XskSocket::open_retrying(
                &umem,
                UmemRole::Owner,
                sizes,
                ifidx,
                first_queue,
                true,
                cfg.need_wakeup,
            )
            .map_err(|e| {
                if e.kind() == ErrorKind::Permission || e.kind() == ErrorKind::AddrInUse {
                    return e;
                }
                let why = if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
                    "the driver has no AF_XDP zero-copy"
                } else {
                    "see the kernel's error"
                };
                e.context(format_args!("zero-copy was required ({why})"))
                    .with_fix("use copy mode (--zero-copy copy / ZeroCopy::Off) on this driver, or a NIC whose driver does AF_XDP zero-copy (`zc doctor --interface IF`)")
            })?,
            None,
        ),
        ZeroCopy::Auto => match XskSocket::open_retrying(
            &umem,
            UmemRole::Owner,
            sizes,
            ifidx,
            first_queue,
            true,
            cfg.need_wakeup,
        ) {
            Ok(s) => (s, None),
            Err(zc) if zc.kind() == ErrorKind::Permission => return Err(zc),
            Err(zc) => (
                XskSocket::open_retrying(
                    &umem,
                    UmemRole::Owner,
                    sizes,
                    ifidx,
                    first_queue,
                    false,
                    cfg.need_wakeup,
                )?,
                Some(zero_copy_refusal(&zc)),
            ),
        },
    };
    if let Some(why) = zc_refused {
        details.push(why);
    }
    details.push(format!(
        "need_wakeup {}",
        if cfg.need_wakeup { "on" } else { "off" }
    ));
    details.push(format!(
        "umem {} frames x {} B on {}",
        total,
        cfg.frame_size,
        if umem.on_hugepages() {
            "2 MiB hugepages"
        } else {
            "4 KiB pages"
        }
    ));
    if cfg.queues.len() > 1 {
        details.push(format!("umem shared by {} queues", cfg.queues.len()));
    }
    details.push(format!("rx ring {} fill ring {}", cfg.rx_ring, fill_size));
    match program.nic_stamps() {
        None => {}
        Some(Ok(())) => details.push(
            "rx timestamps: the NIC's when the driver gives one (bpf_xdp_metadata_rx_timestamp, device-bound program), else CLOCK_MONOTONIC at the XDP hook, in the frame's XDP metadata"
                .to_owned(),
        ),
        Some(Err(why)) => details.push(format!(
            "rx timestamps: CLOCK_MONOTONIC at the XDP hook, in the frame's XDP metadata (no NIC stamp: {why})"
        )),
    }
    let data_path = if owner.zero_copy() {
        DataPath::ZeroCopy
    } else {
        DataPath::Copy
    };
    let owner_fd = owner.fd();

    let mut socks = vec![owner];
    for &q in &cfg.queues[1..] {
        socks.push(XskSocket::open_retrying(
            &umem,
            UmemRole::SharedWith(owner_fd),
            sizes,
            ifidx,
            q,
            false,
            false,
        )?);
    }
    let mut out = Vec::with_capacity(socks.len());
    for (i, (sock, &q)) in socks.into_iter().zip(&cfg.queues).enumerate() {
        let busy_poll = match cfg.busy_poll {
            Some(bp) => {
                sock.set_busy_poll(bp.usecs, bp.budget)?;
                true
            }
            None => false,
        };
        let mut mode = Mode::new("afxdp", data_path, cfg.batch);
        mode.busy_poll = busy_poll || cfg.spin;
        mode.queue = Some(q);
        mode.details = details.clone();
        if let Some(bp) = cfg.busy_poll {
            mode.details.push(format!(
                "kernel busy poll: SO_PREFER_BUSY_POLL, SO_BUSY_POLL {} µs, budget {}",
                bp.usecs, bp.budget
            ));
        }
        if cfg.spin {
            mode.details
                .push("spins on the rx ring (no poll)".to_owned());
        }
        let first = i as u32 * per_queue;
        let mut rx = AfXdpReceiver {
            sock,
            held: Vec::with_capacity(cfg.batch),
            entries: Vec::with_capacity(cfg.batch),
            to_fill: (first..first + per_queue)
                .map(|f| layout.frame_addr(f))
                .collect(),
            layout,
            batch: cfg.batch as u32,
            stamps: cfg.rx_timestamps,
            busy_poll,
            spin: cfg.spin,
            need_wakeup: cfg.need_wakeup,
            queue: q,
            mode,
            counters: Counters::default(),
            program: Arc::clone(&program),
            umem: Arc::clone(&umem),
            _joined: Arc::clone(&joined),
        };
        rx.refill();
        program.set_socket(q, rx.sock.fd())?;
        out.push(rx);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{ProdRing, RingPtrs};
    use std::net::Ipv4Addr;
    use std::sync::atomic::AtomicU32;
    use zc_core::wire::UdpFrameSpec;

    #[test]
    fn bad_descriptors_from_the_kernel_are_refused_and_frames_parsed() {
        let layout = UmemLayout::new(2048, 4).unwrap();
        let umem = UmemMemory::map(layout, false).unwrap();
        let spec = UdpFrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            vlan: None,
            src: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 4000),
            dst: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 9000),
            ttl: 64,
            udp_checksum: true,
        };
        // Frame 1 at offset 256 (where the kernel puts data in copy mode): a good datagram.
        let good = layout.check(2048 + 256, 2048 - 256).unwrap();
        // SAFETY: a checked range of a UMEM no socket uses.
        let buf = unsafe { umem.slice_mut(good) };
        spec.payload_mut(buf)[..5].copy_from_slice(b"hello");
        let good_len = spec.finish(buf, 5).unwrap() as u32;
        // The XDP program's stamp in front of it (struct zc_rx_meta).
        let meta_at = 2048 + 256 - RX_META_LEN;
        // SAFETY: inside frame 1 of a UMEM no socket uses; no other reference.
        let meta = unsafe { umem.slice_mut(meta_at..meta_at + RX_META_LEN) };
        meta[..8].copy_from_slice(&1234u64.to_ne_bytes());
        meta[16..20].copy_from_slice(&RX_META_MAGIC.to_ne_bytes());

        let (producer, consumer, flags) = (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
        let mut descs = vec![xdp_desc::default(); 8];
        let entries_ptr = descs.as_mut_ptr();
        let ptrs = || RingPtrs {
            producer: &producer as *const AtomicU32,
            consumer: &consumer as *const AtomicU32,
            flags: &flags as *const AtomicU32,
            entries: entries_ptr,
            size: 8,
        };
        // SAFETY: the atomics and `descs` outlive both ends, created once each.
        let (mut kernel, mut rx) = unsafe { (ProdRing::new(ptrs()), ConsRing::new(ptrs())) };
        let mut r = kernel.reserve(5);
        for (addr, len) in [
            (2048 + 256, good_len), // good
            (3 * 2048 + 256, 20),   // zeroes: EtherType 0, not UDP
            (4 * 2048, 64),         // out of the UMEM
            (4 * 2048 - 10, 64),    // straddles its end
            (256, 2000),            // longer than its frame
        ] {
            assert!(r.push(xdp_desc {
                addr,
                len,
                options: 0
            }));
        }
        r.commit();

        let (mut held, mut entries, mut c) = (Vec::new(), Vec::new(), Counters::default());
        assert_eq!(
            collect(
                &mut rx,
                64,
                layout,
                &umem,
                true,
                &mut held,
                &mut entries,
                &mut c
            ),
            5
        );
        assert_eq!(c.refused, 3);
        assert_eq!((c.malformed, c.not_udp), (0, 1));
        assert_eq!(c.datagrams, 1);
        assert_eq!(
            held,
            vec![2048, 3 * 2048, 3 * 2048, 0],
            "every frame inside the UMEM is recycled, refused or not; one outside cannot be"
        );
        // SAFETY: the entry's range was checked by collect; the UMEM is not shared.
        assert_eq!(unsafe { umem.slice(entries[0].payload.clone()) }, b"hello");
        assert_eq!(entries[0].dst.port(), 9000);
        assert_eq!(
            entries[0].stamp,
            Some(RxTimestamp {
                ns: 1234,
                clock: Clock::Monotonic
            }),
            "the stamp in front of the frame (no NIC stamp: the hook's)"
        );
        // SAFETY: as above; the burst's entries are only read.
        let magic = unsafe { umem.slice(meta_at + 16..meta_at + 20) };
        assert_eq!(
            magic, [0; 4],
            "taken once: a reused frame never shows it again"
        );
        // SAFETY: frame 1 is ours (no ring), 256 bytes of room in front of its data.
        assert_eq!(unsafe { take_stamp(&umem, 2048, 2048 + 256) }, None);
        // The NIC's stamp wins over the hook's when the driver gave one.
        // SAFETY: as above.
        let meta = unsafe { umem.slice_mut(meta_at..meta_at + RX_META_LEN) };
        meta[8..16].copy_from_slice(&5678u64.to_ne_bytes());
        meta[16..20].copy_from_slice(&RX_META_MAGIC.to_ne_bytes());
        assert_eq!(
            // SAFETY: as above.
            unsafe { take_stamp(&umem, 2048, 2048 + 256) },
            Some(RxTimestamp {
                ns: 5678,
                clock: Clock::NicHardware
            })
        );
        // A frame with less room in front than the metadata has no stamp.
        // SAFETY: frame 0 is ours; the call reads nothing when there is no room.
        assert_eq!(unsafe { take_stamp(&umem, 0, 8) }, None);
    }
}

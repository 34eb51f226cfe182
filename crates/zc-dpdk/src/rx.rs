//! Burst receive: `rte_eth_rx_burst` into a fixed mbuf array, every frame checked
//! by zc-core's parser, datagrams handed out borrowed from their mbufs, and the
//! mbufs freed in one bulk call when the burst is dropped.

use crate::mbuf;
use crate::port::PortInner;
use dpdk_sys as sys;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zc_core::backend::{Datagram, Mode, Receiver, RxBurst, RxStats};
use zc_core::error::{Error, Result};
use zc_core::wire::{parse_udp_frame, WireError};

/// Largest burst a receiver asks for.
pub const MAX_BURST: u16 = 512;

/// Receive settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxConfig {
    /// Frames per `rte_eth_rx_burst` call (1 to [`MAX_BURST`]).
    pub batch: u16,
    /// Hand out only datagrams to this address and port (`0.0.0.0` matches any
    /// address); others are freed and counted as `not_ours`. `None`: all.
    pub accept: Option<SocketAddrV4>,
    /// Also hand out datagrams to this multicast group on `accept`'s port
    /// (the group is joined on the interface by the caller, e.g. with
    /// `zc_os::multicast::Membership`). Ignored when `accept` is `None`.
    pub group: Option<Ipv4Addr>,
    /// A gap between two polls of the queue longer than this is counted
    /// (`poll_gaps` and `longest_poll_gap_us` in the stats): while nobody
    /// polls, only the ring holds what arrives, so a thread descheduled or a
    /// slow handler is where a busy-polling receiver loses frames.
    pub poll_gap: Duration,
}

impl Default for RxConfig {
    fn default() -> Self {
        Self {
            batch: 32,
            accept: None,
            group: None,
            poll_gap: Duration::from_millis(1),
        }
    }
}

impl RxConfig {
    #[inline]
    fn accepts(&self, dst: SocketAddrV4) -> bool {
        match self.accept {
            None => true,
            Some(a) => {
                a.port() == dst.port()
                    && (a.ip().is_unspecified()
                        || a.ip() == dst.ip()
                        || self.group == Some(*dst.ip()))
            }
        }
    }
}

/// Where a checked datagram sits in its mbuf.
#[derive(Debug, Clone, Copy)]
struct Slot {
    payload_off: u16,
    payload_len: u16,
    src: SocketAddrV4,
    dst: SocketAddrV4,
}

const EMPTY_SLOT: Slot = Slot {
    payload_off: 0,
    payload_len: 0,
    src: SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
    dst: SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
};

/// One receive queue of a port; implements [`Receiver`].
pub struct DpdkReceiver {
    port: Arc<PortInner>,
    queue: u16,
    batch: u16,
    cfg: RxConfig,
    /// Mbufs of checked frames, the first `held` of them owned by the live burst.
    mbufs: Box<[*mut sys::rte_mbuf]>,
    slots: Box<[Slot]>,
    held: usize,
    /// Refused frames of the current poll, freed in bulk.
    refused: Box<[*mut sys::rte_mbuf]>,
    mode: Mode,
    stats: RxStats,
    raw_frames: u64,
    last_malformed: Option<WireError>,
    gaps: PollGaps,
}

/// Gaps between consecutive polls longer than a threshold.
#[derive(Debug, Clone, Copy)]
struct PollGaps {
    threshold_ns: u64,
    /// Monotonic time of the last poll; 0 before the first.
    last_ns: u64,
    count: u64,
    longest_ns: u64,
}

impl PollGaps {
    /// Notes a poll now (one vDSO clock read).
    #[inline]
    fn poll(&mut self) {
        let now = zc_core::sys::monotonic_ns();
        let gap = now.saturating_sub(self.last_ns);
        if self.last_ns != 0 && gap > self.threshold_ns {
            self.count += 1;
            self.longest_ns = self.longest_ns.max(gap);
        }
        self.last_ns = now;
    }
}

// SAFETY: the receiver owns its queue exclusively (Port::receiver claims it) and
// the mbufs it holds; DPDK allows rx_burst on a queue from any one thread at a
// time, and the raw pointers are never shared. It is not Sync.
unsafe impl Send for DpdkReceiver {}

impl std::fmt::Debug for DpdkReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkReceiver")
            .field("port", &self.port.name)
            .field("queue", &self.queue)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl DpdkReceiver {
    pub(crate) fn new(port: Arc<PortInner>, queue: u16, cfg: RxConfig) -> Result<Self> {
        if cfg.batch == 0 || cfg.batch > MAX_BURST {
            return Err(Error::config(format!(
                "receive batch {} must be 1 to {MAX_BURST}",
                cfg.batch
            )));
        }
        let n = usize::from(cfg.batch);
        let mut mode = Mode::new("dpdk", port.data_path, n);
        mode.busy_poll = true;
        mode.queue = Some(u32::from(queue));
        mode.details = port.details.clone();
        let threshold_ns = u64::try_from(cfg.poll_gap.as_nanos()).unwrap_or(u64::MAX);
        mode.details
            .push(format!("poll gaps counted over {:?}", cfg.poll_gap));
        Ok(Self {
            port,
            queue,
            batch: cfg.batch,
            cfg,
            mbufs: vec![std::ptr::null_mut(); n].into_boxed_slice(),
            slots: vec![EMPTY_SLOT; n].into_boxed_slice(),
            held: 0,
            refused: vec![std::ptr::null_mut(); n].into_boxed_slice(),
            mode,
            stats: RxStats::default(),
            raw_frames: 0,
            last_malformed: None,
            gaps: PollGaps {
                threshold_ns,
                last_ns: 0,
                count: 0,
                longest_ns: 0,
            },
        })
    }

    /// One `rte_eth_rx_burst` into `mbufs`; returns how many arrived.
    #[inline]
    fn rx_burst(&mut self) -> usize {
        self.gaps.poll();
        // SAFETY: mbufs has room for `batch` pointers; the queue is ours and set up.
        let got = unsafe {
            sys::zc_eth_rx_burst(
                self.port.id,
                self.queue,
                self.mbufs.as_mut_ptr(),
                self.batch,
            )
        };
        usize::from(got)
    }

    /// Polls the queue once: checks every frame, keeps the good ones, frees the
    /// rest. Returns how many datagrams are now held.
    ///
    /// Refused frames are counted by why: other protocols (ARP, IPv6, ICMP…)
    /// as `not_udp`, datagrams for another address or port as `not_ours`,
    /// and real defects (truncation, bad lengths or checksums, fragments) as
    /// `malformed`.
    #[inline]
    fn poll(&mut self) -> usize {
        let got = self.rx_burst();
        let mut kept = 0;
        let mut refused = 0;
        let mut bytes = 0u64;
        for i in 0..got {
            let m = self.mbufs[i];
            // SAFETY: rx_burst returned `got` valid mbufs that we now own.
            let frame = unsafe { mbuf::data(m) };
            match parse_udp_frame(frame) {
                Ok(f) if self.cfg.accepts(f.dst()) => {
                    let payload = f.payload();
                    // Both fit in u16: a frame lives in one mbuf segment of < 64 KiB.
                    let off = payload.as_ptr() as usize - frame.as_ptr() as usize;
                    self.slots[kept] = Slot {
                        payload_off: off as u16,
                        payload_len: payload.len() as u16,
                        src: f.src(),
                        dst: f.dst(),
                    };
                    bytes += payload.len() as u64;
                    self.mbufs[kept] = m;
                    kept += 1;
                }
                Ok(_) => {
                    self.stats.not_ours += 1;
                    self.refused[refused] = m;
                    refused += 1;
                }
                Err(e) if e.is_other_protocol() => {
                    self.stats.not_udp += 1;
                    self.refused[refused] = m;
                    refused += 1;
                }
                Err(e) => {
                    self.stats.malformed += 1;
                    self.stats.malformed_by_reason.add(&e);
                    self.last_malformed = Some(e);
                    self.refused[refused] = m;
                    refused += 1;
                }
            }
        }
        if refused > 0 {
            // SAFETY: the refused mbufs are ours and referenced nowhere else.
            unsafe { sys::zc_pktmbuf_free_bulk(self.refused.as_mut_ptr(), refused as u32) };
        }
        if kept > 0 {
            self.stats.bursts += 1;
            self.stats.datagrams += kept as u64;
            self.stats.bytes += bytes;
        }
        self.held = kept;
        kept
    }

    /// Polls the queue once without parsing: all frames are held.
    #[inline]
    fn poll_raw(&mut self) -> usize {
        let got = self.rx_burst();
        if got > 0 {
            self.raw_frames += got as u64;
        }
        self.held = got;
        got
    }

    /// Busy-polls with `poll` as [`Receiver::recv_burst`] describes.
    #[inline]
    fn wait(&mut self, timeout: Option<Duration>, poll: fn(&mut Self) -> usize) {
        // A burst leaked with `mem::forget` never ran its drop: free its mbufs
        // now, before the next poll overwrites their pointers.
        self.release();
        if poll(self) == 0 && timeout != Some(Duration::ZERO) {
            let deadline = timeout.and_then(zc_core::sys::deadline_after);
            let mut polls = 0u32;
            while poll(self) == 0 {
                polls += 1;
                if polls == POLLS_PER_CLOCK_READ {
                    polls = 0;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
            }
        }
    }

    /// Receives whole Ethernet frames without checking them, for callers that
    /// parse themselves (e.g. [`MarketDataHandler::on_frame`](zc_core::MarketDataHandler::on_frame)).
    /// Same timeout rules as [`Receiver::recv_burst`]; counted in the
    /// `raw_frames` statistic, not as datagrams.
    #[inline]
    pub fn recv_frames(&mut self, timeout: Option<Duration>) -> Result<FrameBurst<'_>> {
        self.wait(timeout, Self::poll_raw);
        Ok(FrameBurst { rx: self })
    }

    /// Why the latest malformed frame was refused.
    pub fn last_malformed(&self) -> Option<WireError> {
        self.last_malformed
    }
}

/// A burst of datagrams in mbufs; frees them in bulk on drop.
pub struct DpdkBurst<'a> {
    rx: &'a mut DpdkReceiver,
}

impl RxBurst for DpdkBurst<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.rx.held
    }

    #[inline]
    fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.rx.held {
            return None;
        }
        let s = self.rx.slots[i];
        // SAFETY: mbufs[i] (i < held) is a received mbuf this burst owns until it
        // drops; the returned slice borrows self, so it cannot outlive the mbuf.
        let frame = unsafe { mbuf::data(self.rx.mbufs[i]) };
        let start = usize::from(s.payload_off);
        let payload = frame.get(start..start + usize::from(s.payload_len))?;
        Some(Datagram {
            payload,
            src: SocketAddr::V4(s.src),
            dst: SocketAddr::V4(s.dst),
            rx_timestamp: None,
        })
    }

    /// The whole Ethernet frame of the `i`-th datagram, as received.
    fn frame(&self, i: usize) -> Option<&[u8]> {
        let m = *self.rx.mbufs.get(..self.rx.held)?.get(i)?;
        // SAFETY: m (i < held) is a received mbuf this burst owns until it drops;
        // the slice borrows self.
        Some(unsafe { mbuf::data(m) })
    }
}

impl Drop for DpdkBurst<'_> {
    fn drop(&mut self) {
        self.rx.release();
    }
}

impl DpdkReceiver {
    /// Frees the mbufs of the burst that just ended.
    #[inline]
    fn release(&mut self) {
        let n = self.held;
        if n > 0 {
            // SAFETY: the first `held` mbufs are owned by the ending burst, and
            // nothing borrowing them is alive (borrows end with the burst).
            unsafe { sys::zc_pktmbuf_free_bulk(self.mbufs.as_mut_ptr(), n as u32) };
            self.held = 0;
        }
    }
}

/// A burst of unchecked Ethernet frames in mbufs; frees them in bulk on drop.
pub struct FrameBurst<'a> {
    rx: &'a mut DpdkReceiver,
}

impl FrameBurst<'_> {
    /// Frames in the burst.
    #[inline]
    pub fn len(&self) -> usize {
        self.rx.held
    }

    /// True when the poll found nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.rx.held == 0
    }

    /// The `i`-th frame.
    #[inline]
    pub fn frame(&self, i: usize) -> Option<&[u8]> {
        let m = *self.rx.mbufs.get(..self.rx.held)?.get(i)?;
        // SAFETY: m (i < held) is a received mbuf this burst owns until it drops;
        // the slice borrows self.
        Some(unsafe { mbuf::data(m) })
    }

    /// The frames in receive order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.frame(i))
    }
}

impl Drop for FrameBurst<'_> {
    fn drop(&mut self) {
        self.rx.release();
    }
}

/// Empty polls between clock reads while waiting with a timeout.
const POLLS_PER_CLOCK_READ: u32 = 64;

impl Receiver for DpdkReceiver {
    type Burst<'a> = DpdkBurst<'a>;

    /// Busy-polls the queue (DPDK has no blocking receive): `None` polls until
    /// a datagram arrives, `Some(ZERO)` polls once, `Some(t)` polls for `t`.
    #[inline]
    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<DpdkBurst<'_>> {
        self.wait(timeout, Self::poll);
        Ok(DpdkBurst { rx: self })
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Queue counters (`not_udp`, `not_ours`, `malformed_by_reason`; `extra`: `raw_frames`) plus the port's (`ipackets`, `imissed`, `ierrors`,
    /// `rx_nombuf`, port-wide) and the mempool's.
    fn stats(&self) -> RxStats {
        let mut s = self.stats.clone();
        match self.port.stats() {
            Ok(p) => {
                // net_af_packet (DPDK 22.11) leaves `imissed` at 0 while its
                // kernel ring overflows: say "unknown", never a false 0.
                s.kernel_drops = (self.port.driver != "net_af_packet").then_some(p.imissed);
                s.extra = vec![
                    ("raw_frames", self.raw_frames),
                    ("poll_gaps", self.gaps.count),
                    ("longest_poll_gap_us", self.gaps.longest_ns / 1000),
                    ("port_ipackets", p.ipackets),
                    ("port_imissed", p.imissed),
                    ("port_ierrors", p.ierrors),
                    ("port_rx_nombuf", p.rx_nombuf),
                    ("mempool_available", u64::from(p.mempool_available)),
                    ("mempool_in_use", u64::from(p.mempool_in_use)),
                ];
            }
            Err(e) => tracing::warn!(error = %e, "port statistics unavailable"),
        }
        s
    }
}

impl Drop for DpdkReceiver {
    /// Frees the mbufs of a burst leaked with `mem::forget` (it never ran its
    /// own drop), so that none is still out when the pool is freed.
    fn drop(&mut self) {
        self.release();
        self.port.release(true, self.queue);
    }
}

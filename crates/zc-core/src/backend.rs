//! The traits every backend implements, and what they report.
//!
//! A [`Receiver`] hands out a burst of borrowed [`Datagram`]s; the buffers behind
//! them (kernel-copied socket buffers, io_uring provided buffers, UMEM frames,
//! mbufs) go back to the backend when the burst is dropped. The borrow checker
//! enforces it: a burst borrows the receiver mutably, so no datagram outlives
//! its buffer and no second burst starts before the first is released.
//!
//! A [`Sender`] lets the caller write payloads in place into backend-owned
//! buffers through a fill callback, then sends the batch.

use crate::error::{Error, Result};
use crate::wire::MalformedCounts;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The clock a receive timestamp was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// CLOCK_REALTIME (the kernel's software receive timestamps,
    /// `SO_TIMESTAMPING`).
    Realtime,
    /// CLOCK_MONOTONIC.
    Monotonic,
    /// The NIC's own clock (its PTP hardware clock, the raw hardware stamp
    /// of `SO_TIMESTAMPING`). On CLOCK_REALTIME's scale only when something
    /// keeps the two in step (`phc2sys`); zc compares it with CLOCK_REALTIME.
    NicHardware,
}

/// When a datagram was received, by the kernel or the NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxTimestamp {
    /// Nanoseconds on `clock`.
    pub ns: u64,
    /// The clock `ns` is on.
    pub clock: Clock,
}

/// One received UDP datagram, borrowed from the backend's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// The UDP payload.
    pub payload: &'a [u8],
    /// Sender's address.
    pub src: SocketAddr,
    /// Address it was sent to (the bound address for sockets).
    pub dst: SocketAddr,
    /// Kernel or NIC receive time, when the backend has one.
    pub rx_timestamp: Option<RxTimestamp>,
}

/// A batch of received datagrams. Dropping it returns the buffers to the backend.
pub trait RxBurst {
    /// Number of datagrams in the burst.
    fn len(&self) -> usize;

    /// The `i`-th datagram, or `None` past the end.
    fn get(&self, i: usize) -> Option<Datagram<'_>>;

    /// The whole link-layer frame the `i`-th datagram arrived in, exactly as
    /// received, for backends that receive frames (AF_XDP, DPDK). `None` for
    /// the socket backends, which only ever see the payload, and past the end.
    fn frame(&self, i: usize) -> Option<&[u8]> {
        let _ = i;
        None
    }

    /// True when the burst holds nothing (a timeout or an empty poll).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The datagrams in receive order.
    fn iter(&self) -> BurstIter<'_, Self>
    where
        Self: Sized,
    {
        BurstIter {
            burst: self,
            next: 0,
        }
    }
}

/// Iterator over an [`RxBurst`].
pub struct BurstIter<'b, B> {
    burst: &'b B,
    next: usize,
}

impl<'b, B: RxBurst> Iterator for BurstIter<'b, B> {
    type Item = Datagram<'b>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = self.burst.get(self.next)?;
        self.next += 1;
        Some(d)
    }
}

/// A datagram receiver.
pub trait Receiver {
    /// The burst type; it borrows the receiver until dropped.
    type Burst<'a>: RxBurst
    where
        Self: 'a;

    /// Receives up to the configured batch of datagrams.
    ///
    /// `timeout`: `None` waits until at least one datagram arrives,
    /// `Some(Duration::ZERO)` polls once, `Some(t)` waits at most `t`. An empty
    /// burst means the wait ended with nothing received.
    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<Self::Burst<'_>>;

    /// The mode the receiver actually runs in.
    fn mode(&self) -> &Mode;

    /// Counters so far (not for the per-packet path: may allocate).
    fn stats(&self) -> RxStats;
}

/// An object-safe view of any [`Receiver`], for picking a backend at run time.
///
/// The callback costs one indirect call per datagram; code that knows its
/// backend at compile time uses [`Receiver`] directly.
pub trait DynReceiver {
    /// Receives one burst and calls `f` for each datagram, then releases the
    /// burst. Returns how many datagrams there were.
    fn recv_each(
        &mut self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&Datagram<'_>),
    ) -> Result<usize>;

    /// As [`DynReceiver::recv_each`], and `f` also gets the datagram's whole
    /// frame where the backend has one ([`RxBurst::frame`]).
    fn recv_each_frame(
        &mut self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&Datagram<'_>, Option<&[u8]>),
    ) -> Result<usize>;

    /// The mode the receiver actually runs in.
    fn mode(&self) -> &Mode;

    /// Counters so far.
    fn stats(&self) -> RxStats;
}

impl<R: Receiver> DynReceiver for R {
    fn recv_each(
        &mut self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&Datagram<'_>),
    ) -> Result<usize> {
        let burst = self.recv_burst(timeout)?;
        let n = burst.len();
        for i in 0..n {
            if let Some(d) = burst.get(i) {
                f(&d);
            }
        }
        Ok(n)
    }

    fn recv_each_frame(
        &mut self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&Datagram<'_>, Option<&[u8]>),
    ) -> Result<usize> {
        let burst = self.recv_burst(timeout)?;
        let n = burst.len();
        for i in 0..n {
            if let Some(d) = burst.get(i) {
                f(&d, burst.frame(i));
            }
        }
        Ok(n)
    }

    fn mode(&self) -> &Mode {
        Receiver::mode(self)
    }

    fn stats(&self) -> RxStats {
        Receiver::stats(self)
    }
}

/// A datagram sender to one destination fixed when it was opened.
pub trait Sender {
    /// Largest payload one slot holds.
    fn max_payload(&self) -> usize;

    /// Sends up to `count` datagrams. For each slot `i` the backend calls
    /// `fill(i, buf)` with a backend-owned buffer of [`Sender::max_payload`]
    /// bytes, zeroed; `fill` writes the payload in place and returns its
    /// length (bytes it claims but did not write go out as zeroes).
    ///
    /// One call sends at most `min(count, batch)` datagrams, `batch` being
    /// [`Mode::batch`] of [`Sender::mode`]. It returns how many were handed
    /// to the kernel or NIC; the caller sends the rest with another call.
    ///
    /// **Back-pressure** means the call sent fewer than `min(count, batch)`:
    /// no free buffer, a full ring, a full socket buffer or device queue. It
    /// is counted once per such call in [`TxStats::backpressure`]. A `count`
    /// above the batch is not back-pressure.
    ///
    /// A length above the buffer's size is an error
    /// ([`Error::oversized_payload`]): the slots before it are sent and
    /// counted, nothing from that slot on is, and it is not back-pressure.
    ///
    /// Every backend keeps these books with [`SendBurst`], so the counters
    /// mean the same whichever backend sends.
    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize>;

    /// The mode the sender actually runs in.
    fn mode(&self) -> &Mode;

    /// Counters so far.
    fn stats(&self) -> TxStats;
}

/// The bookkeeping of one [`Sender::send_burst`] call, shared by every
/// backend: the per-call limit, the length check of each filled slot, the
/// datagram and byte counts, and the one meaning of back-pressure.
///
/// A backend makes one with [`SendBurst::new`], fills at most
/// [`SendBurst::limit`] slots with [`SendBurst::fill`] (stopping at the first
/// `None`), calls [`SendBurst::sent`] for each datagram the kernel or NIC
/// took, and returns [`SendBurst::finish`].
#[derive(Debug)]
#[must_use = "finish() folds the call into the sender's counters"]
pub struct SendBurst {
    limit: usize,
    sent: usize,
    bytes: u64,
    error: Option<Error>,
}

impl SendBurst {
    /// A call that asked for `count` datagrams of a sender that sends at most
    /// `batch` per call.
    pub fn new(count: usize, batch: usize) -> Self {
        Self {
            limit: count.min(batch),
            sent: 0,
            bytes: 0,
            error: None,
        }
    }

    /// The most this call may send: `min(count, batch)`.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Lets the caller's `fill` write slot `slot` into `buf` (exactly the
    /// bytes a payload may take). Returns the payload length, or `None` when
    /// `fill` claimed more than `buf` holds: the call then stops at this slot
    /// and [`SendBurst::finish`] returns the error.
    ///
    /// `buf` is zeroed first: a `fill` that reports more bytes than it wrote
    /// sends zeroes, never what the buffer held before (an earlier payload,
    /// or with DPDK, whose transmit and receive pools are one, the bytes of a
    /// frame received earlier). The cost is one `memset` of the buffer per
    /// datagram.
    pub fn fill(
        &mut self,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
        slot: usize,
        buf: &mut [u8],
    ) -> Option<usize> {
        buf.fill(0);
        let len = fill(slot, buf);
        if len > buf.len() {
            self.fail(Error::oversized_payload(slot, len, buf.len()));
            return None;
        }
        Some(len)
    }

    /// A slot that cannot be sent for another reason: the call stops there
    /// and [`SendBurst::finish`] returns `e` (the first one recorded).
    pub fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }

    /// One datagram with a payload of `len` bytes was handed to the kernel or NIC.
    pub fn sent(&mut self, len: usize) {
        self.sent += 1;
        self.bytes += len as u64;
    }

    /// Adds the call to `stats` and gives what `send_burst` returns: the
    /// recorded error, or the number sent (counting back-pressure when it is
    /// below the limit).
    pub fn finish(self, stats: &mut TxStats) -> Result<usize> {
        stats.datagrams += self.sent as u64;
        stats.bytes += self.bytes;
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.sent < self.limit {
            stats.backpressure += 1;
        }
        Ok(self.sent)
    }
}

/// Whether payload bytes are copied between kernel and user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum DataPath {
    /// Payloads are copied (sockets, XDP copy mode, MSG_ZEROCOPY that fell back).
    Copy,
    /// Payloads are not copied (UMEM zero-copy, mbufs, SEND_ZC that held).
    ZeroCopy,
    /// Memory only: the in-process loopback backend.
    InProcess,
}

/// What a backend actually runs as, after probing the kernel. Never a wish:
/// a backend that fell back reports the fallback here and in `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Mode {
    /// Backend name as accepted by the umbrella crate (e.g. `recvmmsg`).
    pub backend: &'static str,
    /// Copy or zero-copy.
    pub data_path: DataPath,
    /// Busy polling in use.
    pub busy_poll: bool,
    /// Datagrams per burst.
    pub batch: usize,
    /// Device queue, when the backend is bound to one.
    pub queue: Option<u32>,
    /// Anything else worth knowing (fallbacks, features in use), one fact each.
    pub details: Vec<String>,
}

impl Mode {
    /// A copy-mode report with no details.
    pub fn new(backend: &'static str, data_path: DataPath, batch: usize) -> Self {
        Self {
            backend,
            data_path,
            busy_poll: false,
            batch,
            queue: None,
            details: Vec::new(),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = match self.data_path {
            DataPath::Copy => "copy",
            DataPath::ZeroCopy => "zero-copy",
            DataPath::InProcess => "in-process",
        };
        write!(
            f,
            "{} ({path}, batch {}, busy-poll {}",
            self.backend,
            self.batch,
            if self.busy_poll { "on" } else { "off" }
        )?;
        if let Some(q) = self.queue {
            write!(f, ", queue {q}")?;
        }
        for d in &self.details {
            write!(f, ", {d}")?;
        }
        f.write_str(")")
    }
}

/// Receive counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RxStats {
    /// Datagrams handed out.
    pub datagrams: u64,
    /// Payload bytes handed out.
    pub bytes: u64,
    /// Non-empty bursts.
    pub bursts: u64,
    /// Datagrams the kernel or NIC dropped before we saw them
    /// (`SO_RXQ_OVFL`, `XDP_STATISTICS`, `imissed`), where the backend can tell.
    pub kernel_drops: Option<u64>,
    /// Datagrams cut short because they exceeded the receive buffer.
    pub truncated: u64,
    /// Frames refused by the wire parser as defective (raw backends).
    pub malformed: u64,
    /// `malformed` by the parser's reason.
    pub malformed_by_reason: MalformedCounts,
    /// Well-formed frames that were not IPv4/UDP (ARP, IPv6, ICMP…), refused
    /// by a raw backend's filter.
    pub not_udp: u64,
    /// UDP datagrams for another address or port, refused by a raw backend's
    /// filter.
    pub not_ours: u64,
    /// Backend-specific counters, by name.
    pub extra: Vec<(&'static str, u64)>,
}

impl RxStats {
    /// Adds another receiver's counters (several queues of one feed): sums,
    /// except that kernel drops are unknown when either side's are, and a
    /// backend counter named `longest_*` takes the larger value.
    pub fn add(&mut self, other: &RxStats) {
        self.datagrams += other.datagrams;
        self.bytes += other.bytes;
        self.bursts += other.bursts;
        self.kernel_drops = self
            .kernel_drops
            .zip(other.kernel_drops)
            .map(|(a, b)| a + b);
        self.truncated += other.truncated;
        self.malformed += other.malformed;
        self.malformed_by_reason.merge(&other.malformed_by_reason);
        self.not_udp += other.not_udp;
        self.not_ours += other.not_ours;
        for &(name, v) in &other.extra {
            match self.extra.iter_mut().find(|(n, _)| *n == name) {
                Some(e) if name.starts_with("longest_") => e.1 = e.1.max(v),
                Some(e) => e.1 += v,
                None => self.extra.push((name, v)),
            }
        }
    }
}

/// Send counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TxStats {
    /// Datagrams handed to the kernel or NIC.
    pub datagrams: u64,
    /// Payload bytes handed to the kernel or NIC.
    pub bytes: u64,
    /// Calls that sent fewer than `min(count, batch)` (back-pressure; see
    /// [`Sender::send_burst`]).
    pub backpressure: u64,
    /// Backend-specific counters, by name.
    pub extra: Vec<(&'static str, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_over_reports_sends_zeroes_not_stale_bytes() {
        let mut burst = SendBurst::new(1, 1);
        let mut buf = [0xaau8; 64];
        let mut lie = |_: usize, b: &mut [u8]| {
            b[..4].copy_from_slice(b"tick");
            32
        };
        assert_eq!(burst.fill(&mut lie, 0, &mut buf), Some(32));
        assert_eq!(&buf[..4], b"tick");
        assert!(buf[4..].iter().all(|&b| b == 0), "{buf:?}");
    }

    fn slot_of(n: usize) -> impl FnMut(usize, &mut [u8]) -> usize {
        move |_, _| n
    }

    #[test]
    fn a_count_above_the_batch_is_not_back_pressure() {
        let mut stats = TxStats::default();
        let mut b = SendBurst::new(100, 8);
        assert_eq!(b.limit(), 8);
        let mut buf = [0u8; 16];
        for i in 0..8 {
            let len = b.fill(&mut slot_of(10), i, &mut buf).unwrap();
            b.sent(len);
        }
        assert_eq!(b.finish(&mut stats).unwrap(), 8);
        assert_eq!(
            (stats.datagrams, stats.bytes, stats.backpressure),
            (8, 80, 0)
        );
    }

    #[test]
    fn fewer_than_the_limit_is_back_pressure_once() {
        let mut stats = TxStats::default();
        let mut b = SendBurst::new(4, 8);
        b.sent(3);
        assert_eq!(b.finish(&mut stats).unwrap(), 1);
        assert_eq!(
            (stats.datagrams, stats.bytes, stats.backpressure),
            (1, 3, 1)
        );
        assert_eq!(SendBurst::new(0, 8).finish(&mut stats).unwrap(), 0);
        assert_eq!(stats.backpressure, 1);
    }

    #[test]
    fn an_oversized_slot_stops_the_call_after_counting_the_ones_before() {
        let mut stats = TxStats::default();
        let mut b = SendBurst::new(4, 8);
        let mut buf = [0u8; 16];
        let len = b.fill(&mut slot_of(16), 0, &mut buf).unwrap();
        b.sent(len);
        assert_eq!(b.fill(&mut slot_of(17), 1, &mut buf), None);
        let e = b.finish(&mut stats).unwrap_err();
        assert_eq!(
            e.to_string(),
            "slot 1: payload of 17 bytes exceeds the 16-byte slot"
        );
        assert_eq!(
            (stats.datagrams, stats.bytes, stats.backpressure),
            (1, 16, 0)
        );
    }
}

//! Burst send: mbufs allocated in bulk, each frame written in place (payload by
//! the caller, headers by zc-core's [`UdpFrameSpec`]), `rte_eth_tx_burst`
//! retried while the device takes some, and what it never took freed and counted.

use crate::mbuf;
use crate::port::PortInner;
use dpdk_sys as sys;
use std::sync::Arc;
use zc_core::backend::{Mode, SendBurst, Sender, TxStats};
use zc_core::error::{Error, Result};
use zc_core::wire::{UdpFrameSpec, IPV4_MIN_HEADER_LEN, UDP_HEADER_LEN};

/// Largest batch a sender builds per call.
pub const MAX_TX_BURST: u16 = 512;

/// Transmit settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxConfig {
    /// The Ethernet/IPv4/UDP headers written around each payload.
    pub frame: UdpFrameSpec,
    /// Frames per `send_burst` call at most (1 to [`MAX_TX_BURST`]).
    pub batch: u16,
    /// `rte_eth_tx_burst` calls that may take nothing before the rest of a
    /// batch is freed and counted as unsent.
    pub stalled_retries: u32,
}

impl TxConfig {
    /// Batch 32, 64 stalled retries.
    pub fn new(frame: UdpFrameSpec) -> Self {
        Self {
            frame,
            batch: 32,
            stalled_retries: 64,
        }
    }
}

/// One transmit queue of a port; implements [`Sender`].
pub struct DpdkSender {
    port: Arc<PortInner>,
    queue: u16,
    cfg: TxConfig,
    mbufs: Box<[*mut sys::rte_mbuf]>,
    /// Payload length of each built frame, for byte counts after the device took them.
    lens: Box<[u16]>,
    max_payload: usize,
    mode: Mode,
    stats: TxStats,
    alloc_failures: u64,
    unsent: u64,
    partial_bursts: u64,
}

// SAFETY: the sender owns its transmit queue exclusively (Port::sender claims
// it); mbufs it holds between allocation and tx_burst are its own. DPDK allows
// tx_burst on a queue from any one thread at a time. It is not Sync.
unsafe impl Send for DpdkSender {}

impl std::fmt::Debug for DpdkSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpdkSender")
            .field("port", &self.port.name)
            .field("queue", &self.queue)
            .field("batch", &self.cfg.batch)
            .finish_non_exhaustive()
    }
}

impl DpdkSender {
    pub(crate) fn new(port: Arc<PortInner>, queue: u16, cfg: TxConfig) -> Result<Self> {
        if cfg.batch == 0 || cfg.batch > MAX_TX_BURST {
            return Err(Error::config(format!(
                "send batch {} must be 1 to {MAX_TX_BURST}",
                cfg.batch
            )));
        }
        let header = cfg.frame.header_len();
        // An IPv4 packet of at most the MTU, in one mbuf with its Ethernet header.
        let by_mtu = usize::from(port.mtu).saturating_sub(IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN);
        let by_mbuf = usize::from(port.pool.buf_len()).saturating_sub(header);
        let max_payload = by_mtu.min(by_mbuf);
        if max_payload == 0 {
            return Err(Error::config(format!(
                "no payload room: MTU {} and {}-byte mbufs leave nothing after {header} bytes of headers",
                port.mtu,
                port.pool.buf_len()
            )));
        }
        let mut mode = Mode::new("dpdk", port.data_path, usize::from(cfg.batch));
        mode.queue = Some(u32::from(queue));
        mode.details = port.details.clone();
        Ok(Self {
            port,
            queue,
            cfg,
            mbufs: vec![std::ptr::null_mut(); usize::from(cfg.batch)].into_boxed_slice(),
            lens: vec![0; usize::from(cfg.batch)].into_boxed_slice(),
            max_payload,
            mode,
            stats: TxStats::default(),
            alloc_failures: 0,
            unsent: 0,
            partial_bursts: 0,
        })
    }

    /// Allocates up to `want` mbufs into `self.mbufs`, all at once when the pool
    /// has them, else one at a time until it runs dry. Returns how many.
    fn alloc(&mut self, want: usize) -> usize {
        let pool = self.port.pool.as_ptr();
        // SAFETY: mbufs has room for `batch` >= want pointers; the pool is live.
        let rc = unsafe { sys::zc_pktmbuf_alloc_bulk(pool, self.mbufs.as_mut_ptr(), want as u32) };
        if rc == 0 {
            return want;
        }
        self.alloc_failures += 1;
        let mut got = 0;
        while got < want {
            // SAFETY: the pool is live.
            let m = unsafe { sys::zc_pktmbuf_alloc(pool) };
            if m.is_null() {
                break;
            }
            self.mbufs[got] = m;
            got += 1;
        }
        got
    }

    /// Frees `self.mbufs[from..to]` (never handed to the device).
    fn free(&mut self, from: usize, to: usize) {
        if to > from {
            // SAFETY: those mbufs are ours: allocated here and not taken by tx_burst.
            unsafe {
                sys::zc_pktmbuf_free_bulk(self.mbufs[from..].as_mut_ptr(), (to - from) as u32)
            };
        }
    }

    /// Counters specific to this backend.
    fn extra(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("mbuf_alloc_failures", self.alloc_failures),
            ("unsent_freed", self.unsent),
            ("partial_tx_bursts", self.partial_bursts),
        ]
    }
}

impl Sender for DpdkSender {
    fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Builds up to `min(count, batch)` frames and hands them to the device;
    /// fewer is back-pressure (no free mbuf or a full transmit ring).
    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize> {
        let mut burst = SendBurst::new(count, usize::from(self.cfg.batch));
        let got = self.alloc(burst.limit());
        let spec = self.cfg.frame;
        let mut built = 0;
        while built < got {
            let m = self.mbufs[built];
            // SAFETY: m was just allocated (data_len 0) and is ours until tx_burst.
            let room = unsafe { mbuf::room(m) };
            let payload = spec.payload_mut(room);
            let limit = self.max_payload.min(payload.len());
            let Some(len) = burst.fill(fill, built, &mut payload[..limit]) else {
                break;
            };
            let frame_len = match spec.finish(room, len) {
                Ok(l) => l,
                Err(e) => {
                    burst.fail(Error::config(format!(
                        "slot {built}: cannot build the frame: {e}"
                    )));
                    break;
                }
            };
            // SAFETY: frame_len <= tailroom (finish checked it against `room`),
            // so append cannot fail; it sets data_len and pkt_len.
            let tail = unsafe { sys::zc_pktmbuf_append(m, frame_len as u16) };
            if tail.is_null() {
                burst.fail(Error::config(format!(
                    "slot {built}: a {frame_len}-byte frame does not fit its mbuf"
                )));
                break;
            }
            // len <= max_payload < 64 KiB.
            self.lens[built] = len as u16;
            built += 1;
        }
        // Slots after a refused one (and the refused one) are never sent.
        self.free(built, got);

        let mut sent = 0usize;
        let mut stalls = 0u32;
        while sent < built {
            let left = (built - sent) as u16;
            // SAFETY: mbufs[sent..built] are complete frames we own; the device
            // takes ownership of the first `k` it returns.
            let k = unsafe {
                sys::zc_eth_tx_burst(
                    self.port.id,
                    self.queue,
                    self.mbufs[sent..].as_mut_ptr(),
                    left,
                )
            };
            sent += usize::from(k);
            if k == 0 {
                stalls += 1;
                if stalls > self.cfg.stalled_retries {
                    break;
                }
            } else if sent < built {
                self.partial_bursts += 1;
            }
        }
        if sent < built {
            self.unsent += (built - sent) as u64;
            self.free(sent, built);
        }
        for &len in &self.lens[..sent] {
            burst.sent(usize::from(len));
        }
        burst.finish(&mut self.stats)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> TxStats {
        let mut s = self.stats.clone();
        s.extra = self.extra();
        s
    }
}

impl Drop for DpdkSender {
    fn drop(&mut self) {
        self.port.release(false, self.queue);
    }
}

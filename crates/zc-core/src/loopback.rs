//! An in-memory backend implementing [`Receiver`] and [`Sender`], for testing
//! everything above the backends without a network.
//!
//! It behaves like a real one where it matters: a fixed pool of buffers
//! allocated up front, payloads written in place into pool buffers, buffers
//! returned to the pool only when the receiver's burst is dropped, back-pressure
//! when the pool is empty, and [`ErrorKind::PeerGone`] once the other end is gone.

use crate::backend::{
    DataPath, Datagram, Mode, Receiver, RxBurst, RxStats, SendBurst, Sender, TxStats,
};
use crate::error::{Error, ErrorKind, Result};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Loopback settings.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackConfig {
    /// Buffers in the pool (datagrams in flight at most).
    pub slots: usize,
    /// Bytes per buffer.
    pub max_payload: usize,
    /// Datagrams per receive burst.
    pub batch: usize,
    /// Address reported as the datagrams' source.
    pub src: SocketAddr,
    /// Address reported as their destination.
    pub dst: SocketAddr,
}

impl Default for LoopbackConfig {
    fn default() -> Self {
        Self {
            slots: 1024,
            max_payload: 2048,
            batch: 32,
            src: SocketAddr::from(([198, 18, 0, 1], 40000)),
            dst: SocketAddr::from(([198, 18, 0, 2], 9000)),
        }
    }
}

struct Queue {
    free: Vec<Vec<u8>>,
    ready: VecDeque<(Vec<u8>, usize)>,
    sender_alive: bool,
    receiver_alive: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere while holding the lock leaves the queue consistent
        // (every operation on it is a single push or pop), so keep going.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Creates a connected sender/receiver pair with `cfg.slots` buffers.
pub fn channel(cfg: LoopbackConfig) -> Result<(LoopbackSender, LoopbackReceiver)> {
    if cfg.slots == 0 || cfg.batch == 0 || cfg.max_payload == 0 {
        return Err(Error::config(format!(
            "loopback needs slots, batch and max_payload above 0 (got {}, {}, {})",
            cfg.slots, cfg.batch, cfg.max_payload
        )));
    }
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            free: (0..cfg.slots).map(|_| vec![0u8; cfg.max_payload]).collect(),
            ready: VecDeque::with_capacity(cfg.slots),
            sender_alive: true,
            receiver_alive: true,
        }),
        ready: Condvar::new(),
    });
    let tx = LoopbackSender {
        shared: Arc::clone(&shared),
        staging: Vec::with_capacity(cfg.slots),
        max_payload: cfg.max_payload,
        // The sender's batch is the pool: one call may send every free buffer.
        mode: Mode::new("loopback", DataPath::InProcess, cfg.slots),
        stats: TxStats::default(),
    };
    let rx = LoopbackReceiver {
        shared,
        held: Vec::with_capacity(cfg.batch),
        cfg,
        mode: Mode::new("loopback", DataPath::InProcess, cfg.batch),
        stats: RxStats::default(),
    };
    Ok((tx, rx))
}

/// Buffers in the pool that are neither queued nor held by a burst
/// (every buffer is free again once both ends are idle).
pub fn free_buffers(rx: &LoopbackReceiver) -> usize {
    rx.shared.lock().free.len()
}

/// The sending half of [`channel`].
pub struct LoopbackSender {
    shared: Arc<Shared>,
    staging: Vec<(Vec<u8>, usize)>,
    max_payload: usize,
    mode: Mode,
    stats: TxStats,
}

impl Sender for LoopbackSender {
    fn max_payload(&self) -> usize {
        self.max_payload
    }

    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize> {
        let mut burst = SendBurst::new(count, self.mode.batch);
        {
            let mut q = self.shared.lock();
            if !q.receiver_alive {
                return Err(Error::new(
                    ErrorKind::PeerGone,
                    "loopback receiver was dropped",
                ));
            }
            let take = burst.limit().min(q.free.len());
            let from = q.free.len() - take;
            self.staging.extend(q.free.drain(from..).map(|b| (b, 0)));
        }
        // Fill outside the lock so the receiver is never blocked by the caller.
        let mut good = 0;
        for (i, (buf, len)) in self.staging.iter_mut().enumerate() {
            match burst.fill(fill, i, buf) {
                Some(n) => *len = n,
                None => break,
            }
            good += 1;
        }
        {
            let mut q = self.shared.lock();
            for (buf, len) in self.staging.drain(..good) {
                burst.sent(len);
                q.ready.push_back((buf, len));
            }
            q.free.extend(self.staging.drain(..).map(|(b, _)| b));
        }
        self.shared.ready.notify_one();
        burst.finish(&mut self.stats)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> TxStats {
        self.stats.clone()
    }
}

impl Drop for LoopbackSender {
    fn drop(&mut self) {
        self.shared.lock().sender_alive = false;
        self.shared.ready.notify_all();
    }
}

/// The receiving half of [`channel`].
pub struct LoopbackReceiver {
    shared: Arc<Shared>,
    held: Vec<(Vec<u8>, usize)>,
    cfg: LoopbackConfig,
    mode: Mode,
    stats: RxStats,
}

/// A burst of the loopback receiver; returns its buffers to the pool on drop.
pub struct LoopbackBurst<'a> {
    rx: &'a mut LoopbackReceiver,
}

impl RxBurst for LoopbackBurst<'_> {
    fn len(&self) -> usize {
        self.rx.held.len()
    }

    fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let (buf, len) = self.rx.held.get(i)?;
        Some(Datagram {
            payload: buf.get(..*len)?,
            src: self.rx.cfg.src,
            dst: self.rx.cfg.dst,
            rx_timestamp: None,
        })
    }
}

impl Drop for LoopbackBurst<'_> {
    fn drop(&mut self) {
        let mut q = self.rx.shared.lock();
        q.free.extend(self.rx.held.drain(..).map(|(b, _)| b));
    }
}

impl Receiver for LoopbackReceiver {
    type Burst<'a> = LoopbackBurst<'a>;

    fn recv_burst(&mut self, timeout: Option<Duration>) -> Result<LoopbackBurst<'_>> {
        let deadline = timeout.and_then(crate::sys::deadline_after);
        let mut q = self.shared.lock();
        while q.ready.is_empty() {
            if !q.sender_alive {
                return Err(Error::new(
                    ErrorKind::PeerGone,
                    "loopback sender was dropped",
                ));
            }
            q = match deadline {
                None => self.shared.ready.wait(q).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.shared
                        .ready
                        .wait_timeout(q, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        let n = q.ready.len().min(self.cfg.batch);
        self.held.extend(q.ready.drain(..n));
        drop(q);
        if n > 0 {
            self.stats.bursts += 1;
            self.stats.datagrams += n as u64;
            self.stats.bytes += self.held.iter().map(|(_, l)| *l as u64).sum::<u64>();
        }
        Ok(LoopbackBurst { rx: self })
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> RxStats {
        self.stats.clone()
    }
}

impl Drop for LoopbackReceiver {
    fn drop(&mut self) {
        self.shared.lock().receiver_alive = false;
    }
}

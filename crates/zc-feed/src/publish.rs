//! Publishing a generated session on one line through any zc [`Sender`]:
//! open-loop pacing, MoldUDP64 packets, deliberate drops, end of session,
//! and (optionally) the re-request server answering on the side.
//!
//! Open loop: message `k` is stamped with its intended send time
//! `start + k / rate` (CLOCK_REALTIME, as nanoseconds since midnight, the
//! ITCH convention), whether or not the sender kept up, so latency measured
//! from it includes any wait to be sent. A packet goes out when its last
//! message is due.

use crate::gen::{GenConfig, Packer, SessionGen};
use crate::itch;
use crate::mold::{self, Session};
use crate::recovery::RecoveryServer;
use crate::sink::DAY_NS;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zc_core::sys::realtime_ns;
use zc_core::{Error, Result, Sender};

/// Which packets a line deliberately does not send (the same rule on every
/// run, so a test knows exactly what each line lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropPlan {
    /// Drop packet `i` when `i % every == offset`.
    pub every: Option<u64>,
    /// See `every`.
    pub offset: u64,
    /// Also drop this many packets per million, chosen by `seed` (0: none).
    pub per_million: u32,
    /// Seed of the random drops.
    pub seed: u64,
}

impl DropPlan {
    /// Whether packet `i` (0-based, data packets only) is dropped.
    pub fn drops(&self, i: u64) -> bool {
        if self.every.is_some_and(|k| k > 0 && i % k == self.offset) {
            return true;
        }
        if self.per_million == 0 {
            return false;
        }
        // A hash of (seed, i): the same choice whatever the order of asking.
        let mut x = i ^ self.seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        x % 1_000_000 < u64::from(self.per_million)
    }
}

/// Publisher settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishConfig {
    /// MoldUDP64 session.
    pub session: Session,
    /// The session's content.
    pub gen: GenConfig,
    /// Messages before the closing ones (the session then ends with 3 more).
    pub messages: u64,
    /// Messages per second; `None`: as fast as the sender takes them.
    pub rate: Option<f64>,
    /// Largest UDP payload (the MTU less 28 bytes of IPv4 and UDP headers).
    pub max_payload: usize,
    /// Messages per packet at most (1 for the lowest latency, more to batch).
    pub messages_per_packet: u16,
    /// Packets this line leaves out.
    pub drops: DropPlan,
    /// After the last message: send end-of-session packets and keep
    /// answering requests this long.
    pub linger: Duration,
}

impl PublishConfig {
    /// `messages` messages of `gen` at `rate`, 1472-byte payloads, 16 per packet.
    pub fn new(session: Session, gen: GenConfig, messages: u64, rate: Option<f64>) -> Self {
        Self {
            session,
            gen,
            messages,
            rate,
            max_payload: 1472,
            messages_per_packet: 16,
            drops: DropPlan::default(),
            linger: Duration::from_millis(200),
        }
    }
}

/// What a publisher did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PublishReport {
    /// Messages in the session (the closing ones included).
    pub messages: u64,
    /// Data packets cut (sent or dropped).
    pub packets: u64,
    /// Data packets dropped by the plan.
    pub dropped_packets: u64,
    /// Messages in the dropped packets.
    pub dropped_messages: u64,
    /// Send calls that took fewer packets than offered.
    pub backpressure: u64,
    /// From the first intended send time to the last message sent.
    pub elapsed: Duration,
    /// True when `stop` ended the run early.
    pub stopped: bool,
}

/// Packets waiting for one send call.
struct Batch {
    bytes: Vec<u8>,
    lens: Vec<usize>,
    slot: usize,
}

const BATCH: usize = 32;

impl Batch {
    fn push(&mut self, p: &[u8]) {
        let i = self.lens.len();
        self.bytes[i * self.slot..i * self.slot + p.len()].copy_from_slice(p);
        self.lens.push(p.len());
    }

    fn full(&self) -> bool {
        self.lens.len() == BATCH
    }

    fn send(
        &mut self,
        tx: &mut dyn Sender,
        report: &mut PublishReport,
        stop: &AtomicBool,
    ) -> Result<()> {
        let mut done = 0;
        while done < self.lens.len() {
            let (bytes, lens, slot) = (&self.bytes, &self.lens, self.slot);
            let n = tx.send_burst(lens.len() - done, &mut |i, buf| {
                let k = done + i;
                let len = lens[k];
                buf[..len].copy_from_slice(&bytes[k * slot..k * slot + len]);
                len
            })?;
            if n < self.lens.len() - done {
                report.backpressure += 1;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::yield_now();
            }
            done += n;
        }
        self.lens.clear();
        Ok(())
    }
}

/// Publishes the session through `tx`, recording every message into
/// `server` (which answers requests meanwhile) when given.
pub fn publish(
    tx: &mut dyn Sender,
    cfg: &PublishConfig,
    mut server: Option<&mut RecoveryServer>,
    stop: &AtomicBool,
) -> Result<PublishReport> {
    if cfg.max_payload > tx.max_payload() {
        return Err(Error::config(format!(
            "packets of {} bytes do not fit this sender's {}-byte slots",
            cfg.max_payload,
            tx.max_payload()
        )));
    }
    if cfg.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(Error::config(
            "rate must be a positive number of messages per second",
        ));
    }
    let mut gen = SessionGen::new(cfg.gen);
    let mut packer = Packer::new(cfg.session, cfg.max_payload, cfg.messages_per_packet);
    let mut batch = Batch {
        bytes: vec![0; BATCH * cfg.max_payload],
        lens: Vec::with_capacity(BATCH),
        slot: cfg.max_payload,
    };
    let mut report = PublishReport::default();
    let ns_per_msg = cfg.rate.map(|r| 1e9 / r);
    let start_mono = Instant::now();
    let start_real = realtime_ns();
    let mut msg = [0u8; itch::MAX_MESSAGE_LEN];
    let total = cfg.messages + 3;
    let mut closing: Option<[itch::Fields; 3]> = None;
    let emit_into = |p: &[u8], batch: &mut Batch, report: &mut PublishReport| {
        let i = report.packets;
        report.packets += 1;
        if cfg.drops.drops(i) {
            report.dropped_packets += 1;
            if let Ok(pk) = mold::Packet::new_checked(p) {
                report.dropped_messages += u64::from(pk.message_count());
            }
            return;
        }
        batch.push(p);
    };
    for k in 0..total {
        if stop.load(Ordering::Relaxed) {
            report.stopped = true;
            break;
        }
        let ts = match ns_per_msg {
            Some(ns) => {
                let due = Duration::from_nanos((k as f64 * ns) as u64);
                if start_mono.elapsed() < due {
                    // Nothing else is due: send what is packed, serve, then wait.
                    batch.send(tx, &mut report, stop)?;
                    if let Some(s) = server.as_deref_mut() {
                        s.poll()?;
                    }
                    wait_until(start_mono, due, stop);
                }
                (start_real + due.as_nanos() as u64) % DAY_NS
            }
            None => realtime_ns() % DAY_NS,
        };
        let f = if k < cfg.messages {
            gen.next(ts)
        } else {
            let mut f = closing.get_or_insert_with(|| gen.close())[(k - cfg.messages) as usize];
            f.header_mut().timestamp = ts;
            f
        };
        let Some(n) = f.encode(&mut msg) else {
            continue;
        };
        let seq = packer.next_seq();
        if let Some(s) = server.as_deref_mut() {
            s.record(seq, &msg[..n]);
        }
        packer.push(&msg[..n], &mut |_, p| emit_into(p, &mut batch, &mut report));
        report.messages += 1;
        if batch.full() {
            batch.send(tx, &mut report, stop)?;
        }
    }
    packer.flush(&mut |_, p| emit_into(p, &mut batch, &mut report));
    batch.send(tx, &mut report, stop)?;
    report.elapsed = start_mono.elapsed();
    // End of session, repeated for a while as the specification asks, with
    // the server still answering.
    let next = packer.next_seq();
    let mut ctl = [0u8; mold::HEADER_LEN];
    let linger_end = Instant::now() + cfg.linger;
    let mut ends = 0;
    loop {
        if ends < 5 {
            mold::write_control(&mut ctl, cfg.session, next, true);
            batch.push(&ctl);
            batch.send(tx, &mut report, stop)?;
            ends += 1;
        }
        if let Some(s) = server.as_deref_mut() {
            s.poll()?;
        }
        if Instant::now() >= linger_end || stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(report)
}

/// Sleeps for long waits, spins for the last stretch.
fn wait_until(start: Instant, due: Duration, stop: &AtomicBool) {
    loop {
        let now = start.elapsed();
        if now >= due || stop.load(Ordering::Relaxed) {
            return;
        }
        let left = due - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep(left - Duration::from_micros(100));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The packets a publisher with `cfg` cuts, as (first sequence number,
/// message count, dropped by the plan), without sending anything: what a
/// test expects each line to carry.
pub fn plan_packets(cfg: &PublishConfig) -> Vec<(u64, u16, bool)> {
    let mut gen = SessionGen::new(cfg.gen);
    let mut packer = Packer::new(cfg.session, cfg.max_payload, cfg.messages_per_packet);
    let mut out = Vec::new();
    let mut msg = [0u8; itch::MAX_MESSAGE_LEN];
    let mut i = 0u64;
    let mut emit = |first: u64, p: &[u8]| {
        let count = mold::Packet::new_checked(p).map_or(0, |p| p.message_count());
        out.push((first, count, cfg.drops.drops(i)));
        i += 1;
    };
    for _ in 0..cfg.messages {
        let n = gen.next(0).encode(&mut msg).unwrap_or(0);
        packer.push(&msg[..n], &mut emit);
    }
    for f in gen.close() {
        let n = f.encode(&mut msg).unwrap_or(0);
        packer.push(&msg[..n], &mut emit);
    }
    packer.flush(&mut emit);
    out
}

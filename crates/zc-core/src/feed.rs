//! The test-feed generator: which sequence numbers to send (with deliberate
//! gaps and duplicates, so loss monitoring can be checked exactly) and an
//! open-loop sender that paces them at a fixed rate through any [`Sender`].
//!
//! Open loop: message `k` has an intended send time `start + k / rate`, and
//! that time is what its timestamp carries, whether or not the sender kept up.
//! A receiver measuring latency from it therefore includes any time the
//! message waited to be sent (no coordinated omission).

use crate::backend::Sender;
use crate::error::{Error, Result};
use crate::md::{MarketData, MESSAGE_LEN};
use crate::sys::monotonic_ns;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which sequence numbers a feed sends, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPlan {
    /// Sequence numbers `first .. first + count` (wrapping) are considered.
    pub count: u64,
    /// The first sequence number.
    pub first: u32,
    /// Skip every `k`-th number (`k ≥ 2`): numbers at index `i` with
    /// `i % k == k - 1` are never sent, except the last one, so every skip is a
    /// gap the receiver can see.
    pub skip_every: Option<u64>,
    /// Send every `d`-th number twice (`d ≥ 1`): index `i % d == 0`, unless skipped.
    pub duplicate_every: Option<u64>,
    /// Swap neighbours every `r` numbers (`r ≥ 2`): index `i` with
    /// `i % r == r - 2` is sent after `i + 1` (with its copies), when `i > 0`
    /// and none of `i - 1`, `i`, `i + 1` is skipped (so the swap's gap is its
    /// own). Each swap is one gap, filled by one late arrival.
    pub reorder_every: Option<u64>,
}

/// What a receiver that lost nothing must count for a [`FeedPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expected {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct numbers received.
    pub received: u64,
    /// Second copies.
    pub duplicates: u64,
    /// Gaps (each skip and each swap is its own gap).
    pub gaps: u64,
    /// Late arrivals (one per swap).
    pub late: u64,
    /// Numbers never sent.
    pub missing: u64,
}

impl FeedPlan {
    /// `count` numbers from 0, no gaps, no duplicates.
    pub fn new(count: u64) -> Self {
        Self {
            count,
            first: 0,
            skip_every: None,
            duplicate_every: None,
            reorder_every: None,
        }
    }

    /// Refuses settings that make gaps invisible or meaningless.
    pub fn validate(&self) -> Result<()> {
        if self.skip_every.is_some_and(|k| k < 2) {
            return Err(Error::config(
                "skip-every must be 2 or more (1 would skip everything)",
            ));
        }
        if self.duplicate_every == Some(0) {
            return Err(Error::config("duplicate-every must be 1 or more"));
        }
        if self.reorder_every.is_some_and(|r| r < 2) {
            return Err(Error::config("reorder-every must be 2 or more"));
        }
        Ok(())
    }

    fn skipped(&self, i: u64) -> bool {
        self.skip_every
            .is_some_and(|k| i % k == k - 1 && i + 1 != self.count)
    }

    fn duplicated(&self, i: u64) -> bool {
        self.duplicate_every.is_some_and(|d| i % d == 0)
    }

    /// Index `i` is sent after `i + 1`.
    fn swapped(&self, i: u64) -> bool {
        self.reorder_every.is_some_and(|r| {
            i % r == r - 2
                && i > 0
                && i + 1 < self.count
                && !self.skipped(i - 1)
                && !self.skipped(i)
                && !self.skipped(i + 1)
        })
    }

    fn copies(&self, i: u64) -> impl Iterator<Item = u32> {
        let seq = self.first.wrapping_add(i as u32);
        let n = if self.skipped(i) {
            0
        } else if self.duplicated(i) {
            2
        } else {
            1
        };
        std::iter::repeat_n(seq, n)
    }

    /// The sequence numbers in send order.
    pub fn sends(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.count).flat_map(move |i| {
            // A swapped pair goes out at its first index, i + 1 then i; at the
            // second index there is nothing left to send.
            let order: [Option<u64>; 2] = if self.swapped(i) {
                [Some(i + 1), Some(i)]
            } else if i > 0 && self.swapped(i - 1) {
                [None, None]
            } else {
                [Some(i), None]
            };
            order.into_iter().flatten().flat_map(|j| self.copies(j))
        })
    }

    /// The counts a lossless receiver reports.
    pub fn expected(&self) -> Expected {
        let skipped = match self.skip_every {
            Some(k) if self.count > 0 => {
                let s = self.count / k;
                // The last number is never skipped.
                if self.count % k == 0 {
                    s - 1
                } else {
                    s
                }
            }
            _ => 0,
        };
        let count_where =
            |f: &dyn Fn(u64) -> bool| (0..self.count).filter(|&i| f(i)).count() as u64;
        let duplicates = match self.duplicate_every {
            Some(_) => count_where(&|i| self.duplicated(i) && !self.skipped(i)),
            None => 0,
        };
        let swaps = match self.reorder_every {
            Some(_) => count_where(&|i| self.swapped(i)),
            None => 0,
        };
        Expected {
            sent: self.count - skipped + duplicates,
            received: self.count - skipped,
            duplicates,
            gaps: skipped + swaps,
            late: swaps,
            missing: skipped,
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenConfig {
    /// What to send.
    pub plan: FeedPlan,
    /// Messages per second; `None` sends as fast as the sender takes them
    /// (timestamps are then the actual send time).
    pub rate: Option<f64>,
    /// Symbols cycled through (`seq % symbols`).
    pub symbols: u32,
    /// Payload bytes per datagram (≥ 32; the rest is zero padding).
    pub payload_len: usize,
    /// Datagrams per send call.
    pub batch: usize,
}

/// What a generator run did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GenReport {
    /// Datagrams handed to the sender.
    pub sent: u64,
    /// From the first intended send time to the end of the last send call.
    pub elapsed: Duration,
    /// Back-pressure the sender counted during the run (its
    /// [`crate::TxStats::backpressure`]; one meaning for every backend).
    pub backpressure: u64,
    /// True when the run ended early because `stop` was set.
    pub stopped: bool,
}

/// Upper bound on datagrams per send call.
pub const MAX_GEN_BATCH: usize = 1024;

impl GenConfig {
    /// Refuses a plan, payload size (for a sender whose slots hold
    /// `max_payload` bytes) or rate that cannot be sent.
    pub fn validate(&self, max_payload: usize) -> Result<()> {
        self.plan.validate()?;
        if self.payload_len < MESSAGE_LEN || self.payload_len > max_payload {
            return Err(Error::config(format!(
                "payload size {} must be {MESSAGE_LEN} to {max_payload} bytes for this sender",
                self.payload_len
            )));
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(Error::config(
                "rate must be a positive number of messages per second",
            ));
        }
        Ok(())
    }
}

/// Sends the plan through `tx`, paced at `cfg.rate`, until done or `stop` is set.
pub fn generate(tx: &mut dyn Sender, cfg: &GenConfig, stop: &AtomicBool) -> Result<GenReport> {
    cfg.validate(tx.max_payload())?;
    let backpressure_before = tx.stats().backpressure;
    let batch = cfg.batch.clamp(1, MAX_GEN_BATCH);
    let symbols = cfg.symbols.max(1);
    let ns_per_msg = cfg.rate.map(|r| 1e9 / r);
    let mut seqs = cfg.plan.sends();
    let mut pending = [0u32; MAX_GEN_BATCH];
    let mut pending_len = 0usize;
    let mut report = GenReport::default();
    let start = monotonic_ns();
    let intended = |k: u64| start + ns_per_msg.map_or(0, |ns| (k as f64 * ns) as u64);
    loop {
        if stop.load(Ordering::Relaxed) {
            report.stopped = true;
            break;
        }
        while pending_len < batch {
            match seqs.next() {
                Some(s) => {
                    pending[pending_len] = s;
                    pending_len += 1;
                }
                None => break,
            }
        }
        if pending_len == 0 {
            break;
        }
        let now = monotonic_ns();
        let n = match ns_per_msg {
            None => pending_len,
            Some(ns) => {
                let due = ((now - start) as f64 / ns) as u64 + 1;
                let n = due.saturating_sub(report.sent).min(pending_len as u64) as usize;
                if n == 0 {
                    wait_until(intended(report.sent), stop);
                    continue;
                }
                n
            }
        };
        let first_k = report.sent;
        let payload_len = cfg.payload_len;
        let sent = tx.send_burst(n, &mut |i, buf| {
            let seq = pending[i];
            let ts = if ns_per_msg.is_some() {
                intended(first_k + i as u64)
            } else {
                now
            };
            let msg = message(seq, symbols, ts);
            let out = &mut buf[..payload_len];
            // `out` is at least MESSAGE_LEN bytes (checked above).
            let _ = msg.encode(out);
            out[MESSAGE_LEN..].fill(0);
            payload_len
        })?;
        pending.copy_within(sent..pending_len, 0);
        pending_len -= sent;
        report.sent += sent as u64;
    }
    report.elapsed = Duration::from_nanos(monotonic_ns() - start);
    report.backpressure = tx.stats().backpressure - backpressure_before;
    Ok(report)
}

/// The message the generator sends for `seq`: symbol `seq % symbols` (at
/// least 1 symbol), a price and volume derived from `seq`, and `timestamp_ns`.
/// Every generator (this one, and those that stage messages ahead of sending
/// them) builds its messages here, so receivers see one feed.
#[inline]
pub fn message(seq: u32, symbols: u32, timestamp_ns: u64) -> MarketData {
    MarketData {
        seq,
        symbol: seq % symbols.max(1),
        price: 100.0 + f64::from(seq % 1000) * 0.01,
        volume: i64::from(seq % 100) + 1,
        timestamp_ns,
    }
}

/// Waits until CLOCK_MONOTONIC reaches `t_ns` (or `stop` is set): sleeps
/// for long waits, spins for the last stretch (a sleep overshoots by ~50 µs).
/// The pacing of every open-loop sender (this generator, capture replay).
pub fn wait_until(t_ns: u64, stop: &AtomicBool) {
    loop {
        let now = monotonic_ns();
        if now >= t_ns || stop.load(Ordering::Relaxed) {
            return;
        }
        let left = t_ns - now;
        if left > 200_000 {
            std::thread::sleep(Duration::from_nanos(left - 100_000));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_counts_match_the_sends() {
        for count in [0u64, 1, 2, 9, 10, 11, 100, 1001] {
            for skip in [None, Some(2), Some(3), Some(10)] {
                for (dup, reorder) in [
                    (None, None),
                    (Some(1), Some(2)),
                    (Some(4), Some(3)),
                    (Some(7), None),
                    (None, Some(5)),
                ] {
                    let p = FeedPlan {
                        count,
                        first: u32::MAX - 3,
                        skip_every: skip,
                        duplicate_every: dup,
                        reorder_every: reorder,
                    };
                    let sends: Vec<u32> = p.sends().collect();
                    let e = p.expected();
                    assert_eq!(sends.len() as u64, e.sent, "{p:?}");
                    let mut t = crate::seq::SeqTracker::new(crate::seq::TrackerConfig {
                        max_gaps: 1 << 16,
                        ..Default::default()
                    });
                    for s in &sends {
                        t.observe(t.widen_u32(*s));
                    }
                    let st = t.stats();
                    assert_eq!(st.received, e.received, "{p:?}");
                    assert_eq!(st.duplicates, e.duplicates, "{p:?}");
                    assert_eq!(st.gaps, e.gaps, "{p:?}");
                    assert_eq!(st.late, e.late, "{p:?}");
                    assert_eq!(st.missing, e.missing, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn nonsense_plans_are_refused() {
        assert!(FeedPlan {
            skip_every: Some(1),
            ..FeedPlan::new(5)
        }
        .validate()
        .is_err());
        assert!(FeedPlan {
            duplicate_every: Some(0),
            ..FeedPlan::new(5)
        }
        .validate()
        .is_err());
        assert!(FeedPlan {
            reorder_every: Some(1),
            ..FeedPlan::new(5)
        }
        .validate()
        .is_err());
    }
}

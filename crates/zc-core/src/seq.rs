//! Sequence tracking for one feed session: gaps, duplicates, late arrivals,
//! and a guard against jumps no real stream makes. Every receive path uses
//! this one tracker: `zc recv`'s handler, and zc-feed's MoldUDP64 lines and
//! arbitration.
//!
//! Numbers are plain u64 (MoldUDP64 refuses a packet whose range would
//! overflow, so nothing wraps). Protocols with narrower, wrapping numbers
//! (zc's 32-byte message carries a u32) widen them first with
//! [`widen_serial`]: serial-number arithmetic (RFC 1982) places a u32 at the
//! u64 nearest a reference, so a feed may wrap from `u32::MAX` to 0 without a
//! false gap, and a number 2³¹ or more behind the reference is read as ahead.
//!
//! Memory is bounded: at most `max_gaps` open missing ranges. When one more
//! opens, the oldest is forgotten: its numbers stay counted as missing (and
//! in [`SeqStats::forgotten`]); a later arrival of one of them counts as a
//! duplicate.
//!
//! **Resynchronisation.** A run that starts more than `resync_window` numbers
//! ahead of the next expected one is *suspect*: one spoofed or corrupt
//! datagram must not open a gap of billions of numbers and discard the real
//! stream. The suspect run is remembered as a candidate and nothing of it is
//! accepted. Later runs that continue it exactly, `resync_confirm` messages
//! in all (not counting the candidate's own), confirm it: the tracker then
//! jumps (counted in [`SeqStats::resyncs`], the numbers jumped over in
//! [`SeqStats::resync_skipped`], never as missing), and the candidate's
//! numbers, which were not accepted, become an ordinary gap that another line
//! or recovery can fill. New data at the old position first drops the
//! candidate ([`SeqStats::resync_rejected`]).

use std::collections::VecDeque;

/// Places a wrapping u32 sequence number on the u64 line, at the value
/// nearest `reference` (serial-number arithmetic: up to 2³¹−1 ahead or 2³¹
/// behind). With no reference yet, the number is placed 2³² up the line so
/// that numbers before it stay representable.
#[inline]
pub fn widen_serial(reference: Option<u64>, seq: u32) -> u64 {
    match reference {
        None => (1u64 << 32) | u64::from(seq),
        Some(r) => {
            // Reinterpreting the wrapped difference as i32 is the point:
            // it is the signed serial distance from the reference.
            let delta = seq.wrapping_sub(r as u32) as i32;
            r.wrapping_add_signed(i64::from(delta))
        }
    }
}

/// What the tracker concluded about one sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next expected number, or the first one seen.
    InOrder,
    /// Ahead of the next expected number: `missing` numbers were skipped.
    Gap {
        /// How many numbers the jump skipped.
        missing: u64,
    },
    /// A number that was missing and has now arrived.
    Late,
    /// Already seen, or older than anything the tracker remembers.
    Duplicate,
    /// Part of a suspect jump beyond the resynchronisation window: not accepted.
    Suspect,
}

impl SeqOutcome {
    /// True for a number seen for the first time (in order, after a gap, or late).
    pub fn is_new(self) -> bool {
        matches!(
            self,
            SeqOutcome::InOrder | SeqOutcome::Gap { .. } | SeqOutcome::Late
        )
    }
}

/// The verdict on a run (one datagram's numbers) before its numbers are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the window: record the numbers.
    Accept,
    /// Beyond the window and not (yet) confirmed: ignore the run.
    Suspect,
    /// This run confirmed a jump: the tracker moved; record the numbers.
    Resync {
        /// The next expected number before the jump.
        from: u64,
        /// The first number of the stream jumped to.
        to: u64,
    },
}

/// Counters of a [`SeqTracker`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SeqStats {
    /// Distinct numbers accepted (in order, after a gap, or late).
    pub received: u64,
    /// Arrivals of a number already accepted (or forgotten).
    pub duplicates: u64,
    /// Accepted numbers that filled a gap.
    pub late: u64,
    /// Jumps ahead that opened a gap.
    pub gaps: u64,
    /// Numbers skipped and not (yet) arrived, forgotten ones included.
    pub missing: u64,
    /// Of `missing`, numbers whose range was dropped (memory bound, or given up).
    pub forgotten: u64,
    /// Numbers of suspect runs (beyond the window, not accepted when seen).
    pub suspect: u64,
    /// Confirmed jumps beyond the window.
    pub resyncs: u64,
    /// Numbers jumped over by resynchronisations (not counted missing).
    pub resync_skipped: u64,
    /// Suspect candidates dropped because the old stream went on.
    pub resync_rejected: u64,
}

/// Missing numbers `first .. first + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingRange {
    /// First missing number.
    pub first: u64,
    /// How many (≥ 1).
    pub len: u64,
}

impl MissingRange {
    /// One past the last missing number.
    pub fn end(&self) -> u64 {
        self.first + self.len
    }
}

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Open gaps remembered (at least 1).
    pub max_gaps: usize,
    /// A run starting more than this many numbers ahead is suspect; `None`
    /// accepts any jump.
    pub resync_window: Option<u64>,
    /// Messages in later runs continuing a suspect run that confirm it (≥ 1).
    pub resync_confirm: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            max_gaps: 1024,
            resync_window: Some(1 << 20),
            resync_confirm: 3,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    first: u64,
    next: u64,
    confirmed: u64,
}

/// Tracks one session's sequence numbers in bounded memory.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    cfg: TrackerConfig,
    next: Option<u64>,
    /// Open gaps, ascending and disjoint, all below `next`.
    gaps: VecDeque<MissingRange>,
    candidate: Option<Candidate>,
    /// The last range evicted to make room for a newer gap, until taken.
    evicted: Option<MissingRange>,
    stats: SeqStats,
}

impl Default for SeqTracker {
    fn default() -> Self {
        Self::new(TrackerConfig::default())
    }
}

impl SeqTracker {
    /// A tracker; `max_gaps` and `resync_confirm` are raised to 1 when 0.
    pub fn new(cfg: TrackerConfig) -> Self {
        let cfg = TrackerConfig {
            max_gaps: cfg.max_gaps.max(1),
            resync_confirm: cfg.resync_confirm.max(1),
            ..cfg
        };
        Self {
            cfg,
            next: None,
            gaps: VecDeque::with_capacity(cfg.max_gaps),
            candidate: None,
            evicted: None,
            stats: SeqStats::default(),
        }
    }

    /// The range the last call forgot to make room for a newer gap (the
    /// tracker was holding `max_gaps` open ranges), once: a call evicts at
    /// most one range, so a caller that must report every number it will
    /// never deliver takes it after each call. An untaken range is replaced
    /// by the next one evicted (both stay counted in [`SeqStats::forgotten`]).
    pub fn take_evicted(&mut self) -> Option<MissingRange> {
        self.evicted.take()
    }

    fn evict(&mut self, range: MissingRange) {
        self.stats.forgotten += range.len;
        self.evicted = Some(range);
    }

    /// The counters so far.
    pub fn stats(&self) -> SeqStats {
        self.stats
    }

    /// The next expected number, once anything was seen (or [`Self::start_at`]).
    pub fn next_expected(&self) -> Option<u64> {
        self.next
    }

    /// Expects `seq` first: anything above it is a gap (a receiver that must
    /// see the session from its first message says `start_at(1)`).
    pub fn start_at(&mut self, seq: u64) {
        self.next = Some(seq);
    }

    /// The open gaps, oldest first.
    pub fn missing_ranges(&self) -> impl Iterator<Item = MissingRange> + '_ {
        self.gaps.iter().copied()
    }

    /// The oldest open gap.
    pub fn first_gap(&self) -> Option<MissingRange> {
        self.gaps.front().copied()
    }

    /// Open gaps.
    pub fn gap_count(&self) -> usize {
        self.gaps.len()
    }

    /// The `i`-th open gap, oldest first.
    pub fn gap_at(&self, i: usize) -> Option<MissingRange> {
        self.gaps.get(i).copied()
    }

    /// True when `seq` was accepted (or given up): below the next expected
    /// number and in no open gap.
    pub fn seen(&self, seq: u64) -> bool {
        if self.next.is_none_or(|n| seq >= n) {
            return false;
        }
        let i = self.gaps.partition_point(|g| g.end() <= seq);
        self.gaps.get(i).is_none_or(|g| seq < g.first)
    }

    /// Forgets everything, as for a new session.
    pub fn reset(&mut self) {
        self.next = None;
        self.gaps.clear();
        self.candidate = None;
        self.stats = SeqStats::default();
    }

    /// Widens a wrapping u32 number next to the next expected one (see
    /// [`widen_serial`]). Suspect runs do not move the reference, so a
    /// spoofed far number cannot shift how later real numbers are read.
    #[inline]
    pub fn widen_u32(&self, seq: u32) -> u64 {
        widen_serial(self.next, seq)
    }

    /// Accounts for one arrival of `seq` (a run of one).
    #[inline]
    pub fn observe(&mut self, seq: u64) -> SeqOutcome {
        // The common case first: the next number, no candidate pending.
        if self.next == Some(seq) && self.candidate.is_none() {
            self.next = Some(seq.saturating_add(1));
            self.stats.received += 1;
            return SeqOutcome::InOrder;
        }
        match self.admit(seq, 1) {
            Admit::Suspect => SeqOutcome::Suspect,
            _ => self.record(seq),
        }
    }

    /// Accounts for one datagram's run `first .. first + count`, calling `f`
    /// with each number's outcome. A count of 0 (a heartbeat) announces that
    /// everything below `first` was sent.
    #[inline]
    pub fn observe_run(&mut self, first: u64, count: u64, mut f: impl FnMut(u64, SeqOutcome)) {
        if self.admit(first, count) == Admit::Suspect {
            for s in first..first.saturating_add(count) {
                f(s, SeqOutcome::Suspect);
            }
            return;
        }
        if count == 0 {
            self.advance_to(first);
        }
        for s in first..first.saturating_add(count) {
            f(s, self.record(s));
        }
    }

    /// The resynchronisation gate for a run, before its numbers are recorded.
    pub fn admit(&mut self, first: u64, count: u64) -> Admit {
        let (Some(next), Some(window)) = (self.next, self.cfg.resync_window) else {
            return Admit::Accept;
        };
        if first <= next || first - next <= window {
            // The stream goes on where it was: a pending candidate was not real.
            if first >= next && self.candidate.take().is_some() {
                self.stats.resync_rejected += 1;
            }
            return Admit::Accept;
        }
        let end = first.saturating_add(count);
        match self.candidate.as_mut() {
            Some(c) if c.next == first => {
                c.confirmed += count;
                c.next = end;
                if c.confirmed < self.cfg.resync_confirm {
                    self.stats.suspect += count;
                    return Admit::Suspect;
                }
                let c = *c;
                self.candidate = None;
                self.stats.resyncs += 1;
                self.stats.resync_skipped += c.first - next;
                self.next = Some(c.first);
                // The candidate's numbers and earlier confirmations were not
                // accepted: they are a gap now, like any other.
                self.advance_to(first);
                Admit::Resync {
                    from: next,
                    to: c.first,
                }
            }
            other => {
                if other.is_some() {
                    self.stats.resync_rejected += 1;
                }
                self.candidate = Some(Candidate {
                    first,
                    next: end,
                    confirmed: 0,
                });
                self.stats.suspect += count;
                Admit::Suspect
            }
        }
    }

    /// Accounts for `seq` without the resynchronisation gate (after [`Self::admit`]).
    #[inline]
    pub fn record(&mut self, seq: u64) -> SeqOutcome {
        let next = match self.next {
            Some(n) => n,
            None => {
                self.next = Some(seq.saturating_add(1));
                self.stats.received += 1;
                return SeqOutcome::InOrder;
            }
        };
        if seq == next {
            self.next = Some(seq.saturating_add(1));
            self.stats.received += 1;
            SeqOutcome::InOrder
        } else if seq > next {
            let missing = seq - next;
            self.open_gap(MissingRange {
                first: next,
                len: missing,
            });
            self.next = Some(seq.saturating_add(1));
            self.stats.received += 1;
            SeqOutcome::Gap { missing }
        } else {
            self.behind(seq)
        }
    }

    /// Everything below `end` was sent: opens a gap up to it when ahead.
    pub fn advance_to(&mut self, end: u64) -> Option<MissingRange> {
        let Some(next) = self.next else {
            self.next = Some(end);
            return None;
        };
        if end <= next {
            return None;
        }
        let gap = MissingRange {
            first: next,
            len: end - next,
        };
        self.open_gap(gap);
        self.next = Some(end);
        Some(gap)
    }

    /// Gives up on every missing number below `end`: they stay counted as
    /// missing and are added to `forgotten`. Returns how many were given up.
    pub fn forget_below(&mut self, end: u64) -> u64 {
        let mut n = 0;
        while let Some(g) = self.gaps.front_mut() {
            if g.first >= end {
                break;
            }
            if g.end() <= end {
                n += g.len;
                self.gaps.pop_front();
            } else {
                n += end - g.first;
                g.len = g.end() - end;
                g.first = end;
                break;
            }
        }
        self.stats.forgotten += n;
        n
    }

    fn open_gap(&mut self, range: MissingRange) {
        if self.gaps.len() == self.cfg.max_gaps {
            if let Some(old) = self.gaps.pop_front() {
                self.evict(old);
            }
        }
        self.gaps.push_back(range);
        self.stats.gaps += 1;
        self.stats.missing += range.len;
    }

    fn behind(&mut self, seq: u64) -> SeqOutcome {
        let idx = self.gaps.partition_point(|g| g.end() <= seq);
        let Some(gap) = self.gaps.get(idx).copied() else {
            self.stats.duplicates += 1;
            return SeqOutcome::Duplicate;
        };
        if seq < gap.first {
            self.stats.duplicates += 1;
            return SeqOutcome::Duplicate;
        }
        let before = MissingRange {
            first: gap.first,
            len: seq - gap.first,
        };
        let after = MissingRange {
            first: seq + 1,
            len: gap.end() - seq - 1,
        };
        match (before.len, after.len) {
            (0, 0) => {
                self.gaps.remove(idx);
            }
            (0, _) => self.gaps[idx] = after,
            (_, 0) => self.gaps[idx] = before,
            _ if self.gaps.len() < self.cfg.max_gaps => {
                self.gaps[idx] = after;
                self.gaps.insert(idx, before);
            }
            _ if idx == 0 => {
                // Full, and `before` is the oldest range: forget it.
                self.gaps[0] = after;
                self.evict(before);
            }
            _ => {
                if let Some(old) = self.gaps.pop_front() {
                    self.evict(old);
                }
                self.gaps[idx - 1] = after;
                self.gaps.insert(idx - 1, before);
            }
        }
        self.stats.missing -= 1;
        self.stats.received += 1;
        self.stats.late += 1;
        SeqOutcome::Late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_window() -> SeqTracker {
        SeqTracker::new(TrackerConfig {
            resync_window: None,
            ..Default::default()
        })
    }

    #[test]
    fn gaps_duplicates_and_late_arrivals() {
        let mut t = no_window();
        assert_eq!(t.observe(1), SeqOutcome::InOrder);
        assert_eq!(t.observe(2), SeqOutcome::InOrder);
        assert_eq!(t.observe(6), SeqOutcome::Gap { missing: 3 });
        assert_eq!(t.observe(4), SeqOutcome::Late);
        assert_eq!(t.observe(4), SeqOutcome::Duplicate);
        assert_eq!(t.observe(2), SeqOutcome::Duplicate);
        let gaps: Vec<_> = t.missing_ranges().collect();
        assert_eq!(
            gaps,
            vec![
                MissingRange { first: 3, len: 1 },
                MissingRange { first: 5, len: 1 }
            ]
        );
        let s = t.stats();
        assert_eq!(
            (s.received, s.duplicates, s.late, s.gaps, s.missing),
            (4, 2, 1, 1, 2)
        );
        assert_eq!(t.forget_below(5), 1);
        assert_eq!(t.observe(3), SeqOutcome::Duplicate, "given up: too late");
        assert_eq!(t.stats().forgotten, 1);
    }

    #[test]
    fn a_heartbeat_reveals_a_tail_gap() {
        let mut t = no_window();
        t.observe_run(1, 3, |_, _| {});
        t.observe_run(10, 0, |_, _| {});
        assert_eq!(t.first_gap(), Some(MissingRange { first: 4, len: 6 }));
        assert_eq!(t.next_expected(), Some(10));
    }

    #[test]
    fn one_spoofed_datagram_does_not_discard_the_stream() {
        let mut t = SeqTracker::new(TrackerConfig {
            resync_window: Some(1000),
            resync_confirm: 3,
            max_gaps: 16,
        });
        t.observe_run(1, 10, |_, o| assert!(o.is_new()));
        // A datagram claiming a far sequence, with many consecutive messages.
        t.observe_run(1_000_000_000, 50, |_, o| assert_eq!(o, SeqOutcome::Suspect));
        // The real stream goes on, unharmed.
        t.observe_run(11, 5, |_, o| assert_eq!(o, SeqOutcome::InOrder));
        let s = t.stats();
        assert_eq!(
            (s.suspect, s.resync_rejected, s.resyncs, s.gaps),
            (50, 1, 0, 0)
        );
        assert_eq!(t.next_expected(), Some(16));
    }

    #[test]
    fn a_real_jump_resynchronises_after_confirmation() {
        let mut t = SeqTracker::new(TrackerConfig {
            resync_window: Some(1000),
            resync_confirm: 3,
            max_gaps: 16,
        });
        t.observe_run(1, 10, |_, _| {});
        t.observe_run(5000, 2, |_, o| assert_eq!(o, SeqOutcome::Suspect));
        t.observe_run(5002, 2, |_, o| assert_eq!(o, SeqOutcome::Suspect));
        // Two confirmed so far; this run brings it to 4 ≥ 3.
        let mut outcomes = Vec::new();
        t.observe_run(5004, 2, |s, o| outcomes.push((s, o)));
        assert_eq!(
            outcomes,
            vec![(5004, SeqOutcome::InOrder), (5005, SeqOutcome::InOrder)]
        );
        let s = t.stats();
        assert_eq!((s.resyncs, s.resync_skipped, s.suspect), (1, 5000 - 11, 4));
        // The unaccepted candidate numbers are an ordinary gap.
        assert_eq!(
            t.first_gap(),
            Some(MissingRange {
                first: 5000,
                len: 4
            })
        );
        assert_eq!(t.observe(5001), SeqOutcome::Late);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut t = SeqTracker::new(TrackerConfig {
            max_gaps: 2,
            resync_window: None,
            resync_confirm: 1,
        });
        for s in (0..100).step_by(2) {
            t.observe(s);
        }
        assert_eq!(t.missing_ranges().count(), 2);
        let st = t.stats();
        assert_eq!(st.missing, 49);
        assert_eq!(st.forgotten, 47);
        assert_eq!(t.observe(1), SeqOutcome::Duplicate);
        assert_eq!(t.observe(97), SeqOutcome::Late);
    }
}

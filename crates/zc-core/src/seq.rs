//! Per-feed sequence tracking: gaps, duplicates, late arrivals, u32 wrap-around.
//!
//! Sequence numbers are compared with serial-number arithmetic (RFC 1982): a
//! number less than 2³¹ ahead of the next expected one is "ahead", anything else
//! is "behind". So a feed may wrap from `u32::MAX` to 0 without a false gap.
//!
//! Memory is bounded: the tracker keeps at most `max_gaps` open missing ranges,
//! and forgets a range once it lies 2³¹ or more numbers back (serial
//! arithmetic cannot reach it any more).
//! When one more gap opens, the oldest range is forgotten: its numbers stay
//! counted as missing (in [`SeqStats::missing`] and [`SeqStats::forgotten`]),
//! and a later arrival of one of them can no longer be told from a duplicate,
//! so it is counted as one.

use std::collections::VecDeque;

/// What the tracker concluded about one sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next expected number, or the first one seen.
    InOrder,
    /// Ahead of the next expected number: `missing` numbers were skipped.
    Gap {
        /// How many numbers the jump skipped.
        missing: u32,
    },
    /// A number that was missing and has now arrived.
    Late,
    /// Already seen (or older than anything the tracker remembers).
    Duplicate,
}

/// Counters of a [`SequenceTracker`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SeqStats {
    /// Distinct sequence numbers accepted (in order, after a gap, or late).
    pub received: u64,
    /// Arrivals of a number already accepted.
    pub duplicates: u64,
    /// Accepted numbers that filled a gap.
    pub late: u64,
    /// Jumps ahead that opened a gap.
    pub gaps: u64,
    /// Numbers skipped and not (yet) arrived, including forgotten ones.
    pub missing: u64,
    /// Of `missing`, the numbers in ranges dropped to keep memory bounded.
    pub forgotten: u64,
}

/// A range of missing sequence numbers: `first ..= first + len - 1` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingRange {
    /// First missing number.
    pub first: u32,
    /// How many numbers from `first` are missing (≥ 1).
    pub len: u32,
}

impl MissingRange {
    /// Last missing number (wrapping).
    pub fn last(&self) -> u32 {
        self.first.wrapping_add(self.len - 1)
    }
}

/// Tracks one feed's sequence numbers in bounded memory.
#[derive(Debug, Clone)]
pub struct SequenceTracker {
    /// Next expected number; `None` until the first message.
    next: Option<u32>,
    /// Open gaps, oldest first; all lie behind `next`.
    gaps: VecDeque<MissingRange>,
    max_gaps: usize,
    stats: SeqStats,
}

/// Default bound on remembered gaps.
pub const DEFAULT_MAX_GAPS: usize = 1024;

impl Default for SequenceTracker {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_GAPS)
    }
}

impl SequenceTracker {
    /// A tracker that remembers at most `max_gaps` open gaps (at least 1).
    pub fn new(max_gaps: usize) -> Self {
        let max_gaps = max_gaps.max(1);
        Self {
            next: None,
            gaps: VecDeque::with_capacity(max_gaps),
            max_gaps,
            stats: SeqStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> SeqStats {
        self.stats
    }

    /// The next expected sequence number, once one message was seen.
    pub fn next_expected(&self) -> Option<u32> {
        self.next
    }

    /// The open gaps, oldest first.
    pub fn missing_ranges(&self) -> impl Iterator<Item = MissingRange> + '_ {
        self.gaps.iter().copied()
    }

    /// Forgets everything, as for a new feed session.
    pub fn reset(&mut self) {
        self.next = None;
        self.gaps.clear();
        self.stats = SeqStats::default();
    }

    /// Accounts for one arrival of `seq`.
    #[inline]
    pub fn observe(&mut self, seq: u32) -> SeqOutcome {
        let Some(next) = self.next else {
            self.next = Some(seq.wrapping_add(1));
            self.stats.received += 1;
            return SeqOutcome::InOrder;
        };
        let ahead = seq.wrapping_sub(next);
        if ahead == 0 {
            self.next = Some(seq.wrapping_add(1));
            self.stats.received += 1;
            SeqOutcome::InOrder
        } else if ahead < 1 << 31 {
            self.open_gap(MissingRange {
                first: next,
                len: ahead,
            });
            self.next = Some(seq.wrapping_add(1));
            self.forget_stale(seq.wrapping_add(1));
            self.stats.received += 1;
            self.stats.gaps += 1;
            self.stats.missing += u64::from(ahead);
            SeqOutcome::Gap { missing: ahead }
        } else {
            self.behind(seq, next)
        }
    }

    fn open_gap(&mut self, range: MissingRange) {
        if self.gaps.len() == self.max_gaps {
            if let Some(old) = self.gaps.pop_front() {
                self.stats.forgotten += u64::from(old.len);
            }
        }
        self.gaps.push_back(range);
    }

    /// Forgets gaps that started 2³¹ or more numbers before `next`: serial
    /// arithmetic can no longer place their numbers behind `next`, and past
    /// 2³² they would alias live ones.
    fn forget_stale(&mut self, next: u32) {
        while let Some(front) = self.gaps.front() {
            if next.wrapping_sub(front.first) < 1 << 31 {
                break;
            }
            self.stats.forgotten += u64::from(front.len);
            self.gaps.pop_front();
        }
    }

    /// A number behind `next`: late if it is in an open gap, else a duplicate.
    fn behind(&mut self, seq: u32, next: u32) -> SeqOutcome {
        self.forget_stale(next);
        // Distance back from `next` decreases along the deque (oldest gap is
        // furthest back), so the gap that could hold `seq` is found by bisection.
        let back = next.wrapping_sub(seq);
        let idx = self
            .gaps
            .partition_point(|g| next.wrapping_sub(g.last()) > back);
        let Some(gap) = self.gaps.get(idx).copied() else {
            self.stats.duplicates += 1;
            return SeqOutcome::Duplicate;
        };
        let offset = seq.wrapping_sub(gap.first);
        if offset >= gap.len {
            self.stats.duplicates += 1;
            return SeqOutcome::Duplicate;
        }
        let before = MissingRange {
            first: gap.first,
            len: offset,
        };
        let after = MissingRange {
            first: seq.wrapping_add(1),
            len: gap.len - offset - 1,
        };
        match (before.len, after.len) {
            (0, 0) => {
                self.gaps.remove(idx);
            }
            (0, _) => self.gaps[idx] = after,
            (_, 0) => self.gaps[idx] = before,
            _ if self.gaps.len() < self.max_gaps => {
                self.gaps[idx] = after;
                self.gaps.insert(idx, before);
            }
            _ if idx == 0 => {
                // Full, and `before` is the oldest range: forget it.
                self.gaps[0] = after;
                self.stats.forgotten += u64::from(before.len);
            }
            _ => {
                // Full: forget the oldest range to make room for the split.
                if let Some(old) = self.gaps.pop_front() {
                    self.stats.forgotten += u64::from(old.len);
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

//! The bookkeeping of [`super::ZeroCopySender`] without the socket: which
//! buffers the kernel may still read, the notification ids each one's sends
//! took, and the completion ranges the error queue reports. Kept apart so the
//! fuzz target in `fuzz/` (feature `fuzzing`) drives it with arbitrary ranges.

use super::Completion;
use std::collections::VecDeque;

struct InFlight<B> {
    buf: B,
    /// First notification id of this buffer's sends.
    first: u32,
    /// Ids its sends took (0 when every piece went by plain copy).
    ids: u32,
    /// Ids reported complete so far: the bits set in `reported`.
    done: u32,
    /// Which of its ids were reported, bit `i` for id `first + i`: a range
    /// repeated by mistake must not count as the ids not yet reported.
    reported: IdSet,
    copied: bool,
}

/// A set of small offsets: the first 64 inline (a buffer takes one id per
/// send, and rarely needs more than a few sends), the rest on the heap.
#[derive(Default)]
struct IdSet {
    low: u64,
    high: Vec<u64>,
}

impl IdSet {
    /// Adds `i`; false when it was already there.
    fn insert(&mut self, i: u32) -> bool {
        let (word, bit) = match i.checked_sub(64) {
            None => (&mut self.low, i),
            Some(j) => {
                let w = (j / 64) as usize;
                if self.high.len() <= w {
                    self.high.resize(w + 1, 0);
                }
                (&mut self.high[w], j % 64)
            }
        };
        let fresh = *word & 1 << bit == 0;
        *word |= 1 << bit;
        fresh
    }
}

/// Buffers lent to the kernel, in id order; completed ones are handed back
/// from the front.
pub struct Ledger<B> {
    next_id: u32,
    in_flight: VecDeque<InFlight<B>>,
}

/// What one completion range did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Ids of buffers still held that the range completed.
    pub matched: u64,
    /// Ids in the range that were already complete, or never issued.
    pub unexpected: u64,
}

impl<B> Ledger<B> {
    /// An empty ledger whose next send takes id `next_id` (0 on a fresh socket).
    pub fn new(next_id: u32) -> Self {
        Self {
            next_id,
            in_flight: VecDeque::new(),
        }
    }

    /// Takes `buf` before its first send; it has no ids yet.
    pub fn push(&mut self, buf: B) {
        self.in_flight.push_back(InFlight {
            buf,
            first: self.next_id,
            ids: 0,
            done: 0,
            reported: IdSet::default(),
            copied: false,
        });
    }

    /// The newest buffer's send took the next id.
    pub fn took_id(&mut self) {
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(f) = self.in_flight.back_mut() {
            f.ids += 1;
        }
    }

    /// Gives back the newest buffer if none of its sends took an id (so the
    /// kernel never saw it).
    pub fn unsend_last(&mut self) -> Option<B> {
        if self.in_flight.back().is_some_and(|f| f.ids == 0) {
            return self.in_flight.pop_back().map(|f| f.buf);
        }
        None
    }

    /// Marks ids `lo..=hi` (wrapping) complete on the buffers they belong to.
    pub fn complete(&mut self, lo: u32, hi: u32, copied: bool) -> Applied {
        let n = hi.wrapping_sub(lo) as u64 + 1;
        // Work in ids relative to the oldest buffer still held, so wrapping
        // at 2^32 needs no special case: all held ids lie in [0, issued).
        let base = self.in_flight.front().map_or(self.next_id, |f| f.first);
        let issued = self.next_id.wrapping_sub(base) as u64;
        // The range covers relative ids start..start + n modulo 2^32: the part
        // inside [0, issued), and the part that wraps past 2^32 back into it
        // (a range that starts before base, among ids already handed back).
        let start = lo.wrapping_sub(base) as u64;
        let end = start + n;
        let mut matched = self.apply(start, end.min(issued), copied);
        if end > 1 << 32 {
            matched += self.apply(0, (end - (1 << 32)).min(issued), copied);
        }
        Applied {
            matched,
            unexpected: n - matched,
        }
    }

    /// Marks relative ids `start..end` complete; returns how many were not
    /// already.
    fn apply(&mut self, start: u64, end: u64, copied: bool) -> u64 {
        if start >= end {
            return 0;
        }
        let base = self.in_flight.front().map_or(self.next_id, |f| f.first);
        let mut matched = 0u64;
        let first_idx = self
            .in_flight
            .partition_point(|f| f.first.wrapping_sub(base) as u64 + f.ids as u64 <= start);
        for f in self.in_flight.range_mut(first_idx..) {
            let f_start = f.first.wrapping_sub(base) as u64;
            if f_start >= end {
                break;
            }
            let f_end = f_start + f.ids as u64;
            let mut counted = 0u32;
            for id in start.max(f_start)..end.min(f_end) {
                counted += u32::from(f.reported.insert((id - f_start) as u32));
            }
            f.done += counted;
            f.copied |= copied && counted > 0;
            matched += u64::from(counted);
        }
        matched
    }

    /// The oldest buffer, if the kernel is done with it.
    pub fn pop_completed(&mut self) -> Option<Completion<B>> {
        if self.in_flight.front().is_some_and(|f| f.done == f.ids) {
            let f = self.in_flight.pop_front()?;
            return Some(Completion {
                buf: f.buf,
                copied: f.copied,
            });
        }
        None
    }

    /// Buffers held (pending, or completed and not popped).
    pub fn held(&self) -> usize {
        self.in_flight.len()
    }

    /// Empties the ledger, leaking (never freeing) every buffer the kernel may
    /// still read; returns how many were leaked.
    pub fn leak_pending(&mut self) -> usize {
        let mut leaked = 0;
        for f in self.in_flight.drain(..) {
            if f.done < f.ids {
                leaked += 1;
                std::mem::forget(f.buf);
            }
        }
        leaked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with(next_id: u32, spans: &[u32]) -> Ledger<Vec<u8>> {
        let mut l = Ledger::new(next_id);
        for (i, &ids) in spans.iter().enumerate() {
            l.push(vec![i as u8]);
            for _ in 0..ids {
                l.took_id();
            }
        }
        l
    }

    fn popped(l: &mut Ledger<Vec<u8>>) -> Vec<u8> {
        std::iter::from_fn(|| l.pop_completed())
            .map(|c| c.buf[0])
            .collect()
    }

    #[test]
    fn ranges_across_the_u32_wrap_complete_the_right_buffers() {
        // Buffers of 2, 1, 0, 3 ids starting 2 below the wrap.
        let mut l = ledger_with(u32::MAX - 1, &[2, 1, 0, 3]);
        assert_eq!(l.complete(u32::MAX - 1, u32::MAX, false).matched, 2); // buffer 0
        assert_eq!(popped(&mut l), vec![0]);
        l.complete(2, 3, true); // most of buffer 3, out of order
        assert_eq!(
            popped(&mut l),
            Vec::<u8>::new(),
            "buffer 1 is still pending"
        );
        assert_eq!(
            l.complete(0, 1, false),
            Applied {
                matched: 2,
                unexpected: 0
            }
        ); // buffer 1 and the first id of buffer 3
        let c: Vec<_> = std::iter::from_fn(|| l.pop_completed())
            .map(|c| (c.buf[0], c.copied))
            .collect();
        assert_eq!(c, vec![(1, false), (2, false), (3, true)]);
        assert_eq!(l.held(), 0);
    }

    #[test]
    fn repeated_or_unknown_ids_are_counted_not_applied() {
        let mut l = ledger_with(10, &[1, 1]);
        assert_eq!(
            l.complete(10, 10, false),
            Applied {
                matched: 1,
                unexpected: 0
            }
        );
        assert_eq!(
            l.complete(10, 10, false),
            Applied {
                matched: 0,
                unexpected: 1
            }
        ); // again
        assert_eq!(
            l.complete(12, 20, false),
            Applied {
                matched: 0,
                unexpected: 9
            }
        ); // never issued
        assert_eq!(popped(&mut l), vec![0]);
        assert!(
            l.pop_completed().is_none(),
            "buffer 1 must not come back early"
        );
        l.complete(11, 11, false);
        assert_eq!(popped(&mut l), vec![1]);
        assert_eq!(l.leak_pending(), 0);
    }

    #[test]
    fn a_repeated_id_does_not_complete_another_of_the_same_buffer() {
        // Found by the zerocopy_completions fuzz target: with a count of ids
        // per buffer, id 0 reported twice returned a 2-id buffer while id 1
        // was still with the kernel.
        let mut l = ledger_with(0, &[2]);
        assert_eq!(
            l.complete(0, 0, false),
            Applied {
                matched: 1,
                unexpected: 0
            }
        );
        assert_eq!(
            l.complete(0, 0, false),
            Applied {
                matched: 0,
                unexpected: 1
            }
        );
        assert!(l.pop_completed().is_none(), "id 1 is still pending");
        assert_eq!(
            l.complete(0, 1, false),
            Applied {
                matched: 1,
                unexpected: 1
            }
        );
        assert_eq!(popped(&mut l), vec![0]);
    }

    #[test]
    fn a_range_reaching_back_before_the_oldest_buffer_still_applies() {
        // Found by the zerocopy_completions fuzz target: a range starting
        // among ids already handed back was dropped whole, live ids included.
        let mut l = ledger_with(10, &[1, 2]);
        l.complete(10, 10, false);
        assert_eq!(popped(&mut l), vec![0]);
        assert_eq!(
            l.complete(5, 12, false),
            Applied {
                matched: 2,
                unexpected: 6
            }
        );
        assert_eq!(popped(&mut l), vec![1]);
        // The same across the u32 wrap.
        let mut l = ledger_with(u32::MAX, &[1, 2]);
        l.complete(u32::MAX, u32::MAX, false);
        assert_eq!(popped(&mut l), vec![0]);
        assert_eq!(
            l.complete(u32::MAX - 3, 1, false),
            Applied {
                matched: 2,
                unexpected: 4
            }
        );
        assert_eq!(popped(&mut l), vec![1]);
    }

    #[test]
    fn buffers_with_more_than_64_ids_track_each_one() {
        let mut l = ledger_with(5, &[200]);
        assert_eq!(l.complete(5 + 150, 5 + 199, false).matched, 50);
        assert_eq!(
            l.complete(5 + 150, 5 + 160, false),
            Applied {
                matched: 0,
                unexpected: 11
            }
        );
        assert_eq!(l.complete(5, 5 + 149, false).matched, 150);
        assert_eq!(popped(&mut l), vec![0]);
    }
}

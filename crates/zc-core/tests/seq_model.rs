//! The sequence tracker fed zc's wrapping u32 numbers (widened with
//! serial-number arithmetic) against a simple model: random drops,
//! duplicates and reorders, starting near u32::MAX so the stream wraps; and
//! the resynchronisation guard against a spoofed far number.

use proptest::prelude::*;
use std::collections::BTreeSet;
use zc_core::seq::{widen_serial, SeqOutcome, SeqTracker, TrackerConfig};

/// A tracker remembering `max_gaps` gaps with the default guard.
fn tracker(max_gaps: usize) -> SeqTracker {
    SeqTracker::new(TrackerConfig {
        max_gaps,
        ..TrackerConfig::default()
    })
}

/// Observes a u32 number the way the handler does.
fn observe(t: &mut SeqTracker, seq: u32) -> SeqOutcome {
    let wide = t.widen_u32(seq);
    t.observe(wide)
}

/// Builds an arrival order from `n` numbers starting at `start`: the first
/// number always arrives first (it anchors the tracker), then drops,
/// duplicates and swaps of neighbours.
fn arrivals(start: u32, n: u32, drop: &[bool], dup: &[bool], swap: &[bool]) -> Vec<u32> {
    let mut v = vec![start];
    for i in 1..n {
        let k = i as usize;
        if drop[k % drop.len()] {
            continue;
        }
        v.push(start.wrapping_add(i));
        if dup[k % dup.len()] {
            v.push(start.wrapping_add(i));
        }
    }
    for i in 1..v.len().saturating_sub(1) {
        if swap[i % swap.len()] {
            v.swap(i, i + 1);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_the_model(
        offset in 0u32..400,
        n in 1u32..600,
        drop in proptest::collection::vec(proptest::bool::weighted(0.1), 1..64),
        dup in proptest::collection::vec(proptest::bool::weighted(0.05), 1..64),
        swap in proptest::collection::vec(proptest::bool::weighted(0.1), 1..64),
    ) {
        let start = u32::MAX - offset;
        let order = arrivals(start, n, &drop, &dup, &swap);

        // Model: unwrapped positions relative to `start`.
        let pos = |s: u32| u64::from(s.wrapping_sub(start));
        let mut seen = BTreeSet::new();
        let mut max_seen = 0u64;
        let mut late = 0u64;
        let mut gaps = 0u64;
        let mut t = tracker(4096);
        let base = widen_serial(None, start);
        for &s in &order {
            let p = pos(s);
            let fresh = seen.insert(p);
            let expect = if !fresh {
                SeqOutcome::Duplicate
            } else if seen.len() == 1 || p == max_seen + 1 {
                SeqOutcome::InOrder
            } else if p > max_seen {
                SeqOutcome::Gap { missing: p - max_seen - 1 }
            } else {
                SeqOutcome::Late
            };
            match expect {
                SeqOutcome::Late => late += 1,
                SeqOutcome::Gap { .. } => gaps += 1,
                _ => {}
            }
            if fresh {
                max_seen = max_seen.max(p);
            }
            prop_assert_eq!(observe(&mut t, s), expect, "arrival of {} (pos {})", s, p);
        }
        let st = t.stats();
        prop_assert_eq!(st.received, seen.len() as u64);
        prop_assert_eq!(st.duplicates, order.len() as u64 - seen.len() as u64);
        prop_assert_eq!(st.late, late);
        prop_assert_eq!(st.gaps, gaps);
        prop_assert_eq!(st.missing, max_seen + 1 - seen.len() as u64);
        prop_assert_eq!(st.forgotten, 0);
        // The open ranges are exactly the numbers never seen.
        let mut open = Vec::new();
        for r in t.missing_ranges() {
            for k in 0..r.len {
                open.push(r.first + k - base);
            }
        }
        let expected: Vec<u64> = (0..=max_seen).filter(|p| !seen.contains(p)).collect();
        open.sort_unstable();
        prop_assert_eq!(open, expected);
        prop_assert_eq!(t.next_expected(), Some(base + max_seen + 1));
    }

    #[test]
    fn memory_stays_bounded_and_counts_stay_consistent(
        steps in proptest::collection::vec((1u32..5, any::<bool>()), 1..2000),
        max_gaps in 1usize..16,
    ) {
        let mut t = tracker(max_gaps);
        let mut s = u32::MAX - 1000;
        let mut arrivals = 0u64;
        observe(&mut t, s);
        arrivals += 1;
        for (jump, back) in steps {
            s = s.wrapping_add(jump);
            observe(&mut t, s);
            arrivals += 1;
            if back {
                // Fill something behind: may be late, duplicate or forgotten.
                observe(&mut t, s.wrapping_sub(jump / 2 + 1));
                arrivals += 1;
            }
            prop_assert!(t.missing_ranges().count() <= max_gaps);
        }
        let st = t.stats();
        prop_assert_eq!(st.received + st.duplicates, arrivals);
        let open: u64 = t.missing_ranges().map(|r| r.len).sum();
        prop_assert_eq!(st.missing, open + st.forgotten);
    }
}

#[test]
fn wraps_without_a_false_gap() {
    let mut t = SeqTracker::default();
    for s in [u32::MAX - 1, u32::MAX, 0, 1] {
        assert_eq!(observe(&mut t, s), SeqOutcome::InOrder);
    }
    assert_eq!(t.stats().gaps, 0);
}

#[test]
fn a_gap_across_the_wrap_is_exact() {
    let mut t = SeqTracker::default();
    observe(&mut t, u32::MAX - 2);
    assert_eq!(observe(&mut t, 2), SeqOutcome::Gap { missing: 4 });
    let r: Vec<_> = t.missing_ranges().collect();
    let base = widen_serial(None, u32::MAX - 2);
    assert_eq!((r[0].first, r[0].end()), (base + 1, base + 5));
    assert_eq!(observe(&mut t, 0), SeqOutcome::Late);
    assert_eq!(t.missing_ranges().count(), 2);
    assert_eq!(observe(&mut t, 0), SeqOutcome::Duplicate);
}

#[test]
fn the_oldest_gap_is_forgotten_when_memory_is_full() {
    let mut t = tracker(2);
    observe(&mut t, 0);
    observe(&mut t, 2); // gap {1}
    observe(&mut t, 4); // gap {3}
    observe(&mut t, 6); // gap {5}: {1} is forgotten
    let st = t.stats();
    assert_eq!((st.missing, st.forgotten), (3, 1));
    assert_eq!(
        observe(&mut t, 1),
        SeqOutcome::Duplicate,
        "a forgotten number cannot be told from a duplicate"
    );
    assert_eq!(observe(&mut t, 3), SeqOutcome::Late);
}

/// Issue 14 item 7: one datagram numbered next + 0x7fff_ffff used to open a
/// gap of 2³¹−1 that was forgotten at once, after which every real message
/// read as a duplicate.
#[test]
fn one_spoofed_far_number_does_not_freeze_the_stream() {
    let mut t = SeqTracker::default();
    for s in u32::MAX - 4..=u32::MAX {
        observe(&mut t, s);
    }
    // Next expected is 0 (after the wrap); the spoof is 2³¹−1 ahead.
    assert_eq!(observe(&mut t, 0x7fff_ffff), SeqOutcome::Suspect);
    for s in 0..100u32 {
        assert_eq!(observe(&mut t, s), SeqOutcome::InOrder, "{s}");
    }
    let st = t.stats();
    assert_eq!(
        (st.received, st.suspect, st.resync_rejected, st.resyncs),
        (105, 1, 1, 0)
    );
    assert_eq!((st.gaps, st.missing, st.duplicates), (0, 0, 0));
    // A number 2³¹ or more ahead reads as behind: an old duplicate.
    assert_eq!(observe(&mut t, 100 + (1 << 31)), SeqOutcome::Duplicate);
    assert_eq!(observe(&mut t, 100), SeqOutcome::InOrder);
}

#[test]
fn a_real_jump_across_the_wrap_is_accepted_once_confirmed() {
    let mut t = tracker(64);
    observe(&mut t, u32::MAX - 10);
    let jump = (u32::MAX - 9).wrapping_add(1 << 21); // beyond the 2²⁰ window
    for k in 0..3 {
        assert_eq!(observe(&mut t, jump + k), SeqOutcome::Suspect);
    }
    // The third continuation confirms (resync_confirm 3).
    assert_eq!(observe(&mut t, jump + 3), SeqOutcome::InOrder);
    assert_eq!(observe(&mut t, jump + 4), SeqOutcome::InOrder);
    let st = t.stats();
    assert_eq!((st.resyncs, st.resync_skipped), (1, 1 << 21));
    // The suspect numbers were never applied: they are a gap to fill.
    assert_eq!(observe(&mut t, jump + 1), SeqOutcome::Late);
}

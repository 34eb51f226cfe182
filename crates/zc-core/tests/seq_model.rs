//! The sequence tracker against a simple model: random drops, duplicates and
//! reorders, starting near u32::MAX so the stream wraps.

use proptest::prelude::*;
use std::collections::BTreeSet;
use zc_core::seq::{SeqOutcome, SequenceTracker};

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
        let mut t = SequenceTracker::new(4096);
        for &s in &order {
            let p = pos(s);
            let fresh = seen.insert(p);
            let expect = if !fresh {
                SeqOutcome::Duplicate
            } else if seen.len() == 1 || p == max_seen + 1 {
                SeqOutcome::InOrder
            } else if p > max_seen {
                SeqOutcome::Gap { missing: (p - max_seen - 1) as u32 }
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
            prop_assert_eq!(t.observe(s), expect, "arrival of {} (pos {})", s, p);
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
                open.push(pos(r.first.wrapping_add(k)));
            }
        }
        let expected: Vec<u64> = (0..=max_seen).filter(|p| !seen.contains(p)).collect();
        open.sort_unstable();
        prop_assert_eq!(open, expected);
        prop_assert_eq!(t.next_expected(), Some(start.wrapping_add(max_seen as u32 + 1)));
    }

    #[test]
    fn memory_stays_bounded_and_counts_stay_consistent(
        steps in proptest::collection::vec((1u32..5, any::<bool>()), 1..2000),
        max_gaps in 1usize..16,
    ) {
        let mut t = SequenceTracker::new(max_gaps);
        let mut s = u32::MAX - 1000;
        let mut arrivals = 0u64;
        t.observe(s);
        arrivals += 1;
        for (jump, back) in steps {
            s = s.wrapping_add(jump);
            t.observe(s);
            arrivals += 1;
            if back {
                // Fill something behind: may be late, duplicate or forgotten.
                t.observe(s.wrapping_sub(jump / 2 + 1));
                arrivals += 1;
            }
            prop_assert!(t.missing_ranges().count() <= max_gaps);
        }
        let st = t.stats();
        prop_assert_eq!(st.received + st.duplicates, arrivals);
        let open: u64 = t.missing_ranges().map(|r| u64::from(r.len)).sum();
        prop_assert_eq!(st.missing, open + st.forgotten);
    }
}

#[test]
fn wraps_without_a_false_gap() {
    let mut t = SequenceTracker::default();
    for s in [u32::MAX - 1, u32::MAX, 0, 1] {
        assert_eq!(t.observe(s), SeqOutcome::InOrder);
    }
    assert_eq!(t.stats().gaps, 0);
}

#[test]
fn a_gap_across_the_wrap_is_exact() {
    let mut t = SequenceTracker::default();
    t.observe(u32::MAX - 2);
    assert_eq!(t.observe(2), SeqOutcome::Gap { missing: 4 });
    let r: Vec<_> = t.missing_ranges().collect();
    assert_eq!((r[0].first, r[0].last()), (u32::MAX - 1, 1));
    assert_eq!(t.observe(0), SeqOutcome::Late);
    assert_eq!(t.missing_ranges().count(), 2);
    assert_eq!(t.observe(0), SeqOutcome::Duplicate);
}

#[test]
fn the_oldest_gap_is_forgotten_when_memory_is_full() {
    let mut t = SequenceTracker::new(2);
    t.observe(0);
    t.observe(2); // gap {1}
    t.observe(4); // gap {3}
    t.observe(6); // gap {5}: {1} is forgotten
    let st = t.stats();
    assert_eq!((st.missing, st.forgotten), (3, 1));
    assert_eq!(
        t.observe(1),
        SeqOutcome::Duplicate,
        "a forgotten number cannot be told from a duplicate"
    );
    assert_eq!(t.observe(3), SeqOutcome::Late);
}

#[test]
fn gaps_more_than_half_the_number_space_back_are_forgotten() {
    let mut t = SequenceTracker::new(16);
    t.observe(0);
    t.observe(2); // gap {1}
    let far = 2 + (1u32 << 31) - 10;
    t.observe(far); // gap {3 .. far-1}, still within reach of {1}
    assert_eq!(t.stats().forgotten, 0);
    t.observe(far + 200); // {1} and {3..} now start 2^31 or more back
    let st = t.stats();
    assert_eq!(st.forgotten, 1 + u64::from(far - 3));
    assert_eq!(t.missing_ranges().count(), 1, "only the newest gap remains");
    assert_eq!(st.missing, st.forgotten + 199);
    // A number of the forgotten range still behind `next` can no longer be
    // told from a duplicate.
    assert_eq!(t.observe(far - 5), SeqOutcome::Duplicate);
    assert_eq!(t.stats().missing, st.missing);
}

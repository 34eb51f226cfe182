//! The MSG_ZEROCOPY completion accounting on arbitrary sends and arbitrary
//! completion ranges (out of order, repeated, never issued, across the u32
//! wrap), against a model that records every id the "kernel" reported.
//!
//! Properties: buffers come back in send order, each exactly once, and only
//! when every id its sends took has been reported; a buffer whose ids have all
//! been reported is not held back; `copied` only when a copied range covered it;
//! every id of a range is counted either matched or unexpected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeSet, VecDeque};
use zc_linux::fuzzing::Ledger;

struct Sent {
    tag: u32,
    /// Absolute ids (0 = the ledger's first) its sends took.
    ids: std::ops::Range<i64>,
}

fuzz_target!(|data: &[u8]| {
    let Some((start, mut ops)) = data.split_first_chunk::<4>() else {
        return;
    };
    let start = u32::from_le_bytes(*start);
    let mut ledger: Ledger<u32> = Ledger::new(start);
    let mut held: VecDeque<Sent> = VecDeque::new();
    let mut reported: BTreeSet<i64> = BTreeSet::new();
    let mut copied_ids: BTreeSet<i64> = BTreeSet::new();
    let (mut next, mut tag) = (0i64, 0u32);
    let id_of = |abs: i64| start.wrapping_add(abs as u32);

    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op % 4 {
            0 => {
                // A buffer whose sends took 0 (plain copies) to 7 ids.
                let k = i64::from(op >> 2 & 7);
                ledger.push(tag);
                for _ in 0..k {
                    ledger.took_id();
                }
                held.push_back(Sent {
                    tag,
                    ids: next..next + k,
                });
                next += k;
                tag += 1;
            }
            1 => {
                // A completion range near the ids in flight.
                let Some((r, rest)) = ops.split_first_chunk::<4>() else {
                    break;
                };
                ops = rest;
                let delta = i64::from(i16::from_le_bytes([r[0], r[1]])) >> (op >> 4);
                let n = 1 + i64::from(u16::from_le_bytes([r[2], r[3]]) >> (op >> 4));
                let lo = next + delta;
                let copied = op & 4 != 0;
                let a = ledger.complete(id_of(lo), id_of(lo + n - 1), copied);
                assert_eq!((a.matched + a.unexpected) as i64, n);
                for id in lo.max(0)..(lo + n).min(next) {
                    reported.insert(id);
                    if copied {
                        copied_ids.insert(id);
                    }
                }
            }
            2 => {
                while let Some(c) = ledger.pop_completed() {
                    let s = held
                        .pop_front()
                        .expect("a buffer came back that was never sent, or came back twice");
                    assert_eq!(c.buf, s.tag, "buffers come back in send order");
                    for id in s.ids.clone() {
                        assert!(
                            reported.contains(&id),
                            "buffer {} came back before id {id} was reported",
                            s.tag
                        );
                    }
                    if c.copied {
                        assert!(
                            s.ids.clone().any(|id| copied_ids.contains(&id)),
                            "buffer {} marked copied",
                            s.tag
                        );
                    }
                }
                if let Some(s) = held.front() {
                    assert!(
                        !s.ids.clone().all(|id| reported.contains(&id)),
                        "buffer {} held back though all its ids were reported",
                        s.tag
                    );
                }
            }
            _ => {
                // A send that failed before its first id: the buffer comes back at once.
                let back = ledger.unsend_last();
                match held.back() {
                    Some(s) if s.ids.is_empty() => {
                        assert_eq!(back, Some(s.tag));
                        held.pop_back();
                    }
                    _ => assert_eq!(back, None),
                }
            }
        }
        assert_eq!(ledger.held(), held.len());
    }
});

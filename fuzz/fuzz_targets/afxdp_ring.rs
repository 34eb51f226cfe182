//! The AF_XDP ring cursors (the `unsafe` index arithmetic every ring shares
//! with the kernel) under an arbitrary script of reservations, partial and
//! abandoned commits, peeks and partial releases, from an arbitrary start
//! index (so the free-running u32 indices wrap), against a FIFO model.
//!
//! Properties: entries come out once each, in order, exactly as written; the
//! producer never gets more slots than are free (nothing unread is
//! overwritten); free, available and outstanding agree with the model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use zc_afxdp::fuzzing::LoopRing;

fuzz_target!(|data: &[u8]| {
    let Some((head, mut ops)) = data.split_first_chunk::<5>() else {
        return;
    };
    let size = 1u32 << (head[0] % 7);
    let start = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let mut ring = LoopRing::<u64>::new(size, start);
    let mut model: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    while let Some((&[op, a, b], rest)) = ops.split_first_chunk::<3>() {
        ops = rest;
        let (want, count) = (u32::from(a % 80), u32::from(b % 80));
        match op % 4 {
            0 | 1 => {
                // Reserve `want`, write `count` values, commit unless op is 1.
                let commit = op % 4 == 0;
                let values: Vec<u64> = (next..next + u64::from(count)).collect();
                let n = ring.produce(values.iter().copied(), want, commit);
                let fits = want.min(size - model.len() as u32).min(count);
                assert_eq!(n, if commit { fits } else { 0 });
                model.extend(&values[..n as usize]);
                next += u64::from(count);
            }
            2 => {
                // Peek `want`, release `count`.
                let got = ring.consume(want, count);
                let ready = (want as usize).min(model.len());
                assert!(
                    got.iter().eq(model.iter().take(ready)),
                    "peeked {got:?}, model {model:?}"
                );
                model.drain(..(count as usize).min(ready));
            }
            _ => {
                assert_eq!(ring.free(), size - model.len() as u32);
                assert_eq!(ring.available(), model.len() as u32);
                assert_eq!(ring.outstanding(), model.len() as u32);
            }
        }
        assert!(model.len() as u32 <= size);
    }
});

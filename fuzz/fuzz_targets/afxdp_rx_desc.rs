//! AF_XDP descriptor validation: `UmemLayout::check` on arbitrary addresses,
//! lengths and geometries against an exact reference, and the receive path's
//! `collect` on arbitrary descriptors from the rx ring over a UMEM holding
//! arbitrary bytes.
//!
//! Properties: a descriptor is accepted exactly when its bytes lie inside one
//! frame of the UMEM (no overflow at any size); the frame of every descriptor
//! whose address lies inside the UMEM, accepted or refused, and only those,
//! goes back to the fill ring, frame-aligned; every
//! payload range handed to the burst's `unsafe` slice lies inside one frame of
//! the UMEM and inside its descriptor. `collect` runs with receive stamps on,
//! so the metadata read in front of each frame's bytes is exercised too (a
//! read outside the mapping would fault).
//!
//! Input: geometry byte, want byte, 6 bytes of a far-out geometry, then
//! descriptors (8-byte address, 4-byte length, shifted by the next byte to
//! reach both small and huge values), and after a 0xFF byte the UMEM bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zc_afxdp::fuzzing::collect_descriptors;
use zc_afxdp::{DescError, UmemLayout};

/// Whether `len` bytes at `addr` lie inside one frame of `layout`, in u128.
fn fits(layout: UmemLayout, addr: u64, len: u32) -> bool {
    let (addr, len, fs) = (addr as u128, len as u128, layout.frame_size as u128);
    addr + len <= layout.bytes() as u128
        && addr < layout.bytes() as u128
        && addr + len <= (addr / fs + 1) * fs
}

fn check_one(layout: UmemLayout, addr: u64, len: u32) {
    match layout.check(addr, len) {
        Ok(r) => {
            assert!(
                fits(layout, addr, len),
                "accepted {addr:#x}+{len} in {layout:?}"
            );
            assert_eq!(
                (r.start as u64, r.end as u64),
                (addr, addr + u64::from(len))
            );
            assert_eq!(layout.frame_of(addr) % u64::from(layout.frame_size), 0);
        }
        Err(e) => {
            assert!(
                !fits(layout, addr, len),
                "refused {addr:#x}+{len} in {layout:?}: {e}"
            );
            let _ = e.to_string();
            if let DescError::OutOfUmem { .. } = e {
                assert!(addr >= layout.bytes());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let frame_size = if head[0] & 1 == 0 { 2048 } else { 4096 };
    let layout = UmemLayout::new(frame_size, 1 + u32::from(head[0] >> 1 & 7)).unwrap();
    let want = u32::from(head[1] % 40);
    // A geometry far larger than anything mapped: check() alone, near u64 limits.
    let far = UmemLayout::new(
        frame_size,
        u32::from_le_bytes([head[2], head[3], head[4], head[5]]).max(1),
    )
    .unwrap();

    let (descs_raw, content) = match rest.iter().position(|&b| b == 0xff) {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &[][..]),
    };
    let mut descs = Vec::new();
    for d in descs_raw.chunks_exact(13) {
        let shift = d[12];
        let addr = u64::from_le_bytes(d[..8].try_into().unwrap()) >> (shift & 63);
        let len = u32::from_le_bytes(d[8..12].try_into().unwrap()) >> (shift >> 3 & 31);
        check_one(layout, addr, len);
        check_one(far, addr, len);
        check_one(far, u64::MAX - addr, len);
        descs.push((addr, len));
    }

    let c = collect_descriptors(layout, content, &descs, want);
    assert_eq!(c.taken as usize, descs.len().min(want as usize));
    let taken = &descs[..c.taken as usize];
    let accepted: Vec<(u64, u32)> = taken
        .iter()
        .copied()
        .filter(|&(a, l)| fits(layout, a, l))
        .collect();
    assert_eq!(c.refused as usize, taken.len() - accepted.len());
    // Every frame named by an address inside the UMEM goes back, refused or not.
    let frames: Vec<u64> = taken
        .iter()
        .filter(|&&(a, _)| a < layout.bytes())
        .map(|&(a, _)| a - a % u64::from(frame_size))
        .collect();
    assert_eq!(c.held, frames, "frames back to the fill ring");
    assert_eq!(c.payloads.len() + c.malformed as usize, accepted.len());
    for p in &c.payloads {
        assert!(p.end as u64 <= layout.bytes() && p.start <= p.end);
        if !p.is_empty() {
            assert_eq!(
                p.start / frame_size as usize,
                (p.end - 1) / frame_size as usize,
                "payload {p:?} crosses a frame"
            );
        }
        assert!(
            accepted
                .iter()
                .any(|&(a, l)| a as usize <= p.start && p.end as u64 <= a + u64::from(l)),
            "payload {p:?} outside every accepted descriptor"
        );
    }
});

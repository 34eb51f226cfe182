//! Once warm, the whole receive path above the backend — MoldUDP64 views,
//! A/B arbitration with drops (gaps, holds, duplicates), ITCH decoding and
//! the order book — allocates nothing per message (counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line};
use zc_feed::gen::{GenConfig, Packer, SessionGen};
use zc_feed::mold::Session;
use zc_feed::protocol::MoldUdp64;
use zc_feed::sink::ItchSink;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from System.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from System with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_feed_path_allocates_nothing_per_message_once_warm() {
    let mut gen = SessionGen::new(GenConfig {
        instruments: 100,
        seed: 21,
        ..Default::default()
    });
    let mut packer = Packer::new(Session::new("ALLOC").unwrap(), 1472, 16);
    let mut packets = Vec::new();
    let mut buf = [0u8; 64];
    for k in 0..400_000u64 {
        let n = gen.next(k).encode(&mut buf).unwrap();
        packer.push(&buf[..n], &mut |_, p| packets.push(p.to_vec()));
    }
    let mut h = FeedHandler::new(
        MoldUdp64::new(None),
        FeedConfig {
            start: Some(1),
            ..Default::default()
        },
    );
    let mut sink = ItchSink::new(BookConfig::default(), true);
    let half = packets.len() / 2;
    let feed =
        |range: std::ops::Range<usize>, h: &mut FeedHandler<MoldUdp64>, sink: &mut ItchSink| {
            for i in range {
                let p = &packets[i];
                // Line A drops every 5th packet, B every 7th; B runs a packet late.
                // 10 µs a packet: a gap both lines missed is given up after 2 ms.
                let now = i as u64 * 10_000;
                if i % 5 != 2 {
                    h.on_datagram(Line::A, p, now, sink);
                }
                if i > 0 && (i - 1) % 7 != 4 {
                    h.on_datagram(Line::B, &packets[i - 1], now, sink);
                }
                h.poll(now, sink, &mut |_| {});
            }
        };
    feed(0..half, &mut h, &mut sink);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    feed(half..packets.len(), &mut h, &mut sink);
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let s = h.stats();
    let open = s.seq.missing - s.seq.forgotten;
    assert_eq!(
        s.delivered + s.lost + s.held + open,
        400_000 - u64::from(packer.pending())
    );
    assert!(s.lost > 0 && s.seq.late > 0 && s.max_held > 0, "{s:?}");
    assert_eq!(allocated, 0, "allocations in the warm half");
}

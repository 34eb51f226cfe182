//! The handler allocates nothing per packet once warm (counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::seq::TrackerConfig;
use zc_core::wire::UdpFrameSpec;

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
fn handler_allocates_nothing_per_packet_once_warm() {
    let spec = UdpFrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        vlan: None,
        src: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
        dst: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 9000),
        ttl: 64,
        udp_checksum: true,
    };
    let cfg = HandlerConfig {
        feed_port: Some(9000),
        max_symbols: 64,
        tracker: TrackerConfig {
            max_gaps: 128,
            ..TrackerConfig::default()
        },
    };
    // Frames: in-order, gaps, duplicates, late fills, many symbols, malformed.
    let mut frames = Vec::new();
    for i in 0..20_000u32 {
        let seq = match i % 10 {
            3 => i + 1, // skip → gap
            4 => i - 1, // late fill
            7 => i - 1, // duplicate
            _ => i,
        };
        let m = MarketData {
            seq,
            symbol: i % 200,
            price: 10.0 + f64::from(i % 13),
            volume: 5,
            timestamp_ns: 1,
        };
        let mut buf = vec![0u8; 128];
        m.encode(spec.payload_mut(&mut buf)).unwrap();
        let n = spec.finish(&mut buf, MESSAGE_LEN).unwrap();
        buf.truncate(n);
        if i % 97 == 0 {
            buf[20] ^= 0xff; // corrupt the IP header
        }
        frames.push(buf);
    }
    let mut h = MarketDataHandler::new(cfg);
    // Warm: the first pass fills the symbol table.
    for f in &frames[..1000] {
        h.on_frame(f, 1_000);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for f in &frames[1000..] {
        h.on_frame(f, 2_000);
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    let r = h.report();
    assert_eq!(after - before, 0, "allocations on the per-packet path");
    assert!(r.seq.gaps > 0 && r.seq.duplicates > 0 && r.seq.late > 0 && r.drops.malformed > 0);
    assert!(r.drops.symbol_table_full > 0);
}

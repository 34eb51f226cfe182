//! Per-packet cost of the receive path above the backend:
//! parse (Ethernet/IPv4/UDP, checksums) + decode + track + latency + symbol state,
//! and the same without the parse (what socket backends hand over).
//!
//! `cargo bench -p zc-benches --bench handler`
//!
//! The handler is measured warm, as a receiver runs it: one handler takes
//! 1024-message chunks of one rising feed, and a fresh handler (when the feed
//! runs out) first takes a chunk untimed. A new handler per timed chunk would
//! time the first touch of its tables (page faults), not the handler.

// criterion_group! defines a public function it cannot document.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::Datagram;

/// Messages per timed chunk.
const CHUNK: usize = 1024;
/// Chunks in the feed: one warms a fresh handler, the rest are timed.
const CHUNKS: usize = 32;

fn handler() -> MarketDataHandler {
    MarketDataHandler::new(HandlerConfig {
        feed_port: Some(9000),
        ..Default::default()
    })
}

/// Times `iters` chunks of `items` through `one` on a warm handler.
fn warm_chunks<T>(
    iters: u64,
    items: &[T],
    one: impl Fn(&mut MarketDataHandler, &T, u64),
) -> Duration {
    let chunks: Vec<&[T]> = items.chunks(CHUNK).collect();
    let mut h = handler();
    let mut next = 0;
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        if next == 0 {
            h = handler();
            for (i, x) in chunks[0].iter().enumerate() {
                one(&mut h, x, 2_000 + i as u64);
            }
            next = 1;
        }
        let start = Instant::now();
        for (i, x) in chunks[next].iter().enumerate() {
            one(&mut h, x, 2_000 + i as u64);
        }
        timed += start.elapsed();
        next = (next + 1) % chunks.len();
    }
    timed
}

fn per_packet(c: &mut Criterion) {
    let frames = zc_benches::market_data_frames(0..(CHUNK * CHUNKS) as u32);
    let mut g = c.benchmark_group("handler");
    g.throughput(Throughput::Elements(CHUNK as u64));
    g.bench_function("parse+decode+track+record, 74-byte frame", |b| {
        b.iter_custom(|iters| {
            warm_chunks(iters, &frames, |h, f, now| {
                black_box(h.on_frame(black_box(f), now));
            })
        })
    });
    // Socket backends hand over the UDP payload: no frame to parse.
    let payloads: Vec<Vec<u8>> = frames.iter().map(|f| f[42..].to_vec()).collect();
    let (src, dst) = (
        "198.18.0.1:40000".parse().unwrap(),
        "198.18.0.2:9000".parse().unwrap(),
    );
    g.bench_function("decode+track+record, 32-byte datagram", |b| {
        b.iter_custom(|iters| {
            warm_chunks(iters, &payloads, |h, p, now| {
                let d = Datagram {
                    payload: p,
                    src,
                    dst,
                    rx_timestamp: None,
                };
                black_box(h.on_datagram(black_box(&d), now));
            })
        })
    });
    g.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);

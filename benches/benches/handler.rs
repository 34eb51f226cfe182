//! Per-packet cost of the receive path above the backend:
//! parse (Ethernet/IPv4/UDP, checksums) + decode + track + latency + symbol state,
//! and the same without the parse (what socket backends hand over).
//!
//! `cargo bench -p zc-benches --bench handler`

// criterion_group! defines a public function it cannot document.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::Datagram;

const FRAMES: usize = 1024;

fn per_packet(c: &mut Criterion) {
    let frames = zc_benches::market_data_frames(0..FRAMES as u32);
    let mut g = c.benchmark_group("handler");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("parse+decode+track+record, 74-byte frame", |b| {
        b.iter_batched_ref(
            || {
                MarketDataHandler::new(HandlerConfig {
                    feed_port: Some(9000),
                    ..Default::default()
                })
            },
            |h| {
                for (i, f) in frames.iter().enumerate() {
                    black_box(h.on_frame(black_box(f), 2_000 + i as u64));
                }
            },
            BatchSize::LargeInput,
        )
    });
    // Socket backends hand over the UDP payload: no frame to parse.
    let payloads: Vec<Vec<u8>> = frames.iter().map(|f| f[42..].to_vec()).collect();
    let (src, dst) = (
        "198.18.0.1:40000".parse().unwrap(),
        "198.18.0.2:9000".parse().unwrap(),
    );
    g.bench_function("decode+track+record, 32-byte datagram", |b| {
        b.iter_batched_ref(
            || {
                MarketDataHandler::new(HandlerConfig {
                    feed_port: Some(9000),
                    ..Default::default()
                })
            },
            |h| {
                for (i, p) in payloads.iter().enumerate() {
                    let d = Datagram {
                        payload: p,
                        src,
                        dst,
                        rx_timestamp: None,
                    };
                    black_box(h.on_datagram(black_box(&d), 2_000 + i as u64));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);

//! Per-packet cost of the receive path above the backend:
//! parse (Ethernet/IPv4/UDP, checksums) + decode + track + latency + symbol state.
//!
//! `cargo bench -p zc-benches --bench handler`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::net::SocketAddrV4;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::wire::UdpFrameSpec;

const FRAMES: usize = 1024;

fn frames() -> Vec<Vec<u8>> {
    let spec = UdpFrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        vlan: None,
        src: SocketAddrV4::new([198, 18, 0, 1].into(), 40000),
        dst: SocketAddrV4::new([198, 18, 0, 2].into(), 9000),
        ttl: 64,
        udp_checksum: true,
    };
    (0..FRAMES)
        .map(|i| {
            let mut buf = vec![0u8; 128];
            let msg = MarketData {
                seq: i as u32,
                symbol: (i % 64) as u32,
                price: 100.0 + i as f64 * 0.01,
                volume: 10,
                timestamp_ns: 1_000,
            };
            msg.encode(spec.payload_mut(&mut buf)).unwrap();
            let len = spec.finish(&mut buf, MESSAGE_LEN).unwrap();
            buf.truncate(len);
            buf
        })
        .collect()
}

fn per_packet(c: &mut Criterion) {
    let frames = frames();
    let mut g = c.benchmark_group("handler");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("parse+decode+track+record, 74-byte frame", |b| {
        b.iter_batched_ref(
            || MarketDataHandler::new(HandlerConfig { feed_port: Some(9000), ..Default::default() }),
            |h| {
                for (i, f) in frames.iter().enumerate() {
                    black_box(h.on_frame(black_box(f), 2_000 + i as u64));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, per_packet);
criterion_main!(benches);

//! Per-message cost of the ITCH path on a realistic mix (the session
//! generator's default: adds and deletes dominate, a few percent executions,
//! replaces, cancels, trades): ITCH decode + order book update, and the
//! whole path above the backend (MoldUDP64 view, arbitration, decode, book).
//!
//! `cargo bench -p zc-benches --bench feed`

// criterion_group! defines a public function it cannot document.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line};
use zc_feed::gen::{GenConfig, Packer, SessionGen};
use zc_feed::mold::Session;
use zc_feed::protocol::MoldUdp64;
use zc_feed::sink::ItchSink;

const MESSAGES: u64 = 200_000;

/// A generated session three ways: the ITCH messages back to back, where
/// each one starts and how long it is, and the MoldUDP64 packets carrying them.
struct Generated {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    packets: Vec<Vec<u8>>,
}

fn session() -> Generated {
    let mut gen = SessionGen::new(GenConfig::default());
    let mut bytes = Vec::new();
    let mut spans = Vec::new();
    let mut packer = Packer::new(Session::new("BENCH").unwrap(), 1472, 16);
    let mut packets = Vec::new();
    let mut buf = [0u8; 64];
    for k in 0..MESSAGES {
        let n = gen.next(k).encode(&mut buf).unwrap();
        spans.push((bytes.len(), n));
        bytes.extend_from_slice(&buf[..n]);
        packer.push(&buf[..n], &mut |_, p| packets.push(p.to_vec()));
    }
    packer.flush(&mut |_, p| packets.push(p.to_vec()));
    Generated {
        bytes,
        spans,
        packets,
    }
}

fn book() -> BookConfig {
    BookConfig {
        max_orders: 1 << 17,
        max_instruments: 256,
        ..Default::default()
    }
}

fn per_message(c: &mut Criterion) {
    let Generated {
        bytes,
        spans,
        packets,
    } = session();
    let mut g = c.benchmark_group("feed");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(20);
    g.bench_function("itch decode + book update, per message", |b| {
        b.iter_batched_ref(
            || ItchSink::new(book(), false),
            |sink| {
                for &(at, n) in &spans {
                    sink.apply(black_box(&bytes[at..at + n]), 0);
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function(
        "moldudp64 + arbitration + decode + book, per message",
        |b| {
            b.iter_batched_ref(
                || {
                    (
                        FeedHandler::new(
                            MoldUdp64::new(None),
                            FeedConfig {
                                start: Some(1),
                                ..Default::default()
                            },
                        ),
                        ItchSink::new(book(), false),
                    )
                },
                |(h, sink)| {
                    for p in &packets {
                        h.on_datagram(Line::A, black_box(p), 0, sink);
                    }
                },
                BatchSize::LargeInput,
            )
        },
    );
    g.finish();
}

criterion_group!(benches, per_message);
criterion_main!(benches);

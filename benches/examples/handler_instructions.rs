//! Instructions per message of the shared receive path, for callgrind:
//! the same work as `benches/handler.rs`, but a fixed amount of it, so that
//! `valgrind --tool=callgrind` gives a count that does not depend on how busy
//! the machine is.
//!
//! ```sh
//! cargo build --release -p zc-benches --example handler_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/handler_instructions 100000 build-only
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/handler_instructions 100000
//! ```
//! (instructions of the second − the first) / 100 000 = instructions per message.
//! Every frame has its own sequence number, 1 in 100 is skipped (a gap).

use std::hint::black_box;
use std::net::SocketAddrV4;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::wire::UdpFrameSpec;

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let build_only = std::env::args().nth(2).as_deref() == Some("build-only");
    let spec = UdpFrameSpec {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        vlan: None,
        src: SocketAddrV4::new([198, 18, 0, 1].into(), 40000),
        dst: SocketAddrV4::new([198, 18, 0, 2].into(), 9000),
        ttl: 64,
        udp_checksum: true,
    };
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|k| {
            let i = k + k / 99; // skip every 100th number
            let mut buf = vec![0u8; 128];
            let m = MarketData { seq: i, symbol: i % 64, price: 100.0 + f64::from(i) * 0.01, volume: 10, timestamp_ns: 1_000 };
            m.encode(spec.payload_mut(&mut buf)).unwrap();
            let len = spec.finish(&mut buf, MESSAGE_LEN).unwrap();
            buf.truncate(len);
            buf
        })
        .collect();
    let mut h = MarketDataHandler::new(HandlerConfig { feed_port: Some(9000), ..Default::default() });
    if !build_only {
        for (i, f) in frames.iter().enumerate() {
            black_box(h.on_frame(black_box(f), 2_000 + i as u64));
        }
    }
    black_box(h.report());
}

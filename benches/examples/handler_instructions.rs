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
use zc_core::handler::{HandlerConfig, MarketDataHandler};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let build_only = std::env::args().nth(2).as_deref() == Some("build-only");
    // Every frame has its own sequence number; every 100th number is skipped.
    let frames = zc_benches::market_data_frames((0..n).map(|k| k + k / 99));
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(9000),
        ..Default::default()
    });
    if !build_only {
        for (i, f) in frames.iter().enumerate() {
            black_box(h.on_frame(black_box(f), 2_000 + i as u64));
        }
    }
    black_box(h.report());
}

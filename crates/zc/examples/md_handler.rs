//! The README's market-data handler as a program: any enabled backend by
//! name, messages decoded, tracked and timed by zc-core's handler.
//!
//! ```text
//! cargo run --release -p zc-net --example md_handler -- [BACKEND] [BIND] [COUNT]
//! ```
//!
//! Defaults: `recvmmsg`, `127.0.0.1:19400`, 1000. With `BIND` on loopback it
//! also starts a sender of the same family (sockets or io_uring) that sends
//! `COUNT` messages to it, so the example runs on its own and exits; on any
//! other address it waits for a feed (e.g. `zc send`) until `COUNT` arrive.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use zc::zc_core::feed::{generate, FeedPlan, GenConfig};
use zc::zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc::zc_core::sys::monotonic_ns;
use zc::{open_receiver, open_sender, RxSpec, TxSpec};

fn main() -> zc::Result<()> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "recvmmsg".to_owned());
    let bind: std::net::SocketAddrV4 = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:19400".to_owned())
        .parse()
        .map_err(|e| zc::Error::config(format!("BIND: {e}")))?;
    let count: u64 = args
        .next()
        .map_or(Ok(1000), |c| c.parse())
        .map_err(|e| zc::Error::config(format!("COUNT: {e}")))?;

    let mut rx = open_receiver(&RxSpec::new(&backend, bind))?;
    println!("receiving on {bind} with {}", rx.mode());

    // On loopback, feed ourselves: the sockets' or io_uring's sender.
    let sender = bind.ip().is_loopback().then(|| {
        let tx_backend = if backend == "uring" {
            "uring"
        } else {
            "recvmmsg"
        };
        let spec = TxSpec::new(tx_backend, "127.0.0.1:0".parse().unwrap(), bind);
        std::thread::spawn(move || -> zc::Result<u64> {
            let mut tx = open_sender(&spec)?;
            let cfg = GenConfig {
                plan: FeedPlan::new(count),
                rate: None,
                symbols: 16,
                payload_len: 32,
                batch: 32,
            };
            Ok(generate(tx.as_mut(), &cfg, &AtomicBool::new(false))?.sent)
        })
    });

    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(bind.port()),
        ..Default::default()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.messages() < count && Instant::now() < deadline {
        let mut now = 0; // read when the burst arrives, not before the wait
        rx.recv_each(Some(Duration::from_millis(100)), &mut |d| {
            if now == 0 {
                now = monotonic_ns();
            }
            h.on_datagram(d, now);
        })?;
    }
    if let Some(s) = sender {
        let sent = s.join().expect("sender thread")?;
        println!("sent {sent}");
    }
    let seq = h.tracker().stats();
    println!(
        "received {} messages, {} gaps, {} duplicates, one-way p50 {} ns p99 {} ns",
        h.messages(),
        seq.gaps,
        seq.duplicates,
        h.latency().summary().p50,
        h.latency().summary().p99
    );
    if h.messages() < count {
        return Err(zc::Error::config(format!(
            "only {} of {count} messages arrived within 10 s",
            h.messages()
        )));
    }
    Ok(())
}

//! zc-epoll used directly, with no dynamic dispatch: a `recvmmsg` receiver
//! lends out bursts of datagrams, each decoded as a 32-byte market-data
//! message; the buffers go back to the receiver when the burst is dropped.
//!
//! ```text
//! cargo run --release -p zc-epoll --example recv_burst -- [COUNT]
//! ```
//!
//! It feeds itself on loopback with a plain `std::net::UdpSocket`, so it runs
//! anywhere without privileges, and exits once `COUNT` (default 1000)
//! messages are in.

use std::net::UdpSocket;
use std::time::{Duration, Instant};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::{Receiver, RxBurst};
use zc_epoll::{RecvConfig, SocketApi, SocketReceiver};

fn main() -> zc_core::Result<()> {
    let count: u32 = std::env::args()
        .nth(1)
        .map_or(Ok(1000), |c| c.parse())
        .map_err(|e| zc_core::Error::config(format!("COUNT: {e}")))?;

    let mut rx = SocketReceiver::open(RecvConfig::new(
        SocketApi::Recvmmsg,
        "127.0.0.1:0".parse().unwrap(),
    ))?;
    let to = rx.local_addr();
    println!("receiving on {to} with {}", rx.mode());

    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        let mut buf = [0u8; MESSAGE_LEN];
        for seq in 0..count {
            let m = MarketData {
                seq,
                symbol: seq % 8,
                price: 100.0 + f64::from(seq % 100) / 100.0,
                volume: 10,
                timestamp_ns: 0,
            };
            m.encode(&mut buf).expect("a 32-byte buffer");
            sock.send_to(&buf, to)?;
            if seq % 64 == 63 {
                // Let the receiver keep up: loopback drops what overflows.
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(())
    });

    let (mut got, mut bursts, mut volume) = (0u32, 0u32, 0i64);
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < count && Instant::now() < deadline {
        let burst = rx.recv_burst(Some(Duration::from_millis(100)))?;
        if burst.len() > 0 {
            bursts += 1;
        }
        for d in burst.iter() {
            if let Ok(m) = MarketData::decode(d.payload) {
                got += 1;
                volume += m.volume;
            }
        }
        // `burst` is dropped here: its buffers return to the receiver.
    }
    sender
        .join()
        .expect("sender thread")
        .map_err(|e| zc_core::Error::io("send_to", e))?;
    println!("{got} messages in {bursts} bursts, volume {volume}");
    if got < count {
        return Err(zc_core::Error::config(format!(
            "only {got} of {count} messages arrived within 10 s"
        )));
    }
    Ok(())
}

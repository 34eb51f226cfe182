//! Shared by the zc-uring tests: a feed plan with deliberate gaps and
//! duplicates, a paced std-socket generator, and a receive loop into the
//! market-data handler.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::sys::monotonic_ns;
use zc_uring::UringReceiver;

/// Sequence numbers 1..=n, except every number ending in 7 (gaps), with every
/// multiple of 50 sent twice (duplicates).
pub struct Plan {
    pub seqs: Vec<u32>,
    pub distinct: u64,
    pub gaps: u64,
    pub duplicates: u64,
}

pub fn plan(n: u32) -> Plan {
    let mut seqs = Vec::with_capacity(n as usize * 11 / 10);
    let (mut distinct, mut gaps, mut duplicates) = (0, 0, 0);
    for s in 1..=n {
        if s % 10 == 7 {
            gaps += 1;
            continue;
        }
        seqs.push(s);
        distinct += 1;
        if s % 50 == 0 {
            seqs.push(s);
            duplicates += 1;
        }
    }
    Plan {
        seqs,
        distinct,
        gaps,
        duplicates,
    }
}

pub fn payload(seq: u32) -> [u8; MESSAGE_LEN] {
    let mut b = [0u8; MESSAGE_LEN];
    let m = MarketData {
        seq,
        symbol: seq % 7,
        price: 100.5,
        volume: 2,
        timestamp_ns: monotonic_ns(),
    };
    m.encode(&mut b).expect("32-byte buffer");
    b
}

/// Sends `seqs` from `sock` to `dst`, pausing `pause` after every `chunk`
/// datagrams so that a slow receiver is not overrun. Returns datagrams sent.
pub fn send_paced(
    sock: &UdpSocket,
    dst: SocketAddr,
    seqs: &[u32],
    chunk: usize,
    pause: Duration,
) -> std::io::Result<u64> {
    let mut sent = 0;
    for part in seqs.chunks(chunk) {
        for &s in part {
            sock.send_to(&payload(s), dst)?;
            sent += 1;
        }
        std::thread::sleep(pause);
    }
    Ok(sent)
}

/// Receives into a fresh handler until `want` messages (duplicates included)
/// arrived, or nothing came for `idle`.
pub fn receive(rx: &mut UringReceiver, want: u64, idle: Duration) -> MarketDataHandler {
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(rx.local_addr().port()),
        ..Default::default()
    });
    let mut last = Instant::now();
    while h.report().messages < want && last.elapsed() < idle {
        let burst = rx
            .recv_burst(Some(Duration::from_millis(50)))
            .expect("recv_burst");
        if burst.is_empty() {
            continue;
        }
        last = Instant::now();
        let now = monotonic_ns();
        for d in burst.iter() {
            h.on_datagram(&d, now);
        }
    }
    h
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

pub fn extra(stats: &[(&'static str, u64)], name: &str) -> u64 {
    stats
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

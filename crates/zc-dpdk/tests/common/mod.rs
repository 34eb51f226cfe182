//! Exact delivery on the veth testbed: a plain UDP socket in the peer namespace
//! sends market-data messages with planned gaps and duplicates; a DPDK vdev
//! bound to the host end receives them; every count must match exactly.

use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::MarketData;
use zc_core::sys::monotonic_ns;
use zc_core::Error;
use zc_dpdk::{Port, RxConfig};
pub use zc_testbed::{Testbed, TestbedConfig};

mod subnet;
pub use subnet::free_subnet;

const N: u32 = 2000;

/// Sequence numbers to send: 1..=N without every 100th, with every 250th twice.
fn plan() -> Vec<u32> {
    let mut seqs = Vec::new();
    for s in 1..=N {
        if s % 100 == 0 {
            continue;
        }
        seqs.push(s);
        if s % 250 == 0 {
            seqs.push(s);
        }
    }
    seqs
}

/// Runs the exact-delivery check on a testbed named `name` on
/// 198.18.`subnet`.0/24, through the port `open` returns for the testbed
/// (whose `driver` is named in messages).
///
/// `pmd_keeps_fill_ring`: DPDK 22.11's net_af_xdp lends mbufs to its AF_XDP fill
/// ring and does not give them back to the pool when the port closes; those
/// (and only those) may still be out after teardown.
pub fn exact_delivery(
    name: &str,
    subnet: u8,
    driver: &str,
    open: &dyn Fn(&Testbed) -> Port,
    pmd_keeps_fill_ring: bool,
) {
    let tb = Testbed::create(&TestbedConfig::new(name, subnet)).unwrap();
    // A port of its own: other tests on this machine may hold 0.0.0.0:9000.
    let port_no = 40_000 + u16::from(subnet);
    // A socket on the host end keeps the kernel from answering our datagrams
    // with ICMP port-unreachable; the DPDK vdev sees the frames regardless.
    let _absorb = UdpSocket::bind((tb.host_addr, port_no)).unwrap();

    let port = open(&tb);
    let pool = port.mempool().clone();
    let mut rx = port.receiver(0, RxConfig::default()).unwrap();
    eprintln!("{driver}: {}", zc_core::Receiver::mode(&rx));

    let seqs = plan();
    let sent = seqs.len() as u64;
    let dst = SocketAddrV4::new(tb.host_addr, port_no);
    let peer = tb.peer_addr;
    let generator = tb
        .spawn_in_peer(move || {
            let s = UdpSocket::bind((peer, 0)).map_err(|e| Error::io("bind the generator", e))?;
            let mut buf = [0u8; 32];
            for (i, &seq) in seqs.iter().enumerate() {
                let msg = MarketData {
                    seq,
                    symbol: seq % 7,
                    price: 100.0 + f64::from(seq % 13),
                    volume: 10,
                    timestamp_ns: monotonic_ns(),
                };
                msg.encode(&mut buf)
                    .map_err(|e| Error::config(e.to_string()))?;
                s.send_to(&buf, dst)
                    .map_err(|e| Error::io("send a message", e))?;
                // Paced so that the vdev's ring never overflows: exact counts.
                if i % 32 == 31 {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            Ok(())
        })
        .unwrap();

    let mut handler = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(port_no),
        ..HandlerConfig::default()
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut messages = 0u64;
    while messages < sent && Instant::now() < deadline {
        let burst = rx.recv_burst(Some(Duration::from_millis(50))).unwrap();
        let now = monotonic_ns();
        for d in burst.iter() {
            if let zc_core::handler::Handled::Message(_) = handler.on_datagram(&d, now) {
                messages += 1;
            }
        }
    }
    generator.join().unwrap().unwrap();
    // Anything extra (a duplicate of ours delivered twice) would show up now.
    for _ in 0..10 {
        let burst = rx.recv_burst(Some(Duration::from_millis(10))).unwrap();
        let now = monotonic_ns();
        for d in burst.iter() {
            handler.on_datagram(&d, now);
        }
    }
    let r = handler.report();
    let s = zc_core::Receiver::stats(&rx);
    eprintln!("{driver}: {r:?}\n{driver}: {s:?}");
    assert_eq!(r.messages, sent, "every message sent was received once");
    assert_eq!(r.seq.received, u64::from(N - N / 100));
    assert_eq!(
        r.seq.gaps,
        u64::from(N / 100 - 1),
        "the last skipped number (N) is not a gap yet"
    );
    assert_eq!(r.seq.missing, u64::from(N / 100 - 1));
    assert_eq!(
        r.seq.duplicates,
        u64::from(N / 250) - u64::from(N / 500),
        "multiples of 250 not of 100"
    );
    assert_eq!(r.drops.not_market_data, 0);
    // net_af_packet cannot count its ring's drops: unknown, never a false 0.
    let drops = (driver != "net_af_packet").then_some(0);
    assert_eq!(s.kernel_drops, drops);

    // No burst is alive: whatever is out of the pool now, the PMD holds.
    let held_by_pmd = pool.in_use();
    drop(rx);
    drop(port);
    let expected = if pmd_keeps_fill_ring { held_by_pmd } else { 0 };
    eprintln!(
        "{driver}: {held_by_pmd} mbufs held by the PMD while running, {} out after close",
        pool.in_use()
    );
    assert_eq!(
        pool.in_use(),
        expected,
        "every mbuf the receiver had is back in the pool"
    );
}

//! net_null: the receive path runs and counts, and the market-data loop prints
//! its status line. net_null hands out 64-byte frames of whatever bytes the
//! mbufs hold (zeros: EtherType 0), so every frame is refused by the parser
//! and counted as not UDP.

use std::sync::atomic::AtomicBool;
use std::time::Duration;
use zc_core::backend::{Receiver, RxBurst};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::sys::privileged_or_skip;
use zc_dpdk::market_data::{self, LoopConfig};
use zc_dpdk::{Eal, EalConfig, Mempool, MempoolConfig, Port, PortConfig, RxConfig};

fn extra(s: &zc_core::RxStats, key: &str) -> u64 {
    s.extra
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, v)| *v)
}

#[test]
fn null_receive_path_counts_and_the_loop_reports() {
    if !privileged_or_skip("null_receive_path_counts_and_the_loop_reports") {
        return;
    }
    let eal = Eal::start(&EalConfig::no_huge(0).vdev("net_null0", "")).unwrap();
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 2047,
            cache: 64,
            ..Default::default()
        },
    )
    .unwrap();
    let port = Port::open("net_null0", &pool, PortConfig::default()).unwrap();
    assert_eq!(port.driver(), "net_null");
    let mut rx = port
        .receiver(
            0,
            RxConfig {
                batch: 64,
                poll_gap: Duration::from_millis(40),
                ..RxConfig::default()
            },
        )
        .unwrap();
    assert_eq!(extra(&rx.stats(), "poll_gaps"), 0);
    for _ in 0..100 {
        let burst = rx.recv_burst(Some(Duration::ZERO)).unwrap();
        assert!(burst.is_empty(), "net_null frames are not UDP");
    }
    let s = rx.stats();
    assert_eq!(s.datagrams, 0);
    assert_eq!(s.not_udp, 100 * 64);
    assert_eq!(s.malformed, 0, "not UDP is not a defect");
    assert_eq!(extra(&s, "port_ipackets"), 100 * 64);
    assert_eq!(s.kernel_drops, Some(0));
    // A receiver that stops polling for 100 ms (a stall) is told apart.
    let before = extra(&s, "poll_gaps");
    std::thread::sleep(Duration::from_millis(100));
    drop(rx.recv_burst(Some(Duration::ZERO)).unwrap());
    let s = rx.stats();
    assert_eq!(extra(&s, "poll_gaps"), before + 1);
    assert!(extra(&s, "longest_poll_gap_us") >= 100_000, "{s:?}");

    // The market-data loop: polls, feeds the handler, one status line a second.
    let mut handler = MarketDataHandler::new(HandlerConfig::default());
    let mut out = Vec::new();
    let cfg = LoopConfig {
        duration: Some(Duration::from_millis(1500)),
        ..LoopConfig::default()
    };
    let summary = market_data::run(
        &eal,
        &mut rx,
        &mut handler,
        &cfg,
        &AtomicBool::new(false),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("dpdk (in-process, batch 64, busy-poll on, queue 0, driver net_null"),
        "{text}"
    );
    eprintln!("status line: {text}");
    assert!(summary.rx.not_udp > 100 * 64);
    assert_eq!(summary.report.messages, 0);
    assert!(summary.polls > 0);
    drop(rx);
    drop(port);
    assert_eq!(pool.available(), 2047);

    // Several queues with RSS: net_null reports IP/UDP hash types, so RSS is on
    // with the types masked by what it reports; each queue has its own owner.
    eal.add_vdev(&zc_dpdk::Vdev::new("net_null1", "")).unwrap();
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        ..PortConfig::default()
    };
    let port = Port::open("net_null1", &pool, cfg).unwrap();
    assert!(
        port.details()
            .iter()
            .any(|d| d.starts_with("rss on (hash types 0x")),
        "{:?}",
        port.details()
    );
    let mut q0 = port.receiver(0, RxConfig::default()).unwrap();
    let mut q1 = port.receiver(1, RxConfig::default()).unwrap();
    assert!(
        port.receiver(2, RxConfig::default()).is_err(),
        "no third queue"
    );
    let worker = std::thread::spawn(move || {
        for _ in 0..10 {
            drop(q1.recv_burst(Some(Duration::ZERO)).unwrap());
        }
        q1.stats().not_udp
    });
    for _ in 0..10 {
        drop(q0.recv_burst(Some(Duration::ZERO)).unwrap());
    }
    assert_eq!(q0.stats().not_udp, 10 * 32);
    assert_eq!(worker.join().unwrap(), 10 * 32);
    assert_eq!(extra(&q0.stats(), "port_ipackets"), 2 * 10 * 32);
    drop(q0);
    drop(port);
    assert_eq!(pool.available(), 2047);
}

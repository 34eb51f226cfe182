//! Both socket paths on the veth testbed: exact counts with deliberate gaps and
//! duplicates, multicast, and clear errors.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_core::feed::{generate, FeedPlan, GenConfig};
use zc_core::handler::{HandlerConfig, HandlerReport, MarketDataHandler};
use zc_core::sys::{monotonic_ns, privileged_or_skip};
use zc_core::ErrorKind;
use zc_epoll::{BusyPoll, RecvConfig, SendConfig, SocketApi, SocketReceiver, SocketSender};
use zc_testbed::{Testbed, TestbedConfig};

const PORT: u16 = 9000;
const GROUP_PORT: u16 = 9400;

/// Sends `plan` from the peer namespace to `dst` and receives with `rx` until
/// everything arrived or nothing came for a second.
fn run_feed(
    tb: &Testbed,
    mut rx: SocketReceiver,
    dst: SocketAddr,
    tx_api: SocketApi,
    plan: FeedPlan,
) -> HandlerReport {
    let peer = tb.peer_addr;
    let gen = tb
        .spawn_in_peer(move || {
            let mut tx =
                SocketSender::open(SendConfig::new(tx_api, SocketAddr::from((peer, 0)), dst))?;
            let cfg = GenConfig {
                plan,
                rate: Some(50_000.0),
                symbols: 16,
                payload_len: 32,
                batch: 32,
            };
            generate(&mut tx, &cfg, &AtomicBool::new(false))
        })
        .unwrap();
    let expected = plan.expected();
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(dst.port()),
        ..Default::default()
    });
    let mut last = Instant::now();
    // Idle only after an empty receive: a descheduled thread still takes
    // what waited meanwhile.
    while h.report().messages < expected.sent {
        let burst = rx.recv_burst(Some(Duration::from_millis(100))).unwrap();
        let now = monotonic_ns();
        for d in burst.iter() {
            h.on_datagram(&d, now);
        }
        if !burst.is_empty() {
            last = Instant::now();
        } else if last.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    let sent = gen.join().unwrap().unwrap();
    assert_eq!(sent.sent, expected.sent);
    let stats = Receiver::stats(&rx);
    assert_eq!(
        stats.kernel_drops,
        Some(0),
        "the kernel dropped datagrams: {stats:?}"
    );
    h.report()
}

fn exact_delivery(name: &str, subnet: u8, api: SocketApi, busy: BusyPoll) {
    let tb = Testbed::create(&TestbedConfig::new(name, subnet)).unwrap();
    let mut cfg = RecvConfig::new(api, SocketAddr::from((tb.host_addr, PORT)));
    cfg.busy_poll = busy;
    let rx = SocketReceiver::open(cfg).unwrap();
    let plan = FeedPlan {
        count: 20_000,
        first: u32::MAX - 5000,
        skip_every: Some(97),
        duplicate_every: Some(41),
        reorder_every: Some(53),
    };
    let r = run_feed(&tb, rx, SocketAddr::from((tb.host_addr, PORT)), api, plan);
    let e = plan.expected();
    assert_eq!(r.messages, e.sent);
    assert_eq!(r.seq.received, e.received);
    assert_eq!(r.seq.duplicates, e.duplicates);
    assert_eq!(r.seq.gaps, e.gaps);
    assert_eq!(r.seq.missing, e.missing);
    assert_eq!(r.seq.late, e.late);
    assert_eq!(r.latency.count, e.received);
    assert_eq!(
        r.drops.not_ours + r.drops.not_market_data + r.drops.malformed,
        0
    );
}

#[test]
fn recvfrom_counts_gaps_and_duplicates_exactly() {
    if privileged_or_skip("recvfrom_counts_gaps_and_duplicates_exactly") {
        exact_delivery("zcep1", 1, SocketApi::Recvfrom, BusyPoll::Off);
    }
}

#[test]
fn recvmmsg_counts_gaps_and_duplicates_exactly() {
    if privileged_or_skip("recvmmsg_counts_gaps_and_duplicates_exactly") {
        exact_delivery("zcep2", 2, SocketApi::Recvmmsg, BusyPoll::Off);
    }
}

#[test]
fn blocking_recvmmsg_counts_gaps_and_duplicates_exactly() {
    if privileged_or_skip("blocking_recvmmsg_counts_gaps_and_duplicates_exactly") {
        exact_delivery("zcep9", 9, SocketApi::Recvmmsg, BusyPoll::Blocking);
    }
}

#[test]
fn recvmmsg_spinning_counts_gaps_and_duplicates_exactly() {
    if privileged_or_skip("recvmmsg_spinning_counts_gaps_and_duplicates_exactly") {
        exact_delivery("zcep3", 3, SocketApi::Recvmmsg, BusyPoll::Spin);
    }
}

#[test]
fn a_receiver_that_joined_a_group_gets_its_traffic() {
    if !privileged_or_skip("a_receiver_that_joined_a_group_gets_its_traffic") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcep4", 4)).unwrap();
    let group = Ipv4Addr::new(239, 18, 4, 1);
    let mut cfg = RecvConfig::new(
        SocketApi::Recvmmsg,
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, GROUP_PORT)),
    );
    cfg.multicast = Some((group, tb.host_addr));
    cfg.timestamps = true;
    let rx = SocketReceiver::open(cfg).unwrap();
    assert!(rx
        .mode()
        .details
        .iter()
        .any(|d| d.contains("joined 239.18.4.1")));
    let plan = FeedPlan::new(2_000);
    let r = run_feed(
        &tb,
        rx,
        SocketAddr::from((group, GROUP_PORT)),
        SocketApi::Recvmmsg,
        plan,
    );
    assert_eq!(r.seq.received, 2_000);
    assert_eq!(r.seq.gaps, 0);
}

#[test]
fn kernel_timestamps_and_addresses_come_with_each_datagram() {
    if !privileged_or_skip("kernel_timestamps_and_addresses_come_with_each_datagram") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcep5", 5)).unwrap();
    let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, SocketAddr::from((tb.host_addr, PORT)));
    cfg.timestamps = true;
    let mut rx = SocketReceiver::open(cfg).unwrap();
    let (peer, dst) = (tb.peer_addr, SocketAddr::from((tb.host_addr, PORT)));
    tb.spawn_in_peer(move || {
        let mut tx = SocketSender::open(SendConfig::new(
            SocketApi::Recvmmsg,
            SocketAddr::from((peer, 40_000)),
            dst,
        ))?;
        tx_send(&mut tx, 5)
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while got < 5 && Instant::now() < deadline {
        let burst = rx.recv_burst(Some(Duration::from_millis(100))).unwrap();
        for d in burst.iter() {
            assert_eq!(d.src, SocketAddr::from((tb.peer_addr, 40_000)));
            assert_eq!(d.dst, dst);
            assert_eq!(d.payload, b"tick");
            let ts = d.rx_timestamp.expect("SO_TIMESTAMPING timestamp");
            // veth has no hardware stamp: the kernel's software one.
            assert_eq!(ts.clock, zc_core::Clock::Realtime);
            let now = zc_core::sys::realtime_ns();
            assert!(
                ts.ns <= now && now - ts.ns < 5_000_000_000,
                "timestamp {} vs now {now}",
                ts.ns
            );
            got += 1;
        }
    }
    assert_eq!(got, 5);
}

fn tx_send(tx: &mut SocketSender, n: usize) -> zc_core::Result<()> {
    use zc_core::backend::Sender;
    let sent = tx.send_burst(n, &mut |_, buf| {
        buf[..4].copy_from_slice(b"tick");
        4
    })?;
    assert_eq!(sent, n);
    Ok(())
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let first = SocketReceiver::open(RecvConfig::new(
        SocketApi::Recvmmsg,
        "127.0.0.1:0".parse().unwrap(),
    ))
    .unwrap();
    let taken = first.local_addr();
    let e = SocketReceiver::open(RecvConfig::new(SocketApi::Recvmmsg, taken))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("bind UDP {taken}")) && msg.contains("fix:"),
        "{msg}"
    );
    // With SO_REUSEPORT on both, sharing the port works.
    let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, "127.0.0.1:0".parse().unwrap());
    cfg.reuse_port = true;
    let a = SocketReceiver::open(cfg.clone()).unwrap();
    cfg.bind = a.local_addr();
    SocketReceiver::open(cfg).unwrap();
}

#[test]
fn an_address_not_on_this_host_is_a_clear_error() {
    let e = SocketReceiver::open(RecvConfig::new(
        SocketApi::Recvfrom,
        "198.19.255.254:9000".parse().unwrap(),
    ))
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    assert!(e.to_string().contains("ip -br addr"), "{e}");
}

#[test]
fn options_the_path_cannot_honour_are_refused() {
    let mut cfg = RecvConfig::new(SocketApi::Recvfrom, "127.0.0.1:0".parse().unwrap());
    cfg.busy_poll = BusyPoll::Spin;
    assert!(SocketReceiver::open(cfg.clone())
        .err()
        .unwrap()
        .to_string()
        .contains("busy polling"));
    cfg.busy_poll = BusyPoll::Off;
    cfg.timestamps = true;
    assert!(SocketReceiver::open(cfg)
        .err()
        .unwrap()
        .to_string()
        .contains("control messages"));
    let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, "127.0.0.1:0".parse().unwrap());
    cfg.batch = 0;
    assert!(SocketReceiver::open(cfg)
        .err()
        .unwrap()
        .to_string()
        .contains("batch 0"));
}

#[test]
fn oversized_datagrams_are_truncated_and_counted() {
    let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, "127.0.0.1:0".parse().unwrap());
    cfg.max_payload = 64;
    let mut rx = SocketReceiver::open(cfg).unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&[7u8; 100], rx.local_addr()).unwrap();
    {
        let burst = rx.recv_burst(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(burst.get(0).unwrap().payload.len(), 64);
    }
    assert_eq!(Receiver::stats(&rx).truncated, 1);
}

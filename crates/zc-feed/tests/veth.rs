//! ITCH over MoldUDP64 on the veth testbed, through real backends: line A
//! on one veth pair received with recvmmsg, line B on another with io_uring,
//! each publisher in its own namespace dropping packets by its own plan.
//!
//! - Independent drops: every message delivered exactly once and in order,
//!   what both lines lost brought back by the re-request server, the
//!   per-line counts exact, and the book identical to the one the offline
//!   path builds from the same session written as a NASDAQ file.
//! - Server gone: the loss reported with exact counts, and the receiver
//!   goes on to the end of the session.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use zc::{open_receiver, open_sender, RxSpec, TxSpec};
use zc_core::sys::privileged_or_skip;
use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line};
use zc_feed::file::FileWriter;
use zc_feed::gen::{GenConfig, SessionGen};
use zc_feed::mold::Session;
use zc_feed::offline::replay_itch_file;
use zc_feed::online::{receive, LineRx, Until};
use zc_feed::protocol::MoldUdp64;
use zc_feed::publish::{plan_packets, publish, DropPlan, PublishConfig};
use zc_feed::recovery::{RecoveryClient, RecoveryServer};
use zc_feed::seq::TrackerConfig;
use zc_feed::sink::ItchSink;
use zc_testbed::{Testbed, TestbedConfig};

const PORT: u16 = 9400;
const REREQUEST_PORT: u16 = 9401;
const MESSAGES: u64 = 40_000;

fn cfg(drops: DropPlan) -> PublishConfig {
    PublishConfig {
        drops,
        linger: Duration::from_millis(1500),
        ..PublishConfig::new(
            Session::new("ZCVETH0001").unwrap(),
            GenConfig {
                instruments: 40,
                seed: 77,
                ..Default::default()
            },
            MESSAGES,
            Some(50_000.0),
        )
    }
}

fn book() -> BookConfig {
    BookConfig {
        max_orders: 1 << 16,
        max_instruments: 64,
        ..Default::default()
    }
}

/// Starts a publisher in `tb`'s peer namespace; with `serve`, it also runs
/// the re-request server there.
fn start_line(
    tb: &Testbed,
    cfg: PublishConfig,
    serve: bool,
    start: Arc<Barrier>,
) -> std::thread::JoinHandle<zc_core::Result<zc_feed::publish::PublishReport>> {
    let (peer, dst) = (tb.peer_addr, SocketAddrV4::new(tb.host_addr, PORT));
    tb.spawn_in_peer(move || {
        let mut tx = open_sender(&TxSpec::new("recvmmsg", SocketAddrV4::new(peer, 0), dst))?;
        let mut server = if serve {
            Some(RecoveryServer::bind(
                SocketAddr::V4(SocketAddrV4::new(peer, REREQUEST_PORT)),
                cfg.session,
                1 << 17,
                1472,
            )?)
        } else {
            None
        };
        // Both lines start together, as one publisher's two copies would.
        start.wait();
        publish(tx.as_mut(), &cfg, server.as_mut(), &AtomicBool::new(false))
    })
    .unwrap()
}

struct Expect {
    total: u64,
    both_lost: u64,
    only_a: u64,
    only_b: u64,
}

fn expect(a: &PublishConfig, b: &PublishConfig) -> Expect {
    let pa = plan_packets(a);
    let pb = plan_packets(b);
    assert_eq!(pa.len(), pb.len(), "both lines cut the same packets");
    let mut e = Expect {
        total: 0,
        both_lost: 0,
        only_a: 0,
        only_b: 0,
    };
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!((x.0, x.1), (y.0, y.1));
        let n = u64::from(x.1);
        e.total += n;
        match (x.2, y.2) {
            (true, true) => e.both_lost += n,
            (false, true) => e.only_a += n,
            (true, false) => e.only_b += n,
            _ => {}
        }
    }
    e
}

/// Runs both lines and the receiver; returns the handler and the book.
fn run(
    name: &str,
    subnet: u8,
    a: PublishConfig,
    b: PublishConfig,
    serve: bool,
) -> (FeedHandler<MoldUdp64>, ItchSink, RecoveryClient) {
    let ta = Testbed::create(&TestbedConfig::new(&format!("{name}a"), subnet)).unwrap();
    let tbb = Testbed::create(&TestbedConfig::new(&format!("{name}b"), subnet + 1)).unwrap();
    let mut rx_a = open_receiver(&RxSpec::new(
        "recvmmsg",
        SocketAddrV4::new(ta.host_addr, PORT),
    ))
    .unwrap();
    let mut rx_b = open_receiver(&RxSpec::new(
        "uring",
        SocketAddrV4::new(tbb.host_addr, PORT),
    ))
    .unwrap();
    let mut client = RecoveryClient::new(
        SocketAddr::V4(SocketAddrV4::new(ta.host_addr, 0)),
        SocketAddr::V4(SocketAddrV4::new(ta.peer_addr, REREQUEST_PORT)),
    )
    .unwrap();
    let mut handler = FeedHandler::new(
        MoldUdp64::new(Some(a.session)),
        FeedConfig {
            start: Some(1),
            recovery: true,
            // Generous for a loaded test machine: B's copy may lag A's.
            line_wait_ns: 100_000_000,
            give_up_ns: 1_000_000_000,
            retry_ns: 20_000_000,
            tracker: TrackerConfig {
                max_gaps: 1 << 14,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let mut sink = ItchSink::new(book(), true);
    let start = Arc::new(Barrier::new(2));
    let ga = start_line(&ta, a, serve, Arc::clone(&start));
    let gb = start_line(&tbb, b, false, start);
    let stop = AtomicBool::new(false);
    let mut lines = [
        LineRx {
            line: Line::A,
            rx: rx_a.as_mut(),
            port: PORT,
        },
        LineRx {
            line: Line::B,
            rx: rx_b.as_mut(),
            port: PORT,
        },
    ];
    let started = Instant::now();
    receive(
        &mut lines,
        &mut handler,
        &mut sink,
        Some(&mut client),
        Until {
            finished: true,
            deadline: Some(started + Duration::from_secs(30)),
            idle: None,
            stop: &stop,
        },
        None,
    )
    .unwrap();
    assert!(
        handler.finished(),
        "the session did not finish in 30 s: {:?}",
        handler.stats()
    );
    let ra = ga.join().unwrap().unwrap();
    let rb = gb.join().unwrap().unwrap();
    assert_eq!(ra.packets, rb.packets);
    (handler, sink, client)
}

#[test]
fn independent_drops_on_two_veth_lines_deliver_exactly_and_recovery_fills_the_rest() {
    if !privileged_or_skip(
        "independent_drops_on_two_veth_lines_deliver_exactly_and_recovery_fills_the_rest",
    ) {
        return;
    }
    let a = cfg(DropPlan {
        every: Some(7),
        offset: 3,
        ..Default::default()
    });
    let b = cfg(DropPlan {
        every: Some(5),
        offset: 1,
        ..Default::default()
    });
    let e = expect(&a, &b);
    assert!(e.both_lost > 0 && e.only_a > 0 && e.only_b > 0);
    let (h, sink, _) = run("zcfd1", 61, a, b, true);
    let s = h.stats();
    assert_eq!(s.delivered, e.total, "{s:?}");
    assert_eq!((s.recovered, s.lost), (e.both_lost, 0), "{s:?}");
    assert_eq!(
        h.line_stats(Line::A).first_arrivals + h.line_stats(Line::B).first_arrivals + s.recovered,
        e.total
    );
    let (la, lb) = (h.line_stats(Line::A), h.line_stats(Line::B));
    // Messages both lines carried: exactly one of the two copies lost the race.
    let common = e.total - e.both_lost - e.only_a - e.only_b;
    assert_eq!(la.duplicates + lb.duplicates, common);
    assert_eq!(la.only_here, e.only_a);
    assert_eq!(lb.only_here, e.only_b);
    assert_eq!(la.refused.total() + lb.refused.total(), 0);
    assert_eq!(sink.errors().total(), 0);
    assert!(sink.book.trusted());
    assert_eq!(sink.latency().unwrap().summary().count, e.total);

    // Offline: the same session as a NASDAQ file, through the file path.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.itch");
    let mut gen = SessionGen::new(a.gen);
    let mut w = FileWriter::create(&path).unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..MESSAGES {
        let n = gen.next(0).encode(&mut buf).unwrap();
        w.write(&buf[..n]).unwrap();
    }
    for f in gen.close() {
        let n = f.encode(&mut buf).unwrap();
        w.write(&buf[..n]).unwrap();
    }
    w.finish().unwrap();
    let mut offline = ItchSink::new(book(), false);
    let r = replay_itch_file(&path, &mut offline).unwrap();
    assert_eq!(r.messages, e.total);
    assert_eq!(
        offline.book.digest(),
        sink.book.digest(),
        "online and offline books differ"
    );
    let mut on: Vec<_> = sink.book.orders().collect();
    let mut off: Vec<_> = offline.book.orders().collect();
    on.sort_unstable_by_key(|o| o.0);
    off.sort_unstable_by_key(|o| o.0);
    assert_eq!(on, off);
    assert!(!on.is_empty());
}

#[test]
fn with_the_server_gone_the_loss_is_reported_exactly_and_the_receiver_goes_on() {
    if !privileged_or_skip(
        "with_the_server_gone_the_loss_is_reported_exactly_and_the_receiver_goes_on",
    ) {
        return;
    }
    let a = cfg(DropPlan {
        every: Some(9),
        offset: 4,
        ..Default::default()
    });
    let b = cfg(DropPlan {
        every: Some(6),
        offset: 4,
        ..Default::default()
    });
    let e = expect(&a, &b);
    assert!(e.both_lost > 0);
    let (h, sink, client) = run("zcfd2", 63, a, b, false);
    let s = h.stats();
    assert_eq!(s.lost, e.both_lost, "{s:?}");
    assert_eq!(s.delivered + s.lost, e.total, "{s:?}");
    assert_eq!(s.recovered, 0);
    assert!(s.requests > 0);
    assert_eq!(sink.book.lost(), e.both_lost);
    assert!(!sink.book.trusted());
    // Requests went out and nobody answered: the kernel says so (port unreachable).
    let _ = client.send_errors();
}

//! The XDP generator on the veth testbed: every frame it builds is received
//! or counted as dropped, into the XDP sink and into a kernel socket, and a
//! paced feed with gaps, duplicates and reordering arrives exactly as planned.
//! Each test has its own testbed name and subnet (241–249).

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use zc_core::feed::{generate, FeedPlan, GenConfig, GenReport};
use zc_core::handler::{HandlerConfig, HandlerReport, MarketDataHandler};
use zc_core::sys::{monotonic_ns, privileged_or_skip};
use zc_core::{Receiver, RxBurst};
use zc_epoll::{RecvConfig, SocketApi, SocketReceiver};
use zc_testbed::{Testbed, TestbedConfig};
use zc_xdpgen::{GenCounters, XdpGenConfig, XdpGenerator, XdpSink};

const PORT: u16 = 9000;

/// The flat-out tests load both CPUs: one test at a time, so that a paced
/// test's receiving thread is not starved into dropping.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A testbed whose host end runs its receive work in a NAPI thread (left
/// unpinned: on a loaded machine a thread held to one CPU can be starved long
/// enough for the 256-entry veth ring to overflow).
fn testbed(name: &str, subnet: u8) -> Testbed {
    let tb = Testbed::create(&TestbedConfig::new(name, subnet)).unwrap();
    assert_eq!(tb.enable_threaded_napi().unwrap().len(), 1);
    tb
}

/// Runs `gen` through the XDP generator from the peer namespace.
fn generate_from_peer(
    tb: &Testbed,
    gen: GenConfig,
    stamp_at_send: bool,
) -> std::thread::JoinHandle<zc_core::Result<(GenReport, GenCounters)>> {
    let mut cfg = XdpGenConfig::new(
        &tb.peer_if,
        tb.peer_mac,
        tb.host_mac,
        SocketAddrV4::new(tb.peer_addr, 7000),
        SocketAddrV4::new(tb.host_addr, PORT),
    );
    cfg.payload_len = gen.payload_len;
    cfg.stamp_at_send = stamp_at_send;
    tb.spawn_in_peer(move || {
        let mut tx = XdpGenerator::open(&cfg)?;
        let report = generate(&mut tx, &gen, &AtomicBool::new(false))?;
        Ok((report, tx.counters()?))
    })
    .unwrap()
}

/// Polls `f` until it returns `want` or a second passes; returns the last value.
fn settle(want: u64, mut f: impl FnMut() -> u64) -> u64 {
    let t = Instant::now();
    loop {
        let v = f();
        if v == want || t.elapsed() > Duration::from_secs(1) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn flat_out_into_the_sink_every_frame_is_delivered_or_counted() {
    if !privileged_or_skip("flat_out_into_the_sink_every_frame_is_delivered_or_counted") {
        return;
    }
    let _one = serialize();
    let tb = testbed("zcxg1", 241);
    let sink = XdpSink::attach(&tb.host_if, PORT).unwrap();
    let plan = FeedPlan::new(300_000);
    let gen = GenConfig {
        plan,
        rate: None,
        symbols: 64,
        payload_len: 32,
        batch: 1024,
    };
    let (report, c) = generate_from_peer(&tb, gen, true).join().unwrap().unwrap();
    assert_eq!(report.sent, plan.expected().sent);
    assert_eq!(c.built, report.sent, "{c:?}");
    assert_eq!(c.delivered + c.ring_full, c.built, "{c:?}");
    let dropped = settle(c.delivered, || sink.dropped().unwrap());
    assert_eq!(dropped, c.delivered, "{c:?}");
    eprintln!(
        "flat out into the sink: {:.2} Mpps built, {c:?}",
        report.sent as f64 / report.elapsed.as_secs_f64() / 1e6
    );
}

/// Receives with `rx` into a handler until `want` messages came or a
/// receive came back empty `idle` after the last message.
fn receive(rx: &mut SocketReceiver, want: u64, idle: Duration) -> HandlerReport {
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(PORT),
        ..Default::default()
    });
    let mut last = Instant::now();
    while h.report().messages < want {
        let burst = rx.recv_burst(Some(Duration::from_millis(50))).unwrap();
        let now = monotonic_ns();
        for d in burst.iter() {
            h.on_datagram(&d, now);
        }
        if !burst.is_empty() {
            last = Instant::now();
        } else if last.elapsed() >= idle {
            break;
        }
    }
    h.report()
}

fn socket(tb: &Testbed, rcvbuf: usize) -> SocketReceiver {
    let mut cfg = RecvConfig::new(SocketApi::Recvmmsg, SocketAddr::from((tb.host_addr, PORT)));
    cfg.rcvbuf = Some(rcvbuf);
    SocketReceiver::open(cfg).unwrap()
}

#[test]
fn a_paced_feed_with_gaps_reaches_a_socket_exactly_as_planned() {
    if !privileged_or_skip("a_paced_feed_with_gaps_reaches_a_socket_exactly_as_planned") {
        return;
    }
    let _one = serialize();
    let tb = testbed("zcxg2", 242);
    let mut rx = socket(&tb, 32 << 20);
    let plan = FeedPlan {
        count: 5_000,
        first: u32::MAX - 2000,
        skip_every: Some(97),
        duplicate_every: Some(41),
        reorder_every: Some(53),
    };
    let gen = GenConfig {
        plan,
        rate: Some(5_000.0),
        symbols: 16,
        payload_len: 32,
        batch: 64,
    };
    let e = plan.expected();
    let gen = generate_from_peer(&tb, gen, false);
    let r = receive(&mut rx, e.sent, Duration::from_secs(3));
    let (report, c) = gen.join().unwrap().unwrap();
    assert_eq!(report.sent, e.sent);
    assert_eq!(
        c,
        GenCounters {
            built: e.sent,
            delivered: e.sent,
            ring_full: 0,
            runs: c.runs
        }
    );
    assert_eq!(rx.stats().kernel_drops, Some(0));
    assert_eq!(r.messages, e.sent);
    assert_eq!(r.seq.received, e.received);
    assert_eq!(r.seq.duplicates, e.duplicates);
    assert_eq!(r.seq.gaps, e.gaps);
    assert_eq!(r.seq.late, e.late);
    assert_eq!(r.seq.missing, e.missing);
    assert_eq!(
        r.drops.not_ours + r.drops.not_market_data + r.drops.malformed,
        0
    );
    // The timestamps are the open-loop schedule (5000 at 5 kpps: a second),
    // none later than its receive time.
    assert_eq!(r.latency.count, e.received);
    assert_eq!(r.clock_skew, 0);
    assert!(report.elapsed >= Duration::from_millis(900), "{report:?}");
}

#[test]
fn overload_into_a_socket_every_frame_is_received_or_counted() {
    if !privileged_or_skip("overload_into_a_socket_every_frame_is_received_or_counted") {
        return;
    }
    let _one = serialize();
    let tb = testbed("zcxg3", 243);
    // A small buffer, so that the socket overflows too.
    let mut rx = socket(&tb, 256 << 10);
    let plan = FeedPlan::new(200_000);
    let gen = GenConfig {
        plan,
        rate: None,
        symbols: 16,
        payload_len: 64,
        batch: 1024,
    };
    let gen = generate_from_peer(&tb, gen, true);
    let r = receive(&mut rx, plan.expected().sent, Duration::from_millis(500));
    let (_, c) = gen.join().unwrap().unwrap();
    let socket_drops = rx.stats().kernel_drops.unwrap();
    assert_eq!(c.built, plan.expected().sent);
    assert_eq!(c.delivered + c.ring_full, c.built, "{c:?}");
    assert_eq!(r.messages + socket_drops, c.delivered, "{c:?} {r:?}");
    assert_eq!(r.seq.duplicates, 0);
    assert_eq!(r.drops.malformed, 0);
    eprintln!(
        "overload: built {}, refused by the veth ring {}, dropped by the socket {socket_drops}, received {}",
        c.built, c.ring_full, r.messages
    );
}

#[test]
fn a_receiving_end_without_napi_is_a_clear_error() {
    if !privileged_or_skip("a_receiving_end_without_napi_is_a_clear_error") {
        return;
    }
    let _one = serialize();
    // No XDP program, GRO off: the host end has no NAPI and veth would drop
    // every frame without counting it.
    let tb = Testbed::create(&TestbedConfig::new("zcxg4", 244)).unwrap();
    let gen = GenConfig {
        plan: FeedPlan::new(10),
        rate: None,
        symbols: 1,
        payload_len: 32,
        batch: 10,
    };
    let e = generate_from_peer(&tb, gen, true)
        .join()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), zc_core::ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("does not take XDP frames"), "{e}");
    assert!(e.fix().unwrap().contains("gro on"), "{e:?}");
}

//! The feed handler carries zc's 32-byte message as well as MoldUDP64: the
//! [`Md32`] protocol over two veth pairs (line A on recvmmsg, line B on
//! io_uring), each line sent by zc-core's own generator from its own
//! namespace with its own skips, duplicates and swaps, numbered across the
//! u32 wrap. Every number either line sent is delivered exactly once and in
//! order; the numbers both lines skipped are reported lost, exactly.

use std::collections::HashSet;
use std::net::SocketAddrV4;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use zc::{open_receiver, open_sender, RxSpec, TxSpec};
use zc_core::feed::{generate, FeedPlan, GenConfig};
use zc_core::md::MarketData;
use zc_core::sys::privileged_or_skip;
use zc_feed::feed::{FeedConfig, FeedHandler, Line, Sink};
use zc_feed::online::{receive, LineRx, Until};
use zc_feed::protocol::Md32;
use zc_feed::seq::TrackerConfig;
use zc_testbed::{Testbed, TestbedConfig};

const PORT: u16 = 9420;
const COUNT: u64 = 20_000;
/// 5,000 numbers before the wrap, 15,000 after it.
const FIRST: u32 = u32::MAX - 4_999;

/// Records what the handler delivers and gives up.
#[derive(Default)]
struct Record {
    /// The u32 number carried by each delivered message, in delivery order.
    delivered: Vec<u32>,
    /// The widened numbers, in delivery order.
    widened: Vec<u64>,
    lost: u64,
}

impl Sink for Record {
    fn message(&mut self, seq: u64, msg: &[u8], _now_ns: u64) {
        self.delivered
            .push(MarketData::peek_seq(msg).expect("the handler delivers whole messages"));
        self.widened.push(seq);
    }

    fn lost(&mut self, _first: u64, count: u64) {
        self.lost += count;
    }
}

fn start_line(
    tb: &Testbed,
    plan: FeedPlan,
    start: Arc<Barrier>,
) -> std::thread::JoinHandle<zc_core::Result<zc_core::feed::GenReport>> {
    let (peer, dst) = (tb.peer_addr, SocketAddrV4::new(tb.host_addr, PORT));
    tb.spawn_in_peer(move || {
        let mut tx = open_sender(&TxSpec::new("recvmmsg", SocketAddrV4::new(peer, 0), dst))?;
        start.wait();
        let cfg = GenConfig {
            plan,
            rate: Some(40_000.0),
            symbols: 16,
            payload_len: 32,
            batch: 16,
        };
        generate(tx.as_mut(), &cfg, &AtomicBool::new(false))
    })
    .unwrap()
}

#[test]
fn md32_lines_a_and_b_merge_exactly_across_the_wrap() {
    if !privileged_or_skip("md32_lines_a_and_b_merge_exactly_across_the_wrap") {
        return;
    }
    let plan_a = FeedPlan {
        first: FIRST,
        skip_every: Some(7),
        duplicate_every: Some(11),
        ..FeedPlan::new(COUNT)
    };
    let plan_b = FeedPlan {
        first: FIRST,
        skip_every: Some(5),
        reorder_every: Some(13),
        ..FeedPlan::new(COUNT)
    };
    let a: HashSet<u32> = plan_a.sends().collect();
    let b: HashSet<u32> = plan_b.sends().collect();
    // Every number either line sent, in the order of the number line.
    let expected: Vec<u32> = (0..COUNT)
        .map(|i| FIRST.wrapping_add(i as u32))
        .filter(|n| a.contains(n) || b.contains(n))
        .collect();
    let both_skipped = COUNT - expected.len() as u64;
    assert!(both_skipped > 0 && expected.len() < a.len() + b.len());

    let ta = Testbed::create(&TestbedConfig::new("zcmda", 186)).unwrap();
    let tbb = Testbed::create(&TestbedConfig::new("zcmdb", 187)).unwrap();
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
    let mut handler = FeedHandler::new(
        Md32::default(),
        FeedConfig {
            // Generous for a loaded test machine, where one line's generator
            // can run a second ahead of the other's: a gap waits that long for
            // the other line's copy, and thousands of them are open meanwhile.
            line_wait_ns: 2_000_000_000,
            tracker: TrackerConfig {
                max_gaps: 1 << 14,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let mut sink = Record::default();
    let start = Arc::new(Barrier::new(2));
    let ga = start_line(&ta, plan_a, Arc::clone(&start));
    let gb = start_line(&tbb, plan_b, start);
    let stop = AtomicBool::new(false);
    receive(
        &mut [
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
        ],
        &mut handler,
        &mut sink,
        None,
        Until {
            // The 32-byte feed has no end of session: stop once both lines
            // went quiet (the last number is sent on both).
            finished: false,
            deadline: Some(Instant::now() + Duration::from_secs(20)),
            idle: Some(Duration::from_secs(1)),
            stop: &stop,
        },
        None,
    )
    .unwrap();
    // Both lines are done: what is still missing was skipped by both.
    handler.poll(u64::MAX / 2, &mut sink, &mut |_| {});
    let ra = ga.join().unwrap().unwrap();
    let rb = gb.join().unwrap().unwrap();
    let (pa, pb) = (plan_a.expected(), plan_b.expected());
    assert_eq!((ra.sent, rb.sent), (pa.sent, pb.sent));

    assert_eq!(sink.delivered.len(), expected.len());
    assert!(
        sink.delivered == expected,
        "every number either line sent, once, in order"
    );
    assert!(
        sink.widened.windows(2).all(|w| w[1] > w[0]),
        "the widened numbers rise across the wrap"
    );
    let s = handler.stats();
    assert_eq!(
        (s.delivered, s.lost, sink.lost),
        (expected.len() as u64, both_skipped, both_skipped),
        "{s:?}"
    );
    let (la, lb) = (handler.line_stats(Line::A), handler.line_stats(Line::B));
    assert_eq!((la.messages, lb.messages), (pa.sent, pb.sent));
    assert_eq!(
        (la.refused.total(), lb.refused.total()),
        (0, 0),
        "{la:?} {lb:?}"
    );
    // Each line's own gaps are what it skipped (and, on B, its swaps).
    assert_eq!(
        (la.seq.missing, lb.seq.missing),
        (pa.missing, pb.missing),
        "{la:?} {lb:?}"
    );
    assert_eq!(
        (la.only_here, lb.only_here),
        (
            a.difference(&b).count() as u64,
            b.difference(&a).count() as u64
        ),
        "{la:?} {lb:?}"
    );
}

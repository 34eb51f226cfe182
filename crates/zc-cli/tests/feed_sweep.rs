//! Every backend in this build carries the ITCH feed over MoldUDP64 on the
//! veth testbed with exact counts: the publisher (recvmmsg sender, in the
//! peer namespace) leaves out every 9th packet; the receiver must deliver
//! every other message once and in order, report exactly the messages of the
//! left-out packets as lost (one gap per packet), and build the same book
//! from what it got on every backend.

use std::net::SocketAddrV4;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use zc::{enabled_backends, open_receiver, open_sender, RxSpec, TxSpec};
use zc_core::sys::{pin_current_thread, privileged_or_skip};
use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line};
use zc_feed::gen::GenConfig;
use zc_feed::mold::Session;
use zc_feed::online::{receive, LineRx, Until};
use zc_feed::protocol::MoldUdp64;
use zc_feed::publish::{plan_packets, publish, DropPlan, PublishConfig};
use zc_feed::sink::ItchSink;
use zc_testbed::{Testbed, TestbedConfig};

const PORT: u16 = 9310;

#[test]
fn every_backend_carries_itch_with_exact_counts() {
    if !privileged_or_skip("every_backend_carries_itch_with_exact_counts") {
        return;
    }
    pin_current_thread(1).unwrap();
    let cfg = PublishConfig {
        drops: DropPlan {
            every: Some(9),
            offset: 4,
            ..Default::default()
        },
        linger: Duration::from_millis(100),
        ..PublishConfig::new(
            Session::new("ZCSWEEP001").unwrap(),
            GenConfig {
                instruments: 30,
                seed: 5,
                ..Default::default()
            },
            20_000,
            Some(40_000.0),
        )
    };
    let plan = plan_packets(&cfg);
    let total: u64 = plan.iter().map(|p| u64::from(p.1)).sum();
    let dropped: u64 = plan.iter().filter(|p| p.2).map(|p| u64::from(p.1)).sum();
    let dropped_packets = plan.iter().filter(|p| p.2).count() as u64;
    let mut digests = Vec::new();
    for (i, b) in enabled_backends().enumerate() {
        let tb = Testbed::create(&TestbedConfig::new(&format!("zcfs{i}"), 170 + i as u8)).unwrap();
        let mut spec = RxSpec::new(b.name, SocketAddrV4::new(tb.host_addr, PORT));
        if b.needs_interface {
            spec.interface = Some(tb.host_if.clone());
        }
        let mut rx = open_receiver(&spec).unwrap_or_else(|e| panic!("{}: {e}", b.name));
        let (peer, dst) = (tb.peer_addr, SocketAddrV4::new(tb.host_addr, PORT));
        let gen = tb
            .spawn_in_peer(move || {
                pin_current_thread(0)?;
                let mut tx =
                    open_sender(&TxSpec::new("recvmmsg", SocketAddrV4::new(peer, 0), dst))?;
                publish(tx.as_mut(), &cfg, None, &AtomicBool::new(false))
            })
            .unwrap();
        let mut h = FeedHandler::new(
            MoldUdp64::new(Some(cfg.session)),
            FeedConfig {
                start: Some(1),
                line_wait_ns: 50_000_000,
                ..Default::default()
            },
        );
        let mut sink = ItchSink::new(
            BookConfig {
                max_orders: 1 << 16,
                max_instruments: 64,
                ..Default::default()
            },
            true,
        );
        let stop = AtomicBool::new(false);
        receive(
            &mut [LineRx {
                line: Line::A,
                rx: rx.as_mut(),
                port: PORT,
            }],
            &mut h,
            &mut sink,
            None,
            Until {
                finished: true,
                deadline: Some(Instant::now() + Duration::from_secs(20)),
                idle: None,
                stop: &stop,
            },
            None,
        )
        .unwrap();
        gen.join().unwrap().unwrap();
        let s = h.stats();
        let l = h.line_stats(Line::A);
        assert_eq!(
            (
                s.delivered,
                s.lost,
                l.seq.gaps,
                l.refused.total(),
                sink.errors().total()
            ),
            (total - dropped, dropped, dropped_packets, 0, 0),
            "{}: {s:?} {l:?}",
            b.name
        );
        assert_eq!(sink.book.lost(), dropped);
        digests.push((b.name, sink.book.digest()));
        drop(rx);
        drop(tb);
    }
    assert!(
        digests.windows(2).all(|w| w[0].1 == w[1].1),
        "every backend builds the same book: {digests:?}"
    );
}

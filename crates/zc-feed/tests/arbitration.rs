//! The feed handler's rules on real MoldUDP64 packets, in process: A/B
//! arbitration with independent drops, recovery of what both lines lost,
//! exact loss without a server, the hold buffer's bound, bad input counted
//! by reason. (The same rules over veth pairs: `veth.rs`.)

use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line, Sink};
use zc_feed::gen::{GenConfig, Packer, SessionGen};
use zc_feed::mold::{self, Refusal, Session};
use zc_feed::protocol::MoldUdp64;
use zc_feed::recovery::{answer, Retention};
use zc_feed::seq::TrackerConfig;
use zc_feed::sink::ItchSink;

/// Collects what is delivered, checking order and uniqueness as it goes.
#[derive(Default)]
struct Ordered {
    next: u64,
    messages: Vec<Vec<u8>>,
    lost: Vec<(u64, u64)>,
}

impl Sink for Ordered {
    fn message(&mut self, seq: u64, msg: &[u8], _now: u64) {
        if self.next == 0 {
            self.next = seq;
        }
        assert_eq!(seq, self.next, "delivered out of order or twice");
        self.next += 1;
        self.messages.push(msg.to_vec());
    }
    fn lost(&mut self, first: u64, count: u64) {
        assert_eq!(first, self.next, "loss reported out of order");
        self.next += count;
        self.lost.push((first, count));
    }
}

/// Every message, once, in order (reports the first difference, not the lists).
fn same(got: &[Vec<u8>], want: &[Vec<u8>]) {
    let first_diff = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_diff.is_none(),
        "delivered {} of {} messages, first difference at {first_diff:?}",
        got.len(),
        want.len()
    );
}

fn session() -> Session {
    Session::new("ZCTEST0001").unwrap()
}

/// The session's packets and every message, in order.
fn packets(messages: u64, per_packet: u16) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut gen = SessionGen::new(GenConfig {
        instruments: 20,
        seed: 3,
        ..Default::default()
    });
    let mut packer = Packer::new(session(), 1472, per_packet);
    let mut out = Vec::new();
    let mut all = Vec::new();
    let mut buf = [0u8; 64];
    for i in 0..messages {
        let n = gen.next(i).encode(&mut buf).unwrap();
        all.push(buf[..n].to_vec());
        packer.push(&buf[..n], &mut |_, p| out.push(p.to_vec()));
    }
    packer.flush(&mut |_, p| out.push(p.to_vec()));
    (out, all)
}

fn cfg() -> FeedConfig {
    FeedConfig {
        start: Some(1),
        tracker: TrackerConfig {
            max_gaps: 4096,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn independent_drops_on_two_lines_deliver_everything_once_in_order() {
    let (pkts, all) = packets(20_000, 8);
    let mut h = FeedHandler::new(MoldUdp64::new(None), cfg());
    let mut sink = Ordered::default();
    let (mut only_a, mut only_b) = (0u64, 0u64);
    for (i, p) in pkts.iter().enumerate() {
        let n = u64::from(mold::Packet::new_checked(p).unwrap().message_count());
        let a = i % 7 != 3;
        let b = i % 5 != 1 || i % 7 == 3;
        // B lags A by a packet now and then: arrival order varies.
        if a {
            h.on_datagram(Line::A, p, i as u64, &mut sink);
        }
        if b {
            h.on_datagram(Line::B, p, i as u64, &mut sink);
        }
        if a && !b {
            only_a += n;
        }
        if b && !a {
            only_b += n;
        }
    }
    same(&sink.messages, &all);
    let s = h.stats();
    assert_eq!((s.delivered, s.lost, s.seq.gaps), (20_000, 0, 0));
    let (la, lb) = (h.line_stats(Line::A), h.line_stats(Line::B));
    assert_eq!((la.only_here, lb.only_here), (only_a, only_b));
    assert_eq!(la.first_arrivals + lb.first_arrivals, 20_000);
    assert!(
        la.seq.gaps > 0 && lb.seq.gaps > 0,
        "each line saw its own gaps"
    );
}

#[test]
fn what_both_lines_lost_is_recovered_and_without_a_server_reported_exactly() {
    let (pkts, all) = packets(10_000, 8);
    let both_lost = |i: usize| i % 7 == 3 && i % 5 == 3;
    let lost_msgs: u64 = pkts
        .iter()
        .enumerate()
        .filter(|(i, _)| both_lost(*i))
        .map(|(_, p)| u64::from(mold::Packet::new_checked(p).unwrap().message_count()))
        .sum();
    assert!(lost_msgs > 0);
    let mut kept = Retention::new(1 << 16, 64);
    for (i, m) in all.iter().enumerate() {
        kept.record(i as u64 + 1, m);
    }
    for with_server in [true, false] {
        let mut h = FeedHandler::new(
            MoldUdp64::new(None),
            FeedConfig {
                recovery: with_server,
                line_wait_ns: 10,
                give_up_ns: 1000,
                retry_ns: 100,
                ..cfg()
            },
        );
        let mut sink = Ordered::default();
        let mut requests = Vec::new();
        let mut now = 0;
        for (i, p) in pkts.iter().enumerate() {
            now += 1;
            if i % 7 != 3 {
                h.on_datagram(Line::A, p, now, &mut sink);
            }
            if i % 5 != 3 {
                h.on_datagram(Line::B, p, now, &mut sink);
            }
            h.poll(now, &mut sink, &mut |r| requests.push(r));
            // The server answers with ordinary packets, arriving a little later.
            let mut buf = vec![0u8; 1472];
            for r in requests.drain(..) {
                let mut answers = Vec::new();
                answer(&kept, session(), &r, 4096, &mut buf, &mut |a| {
                    answers.push(a.to_vec())
                });
                for a in answers {
                    h.on_datagram(Line::Recovery, &a, now, &mut sink);
                }
            }
        }
        h.poll(now + 10_000, &mut sink, &mut |_| {});
        let s = h.stats();
        if with_server {
            same(&sink.messages, &all);
            assert_eq!((s.recovered, s.lost), (lost_msgs, 0));
            assert!(s.requests > 0);
        } else {
            assert_eq!(s.lost, lost_msgs, "the loss, exactly");
            assert_eq!(s.delivered + s.lost, 10_000);
            assert_eq!(sink.lost.iter().map(|l| l.1).sum::<u64>(), lost_msgs);
            assert_eq!(s.requests, 0);
        }
    }
}

#[test]
fn more_open_gaps_than_remembered_are_reported_lost_exactly() {
    // One message a packet; packets 2, 4, 6 and 8 (0-based) do not arrive,
    // and the handler remembers 2 open gaps: the 3rd and 4th push the 1st
    // and 2nd out, which must then be reported lost at once, in order.
    let (pkts, all) = packets(12, 1);
    let mut h = FeedHandler::new(
        MoldUdp64::new(None),
        FeedConfig {
            line_wait_ns: 1_000_000,
            tracker: TrackerConfig {
                max_gaps: 2,
                ..Default::default()
            },
            ..cfg()
        },
    );
    let mut sink = Ordered::default();
    let dropped = |i: usize| [2, 4, 6, 8].contains(&i);
    for (i, p) in pkts.iter().enumerate() {
        if !dropped(i) {
            h.on_datagram(Line::A, p, 0, &mut sink);
        }
    }
    assert_eq!(
        sink.lost,
        [(3, 1), (5, 1)],
        "evicted gaps, reported at once"
    );
    assert_eq!(
        sink.messages.len(),
        4,
        "delivered up to the oldest open gap"
    );
    // A late copy of an evicted number is not delivered after its loss.
    h.on_datagram(Line::A, &pkts[2], 0, &mut sink);
    h.poll(2_000_000, &mut sink, &mut |_| {});
    assert_eq!(sink.lost, [(3, 1), (5, 1), (7, 1), (9, 1)]);
    let s = h.stats();
    assert_eq!((s.delivered, s.lost), (8, 4), "{s:?}");
    let want: Vec<Vec<u8>> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped(*i))
        .map(|(_, m)| m.clone())
        .collect();
    same(&sink.messages, &want);
}

#[test]
fn the_hold_buffer_is_bounded_and_what_it_could_not_hold_is_recovered() {
    let (pkts, all) = packets(3_000, 10);
    let mut kept = Retention::new(1 << 16, 64);
    for (i, m) in all.iter().enumerate() {
        kept.record(i as u64 + 1, m);
    }
    let mut h = FeedHandler::new(
        MoldUdp64::new(None),
        FeedConfig {
            hold_messages: 100,
            recovery: true,
            line_wait_ns: 1_000_000,
            ..cfg()
        },
    );
    let mut sink = Ordered::default();
    // Packet 0 is lost; the next 1000 messages arrive while it is missing.
    for p in &pkts[1..101] {
        h.on_datagram(Line::A, p, 1, &mut sink);
    }
    let s = h.stats();
    assert_eq!(s.held, 90, "10 missing, then 90 fit in 100 slots");
    assert_eq!(s.hold_overflow, 1000 - 90);
    assert_eq!(s.delivered, 0);
    // Recovery brings everything missing.
    let mut requests = Vec::new();
    h.poll(2_000_000, &mut sink, &mut |r| requests.push(r));
    let mut buf = vec![0u8; 1472];
    let mut guard = 0;
    while !requests.is_empty() && guard < 1000 {
        guard += 1;
        for r in std::mem::take(&mut requests) {
            let mut answers = Vec::new();
            answer(&kept, session(), &r, 4096, &mut buf, &mut |a| {
                answers.push(a.to_vec())
            });
            for a in answers {
                h.on_datagram(Line::Recovery, &a, 3_000_000, &mut sink);
            }
        }
        h.poll(3_000_000 + guard * 25_000_000, &mut sink, &mut |r| {
            requests.push(r)
        });
    }
    for p in &pkts[101..] {
        h.on_datagram(Line::A, p, 9_000_000_000, &mut sink);
    }
    same(&sink.messages, &all);
    assert_eq!(h.stats().lost, 0);
}

#[test]
fn bad_input_is_counted_by_reason_and_the_stream_survives() {
    let (pkts, all) = packets(200, 5);
    let mut h = FeedHandler::new(MoldUdp64::new(Some(session())), cfg());
    let mut sink = ItchSink::new(
        BookConfig {
            max_orders: 1 << 12,
            max_instruments: 64,
            ..Default::default()
        },
        false,
    );
    let p0 = &pkts[0];
    h.on_datagram(Line::A, &p0[..10], 0, &mut sink); // too short
    let mut lie = p0.clone();
    lie[19] += 1; // count past the blocks
    h.on_datagram(Line::A, &lie, 0, &mut sink);
    let mut lie = p0.clone();
    lie[20] = 0xff; // first block runs past the end
    h.on_datagram(Line::A, &lie, 0, &mut sink);
    let mut other = p0.clone();
    other[0] = b'X'; // wrong session
    h.on_datagram(Line::A, &other, 0, &mut sink);
    let mut trailing = p0.clone();
    trailing.push(0);
    h.on_datagram(Line::A, &trailing, 0, &mut sink);
    let mut overflow = p0.clone();
    overflow[10..18].copy_from_slice(&u64::MAX.to_be_bytes());
    h.on_datagram(Line::A, &overflow, 0, &mut sink);
    let r = h.line_stats(Line::A).refused;
    assert_eq!(
        [
            r.get(Refusal::TooShort),
            r.get(Refusal::CountPastEnd),
            r.get(Refusal::BlockPastEnd),
            r.get(Refusal::WrongSession),
            r.get(Refusal::TrailingBytes),
            r.get(Refusal::BadSequence)
        ],
        [1, 1, 1, 1, 1, 1]
    );
    // The real packets, then one again (a duplicate, going backwards).
    for p in &pkts {
        h.on_datagram(Line::A, p, 0, &mut sink);
    }
    h.on_datagram(Line::A, &pkts[1], 0, &mut sink);
    // An unknown ITCH type inside a valid packet: skipped by its length.
    let mut buf = vec![0u8; 100];
    let mut w = mold::PacketWriter::new(&mut buf, session(), all.len() as u64 + 1).unwrap();
    w.push(b"z unknown type");
    let n = w.len();
    h.on_datagram(Line::A, &buf[..n], 0, &mut sink);
    assert_eq!(sink.errors().unknown_type, 1);
    let s = h.stats();
    assert_eq!(s.delivered, all.len() as u64 + 1);
    assert_eq!(h.line_stats(Line::A).duplicates, 5);
    assert!(sink.book.trusted());
}

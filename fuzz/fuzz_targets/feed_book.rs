//! The feed handler and the order book on arbitrary datagrams from two lines
//! and recovery: never a panic, delivery stays in order and bounded, and the
//! book's tables stay within their configured sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use zc_feed::book::BookConfig;
use zc_feed::feed::{FeedConfig, FeedHandler, Line};
use zc_feed::protocol::MoldUdp64;
use zc_feed::seq::TrackerConfig;
use zc_feed::sink::ItchSink;

thread_local! {
    // One handler and book across inputs: state accumulates like a long feed.
    static FEED: RefCell<(FeedHandler<MoldUdp64>, ItchSink, u64)> = RefCell::new((
        FeedHandler::new(
            MoldUdp64::new(None),
            FeedConfig {
                hold_messages: 64,
                recovery: true,
                tracker: TrackerConfig { max_gaps: 8, resync_window: Some(1000), resync_confirm: 2 },
                ..Default::default()
            },
        ),
        ItchSink::new(BookConfig { max_orders: 256, max_instruments: 16 , ..Default::default()}, false),
        0,
    ));
}

fuzz_target!(|data: &[u8]| {
    FEED.with_borrow_mut(|(h, sink, now)| {
        // The input is a list of datagrams: [line byte][u16 length][bytes]...
        let mut rest = data;
        while rest.len() >= 3 {
            let line = match rest[0] % 3 {
                0 => Line::A,
                1 => Line::B,
                _ => Line::Recovery,
            };
            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
            let (d, tail) = rest[3..].split_at(len);
            rest = tail;
            *now += 1_000_000;
            h.on_datagram(line, d, *now, sink);
            h.poll(*now, sink, &mut |r| assert!(r.count > 0));
        }
        let s = h.stats();
        assert!(s.held <= 64);
        assert!(h.missing().count() <= 8);
        assert!(sink.book.order_count() <= 256);
    });
});

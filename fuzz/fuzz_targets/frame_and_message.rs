//! Frame parsing, message decoding and the handler on arbitrary bytes:
//! none may panic, and whatever parses must re-encode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::MarketData;
use zc_core::seq::TrackerConfig;
use zc_core::wire::parse_udp_frame;

thread_local! {
    // One handler across inputs: its state (tracker, symbol table) then sees
    // long sequences of arbitrary messages, and its allocation is not per run.
    static HANDLER: RefCell<MarketDataHandler> =
        RefCell::new(MarketDataHandler::new(HandlerConfig {
            max_symbols: 8,
            // A small window, so that arbitrary numbers reach the resynchronisation guard.
            tracker: TrackerConfig { max_gaps: 4, resync_window: Some(64), resync_confirm: 2 },
            ..Default::default()
        }));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = parse_udp_frame(data) {
        let _ = (
            frame.src(),
            frame.dst(),
            frame.eth.vlan_ids(),
            frame.ip.options(),
        );
        assert!(frame.payload().len() <= data.len());
        if let Ok(m) = MarketData::decode(frame.payload()) {
            let mut out = [0u8; 32];
            m.encode(&mut out).unwrap();
            assert_eq!(&out[..], &frame.payload()[..32]);
        }
    }
    HANDLER.with_borrow_mut(|h| {
        h.on_frame(data, u64::MAX / 2);
        // The same bytes as bare payloads, 32 bytes at a time, through the tracker.
        let src = "198.18.0.1:1".parse().unwrap();
        for chunk in data.chunks(32) {
            let d = zc_core::Datagram {
                payload: chunk,
                src,
                dst: src,
                rx_timestamp: None,
            };
            h.on_datagram(&d, u64::MAX / 2);
        }
        let r = h.report();
        assert!(r.symbols <= 8);
        assert!(h.tracker().missing_ranges().count() <= 4);
    });
});

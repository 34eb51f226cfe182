//! Frame parsing, message decoding and the handler on arbitrary bytes:
//! none may panic, and whatever parses must re-encode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::MarketData;
use zc_core::wire::parse_udp_frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = parse_udp_frame(data) {
        let _ = (frame.src(), frame.dst(), frame.eth.vlan_ids(), frame.ip.options());
        assert!(frame.payload().len() <= data.len());
        if let Ok(m) = MarketData::decode(frame.payload()) {
            let mut out = [0u8; 32];
            m.encode(&mut out).unwrap();
            assert_eq!(&out[..], &frame.payload()[..32]);
        }
    }
    let mut h = MarketDataHandler::new(HandlerConfig { max_symbols: 8, max_gaps: 4, ..Default::default() });
    h.on_frame(data, u64::MAX / 2);
    // The same bytes as a bare payload, a 32-byte message at a time.
    for chunk in data.chunks(32) {
        if let Ok(m) = MarketData::decode(chunk) {
            let _ = h.tracker();
            let _ = m.seq;
        }
    }
    let _ = h.report();
});

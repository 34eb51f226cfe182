//! MoldUDP64 downstream and request packets on arbitrary bytes: never a
//! panic, an accepted packet's blocks lie inside it and add up to it, and a
//! parsed request re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zc_feed::mold::{Packet, Request, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let mut bytes = HEADER_LEN;
        let mut n = 0u64;
        for m in p.messages() {
            bytes += 2 + m.len();
            n += 1;
        }
        assert_eq!(n, u64::from(p.message_count()));
        assert_eq!(bytes, data.len());
        assert!(p.sequence().checked_add(n).is_some());
    }
    if let Ok(r) = Request::parse(data) {
        assert_eq!(&r.encode()[..], data);
    }
});

//! ITCH 5.0 decoding on arbitrary bytes: never a panic, and whatever decodes
//! re-encodes from its fields to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zc_feed::itch::{decode, message_len};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        assert_eq!(Some(data.len()), message_len(m.tag()));
        let mut out = [0u8; 64];
        let n = m.fields().encode(&mut out).unwrap();
        // The timestamp keeps 48 bits: the encoding is exact.
        assert_eq!(&out[..n], data);
    }
});

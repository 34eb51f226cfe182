//! The capture reader on arbitrary bytes as a pcap or pcapng file: never a
//! panic and never a read past the input; a bad record is an error that ends
//! the file, and every datagram handed out lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zc_capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new("fuzz", std::io::Cursor::new(data)) else {
        return;
    };
    while let Ok(Some(u)) = reader.next_udp() {
        assert!(u.payload.len() <= data.len());
    }
});

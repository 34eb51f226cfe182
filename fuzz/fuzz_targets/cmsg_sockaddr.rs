//! The shared readers of kernel-written bytes in `zc-os`: the control-message
//! walk (and the payloads zc reads from it) and the socket-address decoder,
//! on arbitrary bytes.
//!
//! Properties: no panic; every message the walk yields lies inside the input
//! and starts after the previous one; at most one message per header's worth
//! of bytes; a decoded address agrees with the bytes it came from.
//!
//! Input: the first byte says how many of the following bytes are a name
//! (mod 40); the rest is control data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use zc_os::{cmsg, sockaddr};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split % 40).min(rest.len());
    let (name, control) = rest.split_at(split);

    if let Some(addr) = sockaddr::decode(name) {
        let port = u16::from_be_bytes([name[2], name[3]]);
        assert_eq!(addr.port(), port);
        match addr {
            SocketAddr::V4(a) => assert_eq!(a.ip().octets(), name[4..8]),
            SocketAddr::V6(a) => assert_eq!(a.ip().octets(), name[8..24]),
        }
    }

    let start = control.as_ptr() as usize;
    let end = start + control.len();
    let mut last = start;
    let mut count = 0usize;
    for c in cmsg::iter(control) {
        let at = c.data.as_ptr() as usize;
        assert!(at >= last && at + c.data.len() <= end, "message outside the buffer");
        last = at;
        count += 1;
        let _ = cmsg::ExtendedErr::from_cmsg(&c);
        if let Some(t) = cmsg::timestamping(c.data) {
            assert_ne!(t.ns, 0, "zero means no stamp");
        }
    }
    assert!(count <= control.len() / cmsg::space(0) + 1);
    let _ = cmsg::receive_info(control);
});

//! The io_uring receiver's reading of a filled provided buffer
//! (`io_uring_recvmsg_out`, name, control data, payload) on arbitrary bytes,
//! with and without timestamp control space.
//!
//! Properties: the payload the burst will hand out (`header_len..` + len) lies
//! inside the bytes the kernel wrote, as the `unsafe` slice in `UringBurst::get`
//! assumes; its length, the truncation flag, the source address and the
//! timestamp agree with the header fields.
//!
//! Input: one byte (bit 0: timestamps on), then the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use zc_uring::fuzzing::{parse_received, recv_msghdr};
use zc_uring::RxConfig;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, buf)) = data.split_first() else {
        return;
    };
    let mut cfg = RxConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.rx_timestamps = flags & 1 != 0;
    let hdr = recv_msghdr(&cfg);
    let header_len = cfg.header_len();
    let Some(r) = parse_received(buf, &hdr) else {
        assert!(
            buf.len() < header_len,
            "refused a buffer holding a whole header"
        );
        return;
    };
    assert!(buf.len() >= header_len);
    assert!(
        header_len + r.len as usize <= buf.len(),
        "payload runs past the bytes written"
    );
    let (namelen, payloadlen, msg_flags) = (u32_at(buf, 0), u32_at(buf, 8), u32_at(buf, 12));
    assert_eq!(
        r.len as usize,
        (payloadlen as usize).min(buf.len() - header_len)
    );
    assert_eq!(r.truncated, msg_flags & libc::MSG_TRUNC as u32 != 0);

    let name_room = hdr.msg_namelen as usize;
    let name = &buf[16..16 + (namelen as usize).min(name_room)];
    let family = name
        .get(..2)
        .map(|f| i32::from(u16::from_ne_bytes([f[0], f[1]])));
    let port = |n: &[u8]| u16::from_be_bytes([n[2], n[3]]);
    let expected = match family {
        Some(libc::AF_INET) if name.len() >= 8 => {
            let ip: [u8; 4] = name[4..8].try_into().unwrap();
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port(name)))
        }
        Some(libc::AF_INET6) if name.len() >= 28 => {
            let ip: [u8; 16] = name[8..24].try_into().unwrap();
            let flow = u32::from_be_bytes(name[4..8].try_into().unwrap());
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port(name),
                flow,
                u32_at(name, 24),
            ))
        }
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    assert_eq!(r.src, expected);

    match r.ts {
        None => {}
        Some(ts) => {
            assert!(cfg.rx_timestamps, "a timestamp without control space");
            assert!(
                matches!(ts.clock, zc_core::Clock::Realtime | zc_core::Clock::NicHardware),
                "a {:?} stamp from a socket",
                ts.clock
            );
            assert_ne!(ts.ns, 0, "zero means no stamp");
            // The stamp is a timespec lying, 8-byte aligned, inside the
            // control space (after the 16-byte header and the name): never
            // read from the name or the payload.
            let control = 16 + name_room;
            let room = header_len - control;
            let found = (control..control + room)
                .step_by(8)
                .filter(|at| at + 16 <= control + room)
                .any(|at| {
                    let sec = i64::from_ne_bytes(buf[at..at + 8].try_into().unwrap());
                    let nsec = i64::from_ne_bytes(buf[at + 8..at + 16].try_into().unwrap());
                    (0..1_000_000_000).contains(&nsec)
                        && ts.ns as i128 == sec as i128 * 1_000_000_000 + nsec as i128
                });
            assert!(found, "stamp {} not in the control space", ts.ns);
        }
    }
});

//! Socket addresses and control messages as the kernel lays them out in a
//! provided buffer, read with explicit bounds checks (no pointer casts: the
//! name and control fields of a recvmsg-multishot buffer are not aligned for
//! their C types).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use zc_core::{Clock, RxTimestamp};

/// Bytes of name space to reserve per datagram: a `sockaddr_in6` holds both families.
pub(crate) const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_in6>();

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i64_ne(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn usize_ne(b: &[u8], at: usize) -> Option<usize> {
    const N: usize = std::mem::size_of::<usize>();
    Some(usize::from_ne_bytes(b.get(at..at + N)?.try_into().ok()?))
}

/// Decodes a `sockaddr_in` or `sockaddr_in6` from its raw bytes.
pub(crate) fn decode(name: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16_ne(name, 0)?);
    // sin_port / sin6_port are in network byte order.
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flow = u32::from_be_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32_ne(name, 24)?;
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

/// `CMSG_SPACE(len)` on this platform (header, then data, aligned to `usize`).
pub(crate) const fn cmsg_space(len: usize) -> usize {
    let align = std::mem::size_of::<usize>();
    let hdr = (std::mem::size_of::<libc::cmsghdr>() + align - 1) & !(align - 1);
    hdr + ((len + align - 1) & !(align - 1))
}

/// Control space for one `SCM_TIMESTAMPNS` message.
pub(crate) const TIMESTAMP_CMSG_SPACE: usize = cmsg_space(std::mem::size_of::<libc::timespec>());

/// Finds an `SCM_TIMESTAMPNS` (CLOCK_REALTIME) in raw control data.
pub(crate) fn timestamp(control: &[u8]) -> Option<RxTimestamp> {
    let hdr = cmsg_space(0);
    let align = std::mem::size_of::<usize>();
    let mut at = 0;
    // `at` can be anything a cmsg_len made it: compare without adding to it.
    while control.len().saturating_sub(at) >= hdr {
        let len = usize_ne(control, at)?;
        let level = u32_ne(control, at + align)? as i32;
        let kind = u32_ne(control, at + align + 4)? as i32;
        if len < hdr {
            return None;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            let sec = i64_ne(control, at + hdr)?;
            let nsec = i64_ne(control, at + hdr + 8)?;
            let ns = u64::try_from(sec)
                .ok()?
                .checked_mul(1_000_000_000)?
                .checked_add(u64::try_from(nsec).ok()?)?;
            return Some(RxTimestamp {
                ns,
                clock: Clock::Realtime,
            });
        }
        at = at.checked_add(len.checked_add(align - 1)? & !(align - 1))?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ipv4_and_rejects_short_or_unknown() {
        let mut raw = [0u8; NAME_LEN];
        raw[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        raw[2..4].copy_from_slice(&9000u16.to_be_bytes());
        raw[4..8].copy_from_slice(&[198, 18, 211, 2]);
        assert_eq!(decode(&raw), Some("198.18.211.2:9000".parse().unwrap()));
        assert_eq!(decode(&raw[..6]), None);
        raw[0..2].copy_from_slice(&77u16.to_ne_bytes());
        assert_eq!(decode(&raw), None);
    }

    #[test]
    fn decodes_ipv6() {
        let mut raw = [0u8; NAME_LEN];
        raw[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        raw[2..4].copy_from_slice(&443u16.to_be_bytes());
        raw[8..24].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(decode(&raw), Some("[::1]:443".parse().unwrap()));
    }

    #[test]
    fn finds_the_timestamp_and_survives_garbage() {
        let mut c = vec![0u8; TIMESTAMP_CMSG_SPACE];
        let hdr = cmsg_space(0);
        c[0..8].copy_from_slice(&(hdr + 16).to_ne_bytes());
        c[8..12].copy_from_slice(&(libc::SOL_SOCKET as u32).to_ne_bytes());
        c[12..16].copy_from_slice(&(libc::SCM_TIMESTAMPNS as u32).to_ne_bytes());
        c[hdr..hdr + 8].copy_from_slice(&3i64.to_ne_bytes());
        c[hdr + 8..hdr + 16].copy_from_slice(&5i64.to_ne_bytes());
        assert_eq!(
            timestamp(&c),
            Some(RxTimestamp {
                ns: 3_000_000_005,
                clock: Clock::Realtime
            })
        );
        assert_eq!(timestamp(&c[..20]), None);
        c[0..8].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(timestamp(&c), None);
        assert_eq!(timestamp(&[]), None);
        // Found by the uring_recvmsg_out fuzz target: a cmsg_len near
        // usize::MAX made the next offset overflow `at + hdr` (a panic in
        // debug builds) instead of ending the walk.
        c[0..8].copy_from_slice(&(usize::MAX - 8).to_ne_bytes());
        c[12..16].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(timestamp(&c), None);
    }
}

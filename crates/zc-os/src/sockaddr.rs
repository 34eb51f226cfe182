//! Socket addresses as the kernel writes them into a name buffer, read with
//! explicit bounds checks: a recvmsg-multishot buffer puts the name at an
//! offset that is not aligned for `sockaddr_in6`, so nothing here casts a
//! pointer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes of name space that hold either family (a `sockaddr_in6`).
pub const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_in6>();

/// What a receiver reports as the source of a datagram whose address the
/// kernel gave in no family zc knows (`0.0.0.0:0`).
pub const UNKNOWN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

pub(crate) fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(crate) fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Decodes a `sockaddr_in` or `sockaddr_in6` from its raw bytes; `None` for
/// another family or too few bytes.
pub fn decode(name: &[u8]) -> Option<SocketAddr> {
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

/// Decodes the address the kernel wrote into `storage` (`len` bytes of it, as
/// returned in `msg_namelen` or the address-length out parameter).
pub fn from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let size = std::mem::size_of::<libc::sockaddr_storage>();
    let len = usize::try_from(len).ok()?.min(size);
    // SAFETY: sockaddr_storage is a plain C struct of `size` bytes with no
    // padding the kernel did not write (it is zeroed or kernel-filled), and
    // `len <= size`; the slice borrows `storage` for its lifetime.
    let bytes = unsafe {
        std::slice::from_raw_parts((storage as *const libc::sockaddr_storage).cast::<u8>(), len)
    };
    decode(bytes)
}

/// Decodes a `sockaddr` the C library handed out by pointer (`getifaddrs`);
/// `None` for a null pointer or another family.
///
/// # Safety
/// `addr` is null or points to a live `sockaddr` whose family field says how
/// many bytes follow (`sockaddr_in` for `AF_INET`, `sockaddr_in6` for
/// `AF_INET6`).
pub unsafe fn from_ptr(addr: *const libc::sockaddr) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller promises a live sockaddr; its family is its first field.
    let family = i32::from(unsafe { (*addr).sa_family });
    let len = match family {
        libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
        _ => return None,
    };
    // SAFETY: the caller promises that a sockaddr of this family, `len` bytes,
    // lives at `addr`.
    decode(unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len) })
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
    fn reads_what_the_kernel_wrote_into_a_storage() {
        // The independent encoder: the kernel, through getsockname.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let want = sock.local_addr().unwrap();
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of_val(&ss) as libc::socklen_t;
        use std::os::fd::AsRawFd;
        // SAFETY: ss is writable for `len` bytes and len is a valid in/out length.
        let rc = unsafe {
            libc::getsockname(
                sock.as_raw_fd(),
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(from_storage(&ss, len), Some(want));
        assert_eq!(from_storage(&ss, 4), None);
    }
}

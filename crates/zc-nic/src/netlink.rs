//! Minimal generic-netlink and rtnetlink clients: one request, its answer,
//! and attribute parsing that checks every length against the buffer.
//!
//! The socket is an ordinary `AF_NETLINK` socket from `socket2` (requests go
//! to the kernel, port 0, which an unconnected netlink socket addresses), so
//! this module needs no `unsafe`.

use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::time::Duration;
use zc_core::error::{Error, ErrorKind, Result};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;

/// The attributes of one answer, by type: `(type, payload)` in order.
pub(crate) type Attrs = Vec<(u16, Vec<u8>)>;

/// Why a request failed: the kernel's errno, or a transport error.
#[derive(Debug)]
pub(crate) enum NlError {
    /// The kernel answered with this errno (positive).
    Errno(i32),
    /// The socket or the answer failed.
    Other(Error),
}

/// A generic-netlink socket of the calling thread's network namespace.
pub(crate) struct GenlSocket {
    sock: Socket,
    seq: u32,
}

impl GenlSocket {
    pub(crate) fn open() -> Result<Self> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_GENERIC)),
        )
        .map_err(|e| Error::io("open a generic netlink socket", e))?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| Error::io("set the netlink socket's receive timeout", e))?;
        Ok(Self { sock, seq: 0 })
    }

    /// Sends `cmd` to `family` with `attrs` and returns the attributes of the
    /// single answer.
    pub(crate) fn request(
        &mut self,
        family: u16,
        cmd: u8,
        version: u8,
        attrs: &[(u16, &[u8])],
    ) -> std::result::Result<Attrs, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let msg = encode(family, cmd, version, self.seq, attrs);
        self.sock
            .send(&msg)
            .map_err(|e| NlError::Other(Error::io("send a netlink request", e)))?;
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = (&self.sock)
                .read(&mut buf)
                .map_err(|e| NlError::Other(Error::io("read a netlink answer", e)))?;
            match decode(&buf[..n], self.seq)? {
                Some(attrs) => return Ok(attrs),
                None => continue, // an answer to an earlier request
            }
        }
    }

    /// The id of the generic-netlink family `name`; `Ok(None)` when this
    /// kernel has no such family.
    pub(crate) fn family_id(&mut self, name: &str) -> Result<Option<u16>> {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        match self.request(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            1,
            &[(CTRL_ATTR_FAMILY_NAME, &z)],
        ) {
            Ok(attrs) => attr_u16(&attrs, CTRL_ATTR_FAMILY_ID)
                .map(Some)
                .ok_or_else(|| malformed("the family answer has no family id")),
            Err(NlError::Errno(libc::ENOENT)) => Ok(None),
            Err(NlError::Errno(e)) => Err(Error::io(
                format!("look up the generic netlink family {name:?}"),
                std::io::Error::from_raw_os_error(e),
            )),
            Err(NlError::Other(e)) => Err(e),
        }
    }
}

const NLM_F_ACK: u16 = 4;
const NLA_F_NESTED: u16 = 1 << 15;
/// `struct ifinfomsg`: family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;

/// One attribute to send: a plain payload, or attributes nested in it.
pub(crate) enum Attr<'a> {
    /// Type and payload.
    Plain(u16, &'a [u8]),
    /// Type and the attributes it holds (`NLA_F_NESTED` is set).
    Nested(u16, Vec<Attr<'a>>),
}

fn put_attrs(m: &mut Vec<u8>, attrs: &[Attr<'_>]) {
    for a in attrs {
        let start = m.len();
        m.extend_from_slice(&[0; 4]);
        let ty = match a {
            Attr::Plain(ty, payload) => {
                m.extend_from_slice(payload);
                *ty
            }
            Attr::Nested(ty, inner) => {
                put_attrs(m, inner);
                *ty | NLA_F_NESTED
            }
        };
        let len = (m.len() - start) as u16;
        m[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        m[start + 2..start + 4].copy_from_slice(&ty.to_ne_bytes());
        m.resize(align4(m.len()), 0);
    }
}

/// One link as rtnetlink describes it.
pub(crate) struct Link {
    /// `IFF_*` flags from the answer's `ifinfomsg`.
    pub(crate) flags: u32,
    /// The link's attributes (`IFLA_*`).
    pub(crate) attrs: Attrs,
}

/// An rtnetlink (`NETLINK_ROUTE`) socket of the calling thread's network
/// namespace, for link queries and changes.
pub(crate) struct RouteSocket {
    sock: Socket,
    seq: u32,
}

impl RouteSocket {
    pub(crate) fn open() -> Result<Self> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_ROUTE)),
        )
        .map_err(|e| Error::io("open an rtnetlink socket", e))?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| Error::io("set the rtnetlink socket's receive timeout", e))?;
        Ok(Self { sock, seq: 0 })
    }

    fn exchange(
        &mut self,
        ty: u16,
        flags: u16,
        ifinfo: [u8; IFINFOMSG_LEN],
        attrs: &[Attr<'_>],
        ack: bool,
    ) -> std::result::Result<(Vec<u8>, Attrs), NlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut m = vec![0u8; NLMSG_HDRLEN];
        m[4..6].copy_from_slice(&ty.to_ne_bytes());
        m[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        m[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&ifinfo);
        put_attrs(&mut m, attrs);
        let total = m.len() as u32;
        m[0..4].copy_from_slice(&total.to_ne_bytes());
        self.sock
            .send(&m)
            .map_err(|e| NlError::Other(Error::io("send an rtnetlink request", e)))?;
        let mut buf = vec![0u8; 32 << 10];
        loop {
            let n = (&self.sock)
                .read(&mut buf)
                .map_err(|e| NlError::Other(Error::io("read an rtnetlink answer", e)))?;
            if let Some(answer) = decode_with(&buf[..n], self.seq, IFINFOMSG_LEN, ack)? {
                return Ok(answer);
            }
        }
    }

    /// `RTM_GETLINK` for interface `index`.
    pub(crate) fn get_link(&mut self, index: u32) -> std::result::Result<Link, NlError> {
        let (head, attrs) = self.exchange(RTM_GETLINK, 0, ifinfomsg(index, 0, 0), &[], false)?;
        let flags = u32_at(&head, 8).ok_or_else(|| NlError::Other(malformed("short ifinfomsg")))?;
        Ok(Link { flags, attrs })
    }

    /// `RTM_SETLINK` for interface `index`: the `IFF_*` bits in `change` set
    /// to those of `flags`, and `attrs`; waits for the kernel's acknowledgement.
    pub(crate) fn set_link(
        &mut self,
        index: u32,
        flags: u32,
        change: u32,
        attrs: &[Attr<'_>],
    ) -> std::result::Result<(), NlError> {
        self.exchange(
            RTM_SETLINK,
            NLM_F_ACK,
            ifinfomsg(index, flags, change),
            attrs,
            true,
        )
        .map(drop)
    }
}

const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[0] = libc::AF_UNSPEC as u8;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// The payload of attribute `ty`.
pub(crate) fn attr_bytes(attrs: &Attrs, ty: u16) -> Option<&[u8]> {
    attr(attrs, ty)
}

fn malformed(what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("malformed netlink answer: {what}"))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One generic-netlink request message.
pub(crate) fn encode(
    family: u16,
    cmd: u8,
    version: u8,
    seq: u32,
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDRLEN];
    m[4..6].copy_from_slice(&family.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&[cmd, version, 0, 0]);
    for (ty, payload) in attrs {
        let len = 4 + payload.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align4(m.len()), 0);
    }
    let total = m.len() as u32;
    m[0..4].copy_from_slice(&total.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The answer to generic-netlink request `seq` in one datagram:
/// `Ok(Some(attrs))`, the kernel's errno, or `Ok(None)` when the datagram
/// answers something else.
pub(crate) fn decode(buf: &[u8], seq: u32) -> std::result::Result<Option<Attrs>, NlError> {
    Ok(decode_with(buf, seq, GENL_HDRLEN, false)?.map(|(_, attrs)| attrs))
}

/// [`decode`] for any family: the answer's fixed header (`fixed` bytes after
/// the netlink header) and attributes; with `ack`, the kernel's
/// acknowledgement is the answer (an empty header and no attributes).
fn decode_with(
    buf: &[u8],
    seq: u32,
    fixed: usize,
    ack: bool,
) -> std::result::Result<Option<(Vec<u8>, Attrs)>, NlError> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let bad = |w: &str| NlError::Other(malformed(w));
        let len = u32_at(buf, at).ok_or_else(|| bad("short header"))? as usize;
        let ty = u16_at(buf, at + 4).ok_or_else(|| bad("short header"))?;
        let msg_seq = u32_at(buf, at + 8).ok_or_else(|| bad("short header"))?;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(bad("a message length outside the datagram"));
        }
        let body = &buf[at + NLMSG_HDRLEN..at + len];
        at += align4(len);
        if msg_seq != seq {
            continue;
        }
        match ty {
            NLMSG_ERROR => {
                let code = u32_at(body, 0).ok_or_else(|| bad("short error message"))? as i32;
                if code == 0 {
                    if ack {
                        return Ok(Some((Vec::new(), Vec::new())));
                    }
                    continue; // an acknowledgement
                }
                return Err(NlError::Errno(-code));
            }
            NLMSG_DONE => return Err(bad("no answer before the end of the dump")),
            _ => {
                let (head, attrs) = (
                    body.get(..fixed)
                        .ok_or_else(|| bad("short family header"))?,
                    body.get(fixed..).unwrap_or(&[]),
                );
                return parse_attrs(attrs)
                    .map(|a| Some((head.to_vec(), a)))
                    .map_err(NlError::Other);
            }
        }
    }
    Ok(None)
}

/// Splits a run of netlink attributes, checking each length.
pub(crate) fn parse_attrs(mut b: &[u8]) -> Result<Attrs> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16_at(b, 0).unwrap_or(0));
        let ty = u16_at(b, 2).unwrap_or(0) & 0x3fff; // without NLA_F_NESTED / NET_BYTEORDER
        if len < 4 || len > b.len() {
            return Err(malformed("an attribute length outside the message"));
        }
        out.push((ty, b[4..len].to_vec()));
        b = b.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

fn attr(attrs: &Attrs, ty: u16) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|(t, _)| *t == ty)
        .map(|(_, p)| p.as_slice())
}

pub(crate) fn attr_u16(attrs: &Attrs, ty: u16) -> Option<u16> {
    u16_at(attr(attrs, ty)?, 0)
}

pub(crate) fn attr_u32(attrs: &Attrs, ty: u16) -> Option<u32> {
    u32_at(attr(attrs, ty)?, 0)
}

/// A `u64` attribute (netlink `uint`: 4 or 8 bytes).
pub(crate) fn attr_u64(attrs: &Attrs, ty: u16) -> Option<u64> {
    let p = attr(attrs, ty)?;
    match p.len() {
        4 => u32_at(p, 0).map(u64::from),
        8 => Some(u64::from_ne_bytes(p.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_through_the_parser() {
        let m = encode(0x1c, 1, 1, 7, &[(1, &5u32.to_ne_bytes()), (2, b"abc")]);
        assert_eq!(m.len(), 16 + 4 + 8 + 8);
        assert_eq!(u32_at(&m, 0), Some(m.len() as u32));
        let attrs = parse_attrs(&m[20..]).unwrap();
        assert_eq!(
            attrs,
            vec![(1, 5u32.to_ne_bytes().to_vec()), (2, b"abc".to_vec())]
        );
        assert_eq!(attr_u32(&attrs, 1), Some(5));
        assert_eq!(attr_u64(&attrs, 1), Some(5));
        assert_eq!(attr_u64(&attrs, 2), None);
        // The answer to another sequence number is skipped.
        assert!(matches!(decode(&m, 8), Ok(None)));
        assert!(matches!(decode(&m, 7), Ok(Some(a)) if a.len() == 2));
    }

    #[test]
    fn every_truncation_is_an_error_or_skipped_never_a_panic() {
        let m = encode(0x1c, 1, 1, 7, &[(1, &5u64.to_ne_bytes()), (3, b"xyzw")]);
        for cut in 0..m.len() {
            let _ = decode(&m[..cut], 7);
            let _ = parse_attrs(&m[20.min(cut)..cut]);
        }
        let mut lying = m.clone();
        lying[20..22].copy_from_slice(&200u16.to_ne_bytes());
        assert!(matches!(decode(&lying, 7), Err(NlError::Other(_))));
    }

    #[test]
    fn an_error_message_carries_the_errno() {
        let mut m = encode(NLMSG_ERROR, 0, 0, 3, &[]);
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.truncate(16);
        m.extend_from_slice(&(-libc::ENODEV).to_ne_bytes());
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        assert!(matches!(decode(&m, 3), Err(NlError::Errno(libc::ENODEV))));
    }

    #[test]
    fn the_kernel_knows_the_control_family_and_not_a_made_up_one() {
        let mut s = GenlSocket::open().unwrap();
        assert_eq!(s.family_id("nlctrl").unwrap(), Some(GENL_ID_CTRL));
        assert_eq!(s.family_id("zcnosuch").unwrap(), None);
    }
}

//! Control messages (`cmsghdr` chains) read from raw bytes with every length
//! checked, never trusted: the same walk for a `recvmmsg` control buffer, an
//! io_uring provided buffer (where the control data is not even aligned) and
//! the `MSG_ERRQUEUE` of a `MSG_ZEROCOPY` socket.
//!
//! Layout (Linux, glibc and the kernel agree): `cmsg_len: usize`,
//! `cmsg_level: i32`, `cmsg_type: i32`, then the data at the header length
//! rounded up to `usize` alignment; the next header follows at `cmsg_len`
//! rounded up the same way.

use crate::sockaddr::u32_ne;
use zc_core::{Clock, RxTimestamp};

const ALIGN: usize = std::mem::size_of::<usize>();

const fn align(len: usize) -> usize {
    (len + ALIGN - 1) & !(ALIGN - 1)
}

/// `CMSG_SPACE(len)`: the room one control message with `len` data bytes takes.
pub const fn space(len: usize) -> usize {
    align(std::mem::size_of::<libc::cmsghdr>()) + align(len)
}

/// `CMSG_LEN(0)`: where a message's data starts.
const HEADER: usize = space(0);

/// Room for one `SCM_TIMESTAMPING` message: three `timespec`s (software,
/// deprecated, raw hardware).
pub const TIMESTAMP_SPACE: usize = space(3 * std::mem::size_of::<libc::timespec>());

/// Room for one `SO_RXQ_OVFL` message.
pub const RXQ_OVFL_SPACE: usize = space(std::mem::size_of::<u32>());

// The timestamp reader below reads two 64-bit fields.
const _: () = assert!(std::mem::size_of::<libc::timespec>() == 16);

/// One control message: its level, type and data (cut at the end of the
/// buffer when its length claims more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmsg<'a> {
    /// `cmsg_level` (`SOL_SOCKET`, `SOL_IP`, …).
    pub level: i32,
    /// `cmsg_type` (`SCM_TIMESTAMPING`, `IP_RECVERR`, …).
    pub kind: i32,
    /// The data after the header.
    pub data: &'a [u8],
}

/// Iterator over the control messages in `control`; it ends at the first
/// header that does not fit or claims less than a header's length.
#[derive(Debug, Clone)]
pub struct Cmsgs<'a> {
    control: &'a [u8],
    at: usize,
}

/// The control messages in the first bytes of a control buffer (as many as
/// the kernel reported in `msg_controllen`).
pub fn iter(control: &[u8]) -> Cmsgs<'_> {
    Cmsgs { control, at: 0 }
}

fn usize_ne(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from_ne_bytes(
        b.get(at..at.checked_add(ALIGN)?)?.try_into().ok()?,
    ))
}

impl<'a> Iterator for Cmsgs<'a> {
    type Item = Cmsg<'a>;

    fn next(&mut self) -> Option<Cmsg<'a>> {
        // `at` can be anything a cmsg_len made it: compare without adding to it.
        if self.control.len().saturating_sub(self.at) < HEADER {
            return None;
        }
        let at = self.at;
        let parsed = (|| {
            let len = usize_ne(self.control, at)?;
            let level = u32_ne(self.control, at + ALIGN)? as i32;
            let kind = u32_ne(self.control, at + ALIGN + 4)? as i32;
            (len >= HEADER).then_some((len, level, kind))
        })();
        let Some((len, level, kind)) = parsed else {
            self.at = self.control.len();
            return None;
        };
        let end = at.saturating_add(len).min(self.control.len());
        let data = &self.control[at + HEADER..end];
        self.at = match len
            .checked_add(ALIGN - 1)
            .and_then(|l| at.checked_add(l & !(ALIGN - 1)))
        {
            Some(next) => next,
            None => self.control.len(),
        };
        Some(Cmsg { level, kind, data })
    }
}

/// The `timespec` at byte `at` of `data` as nanoseconds; `None` when it is
/// cut short, negative, out of range or zero (the kernel's "no stamp").
fn timespec_ns(data: &[u8], at: usize) -> Option<u64> {
    let sec = i64::from_ne_bytes(data.get(at..at + 8)?.try_into().ok()?);
    let nsec = i64::from_ne_bytes(data.get(at + 8..at + 16)?.try_into().ok()?);
    if !(0..1_000_000_000).contains(&nsec) {
        return None;
    }
    let ns = u64::try_from(sec)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(nsec).ok()?)?;
    (ns != 0).then_some(ns)
}

/// The data of an `SCM_TIMESTAMPING` message (`struct scm_timestamping`:
/// software, deprecated, raw hardware): the NIC's stamp when it gave one,
/// else the kernel's software stamp.
pub fn timestamping(data: &[u8]) -> Option<RxTimestamp> {
    const TS: usize = std::mem::size_of::<libc::timespec>();
    if let Some(ns) = timespec_ns(data, 2 * TS) {
        return Some(RxTimestamp {
            ns,
            clock: Clock::NicHardware,
        });
    }
    timespec_ns(data, 0).map(|ns| RxTimestamp {
        ns,
        clock: Clock::Realtime,
    })
}

/// What zc reads from a received datagram's control messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveInfo {
    /// The receive time (`SCM_TIMESTAMPING`): the NIC's or the kernel's.
    pub timestamp: Option<RxTimestamp>,
    /// The socket's drop counter so far (`SO_RXQ_OVFL`).
    pub rxq_ovfl: Option<u32>,
}

/// Reads the receive timestamp and drop counter from a datagram's control data.
pub fn receive_info(control: &[u8]) -> ReceiveInfo {
    let mut info = ReceiveInfo::default();
    for c in iter(control) {
        if c.level != libc::SOL_SOCKET {
            continue;
        }
        if c.kind == crate::sockopt::SCM_TIMESTAMPING {
            info.timestamp = timestamping(c.data);
        } else if c.kind == libc::SO_RXQ_OVFL {
            info.rxq_ovfl = u32_ne(c.data, 0);
        }
    }
    info
}

/// `struct sock_extended_err`, the data of an `IP_RECVERR`/`IPV6_RECVERR`
/// message on a socket's error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedErr {
    /// `ee_errno`.
    pub errno: u32,
    /// `ee_origin` (`SO_EE_ORIGIN_ZEROCOPY` for MSG_ZEROCOPY completions).
    pub origin: u8,
    /// `ee_type`.
    pub kind: u8,
    /// `ee_code` (`SO_EE_CODE_ZEROCOPY_COPIED`).
    pub code: u8,
    /// `ee_info` (first id of a zero-copy completion range).
    pub info: u32,
    /// `ee_data` (last id of a zero-copy completion range).
    pub data: u32,
}

impl ExtendedErr {
    /// Reads an error-queue message, when `c` is one (`SOL_IP/IP_RECVERR` or
    /// `SOL_IPV6/IPV6_RECVERR`) and holds a whole `sock_extended_err`.
    pub fn from_cmsg(c: &Cmsg<'_>) -> Option<Self> {
        let is_err = (c.level == libc::SOL_IP && c.kind == libc::IP_RECVERR)
            || (c.level == libc::SOL_IPV6 && c.kind == libc::IPV6_RECVERR);
        if !is_err {
            return None;
        }
        let d = c.data;
        Some(Self {
            errno: u32_ne(d, 0)?,
            origin: *d.get(4)?,
            kind: *d.get(5)?,
            code: *d.get(6)?,
            info: u32_ne(d, 8)?,
            data: u32_ne(d, 12)?,
        })
    }
}

/// The first `len` bytes of a control buffer kept as `u64` words (the words
/// keep it aligned for `cmsghdr`, as `recvmsg` wants); `len` is clamped to it.
pub fn bytes_of(words: &[u64], len: usize) -> &[u8] {
    let len = len.min(std::mem::size_of_val(words));
    // SAFETY: u64 has no padding and every byte of it is initialised; the
    // slice covers at most the words' own bytes and borrows them.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buf: &mut Vec<u8>, level: i32, kind: i32, data: &[u8]) {
        let start = buf.len();
        buf.resize(start + space(data.len()), 0);
        buf[start..start + ALIGN].copy_from_slice(&(HEADER + data.len()).to_ne_bytes());
        buf[start + ALIGN..start + ALIGN + 4].copy_from_slice(&level.to_ne_bytes());
        buf[start + ALIGN + 4..start + ALIGN + 8].copy_from_slice(&kind.to_ne_bytes());
        buf[start + HEADER..start + HEADER + data.len()].copy_from_slice(data);
    }

    /// `struct scm_timestamping`: software, deprecated, raw hardware.
    fn timestamping(sw: (i64, i64), hw: (i64, i64)) -> Vec<u8> {
        [sw.0, sw.1, 0, 0, hw.0, hw.1]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    #[test]
    fn space_matches_the_c_macro() {
        for len in [0usize, 1, 4, 8, 16, 17] {
            // SAFETY: CMSG_SPACE only computes a length.
            let c = unsafe { libc::CMSG_SPACE(len as u32) } as usize;
            assert_eq!(space(len), c, "len {len}");
        }
    }

    #[test]
    fn finds_timestamp_and_overflow_counter() {
        let mut c = Vec::new();
        put(
            &mut c,
            libc::SOL_SOCKET,
            crate::sockopt::SCM_TIMESTAMPING,
            &timestamping((3, 5), (0, 0)),
        );
        put(
            &mut c,
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            &7u32.to_ne_bytes(),
        );
        let info = receive_info(&c);
        assert_eq!(
            info.timestamp,
            Some(RxTimestamp {
                ns: 3_000_000_005,
                clock: Clock::Realtime
            })
        );
        assert_eq!(info.rxq_ovfl, Some(7));
        assert_eq!(iter(&c).count(), 2);
    }

    #[test]
    fn survives_garbage() {
        let mut c = Vec::new();
        put(
            &mut c,
            libc::SOL_SOCKET,
            crate::sockopt::SCM_TIMESTAMPING,
            &timestamping((3, 5), (0, 0)),
        );
        assert_eq!(receive_info(&c[..20]), ReceiveInfo::default());
        assert_eq!(receive_info(&[]), ReceiveInfo::default());
        c[0..8].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(iter(&c).count(), 0);
        // A cmsg_len near usize::MAX must end the walk, not overflow the
        // offset (the uring_recvmsg_out fuzz target once found this).
        c[0..8].copy_from_slice(&(usize::MAX - 8).to_ne_bytes());
        c[12..16].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(iter(&c).count(), 1);
        assert_eq!(receive_info(&c).timestamp, None);
    }

    #[test]
    fn prefers_the_nic_stamp_and_refuses_impossible_ones() {
        let one = |data: Vec<u8>| {
            let mut c = Vec::new();
            put(
                &mut c,
                libc::SOL_SOCKET,
                crate::sockopt::SCM_TIMESTAMPING,
                &data,
            );
            receive_info(&c).timestamp
        };
        let hw = RxTimestamp {
            ns: 7_000_000_009,
            clock: Clock::NicHardware,
        };
        let sw = RxTimestamp {
            ns: 3_000_000_005,
            clock: Clock::Realtime,
        };
        assert_eq!(one(timestamping((3, 5), (7, 9))), Some(hw));
        assert_eq!(one(timestamping((3, 5), (0, 0))), Some(sw));
        // An impossible hardware stamp falls back to the software one.
        assert_eq!(one(timestamping((3, 5), (-1, 9))), Some(sw));
        assert_eq!(one(timestamping((3, 5), (7, 1_000_000_000))), Some(sw));
        assert_eq!(one(timestamping((0, 0), (0, 0))), None);
        assert_eq!(one(timestamping((i64::MAX, 0), (0, 0))), None);
        // Cut short: the software stamp alone still reads.
        assert_eq!(one(timestamping((3, 5), (7, 9))[..16].to_vec()), Some(sw));
        assert_eq!(one(vec![1, 2, 3]), None);
    }

    #[test]
    fn reads_an_extended_error() {
        let mut ee = Vec::new();
        ee.extend_from_slice(&0u32.to_ne_bytes());
        ee.extend_from_slice(&[5, 0, 1, 0]);
        ee.extend_from_slice(&10u32.to_ne_bytes());
        ee.extend_from_slice(&20u32.to_ne_bytes());
        let mut c = Vec::new();
        put(&mut c, libc::SOL_IP, libc::IP_RECVERR, &ee);
        let m = iter(&c).next().unwrap();
        let e = ExtendedErr::from_cmsg(&m).unwrap();
        assert_eq!((e.origin, e.code, e.info, e.data), (5, 1, 10, 20));
        let short = Cmsg {
            data: &ee[..12],
            ..m
        };
        assert_eq!(ExtendedErr::from_cmsg(&short), None);
    }

    #[test]
    fn words_view_is_clamped() {
        let w = [1u64, 2];
        assert_eq!(bytes_of(&w, 100).len(), 16);
        assert_eq!(bytes_of(&w, 3).len(), 3);
    }
}

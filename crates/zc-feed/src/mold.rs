//! MoldUDP64: the session layer NASDAQ frames its UDP feeds in.
//!
//! A downstream packet is a 20-byte header — session (10 ASCII bytes),
//! sequence number of its first message (u64), message count (u16), all
//! big-endian — then `count` message blocks of a u16 length and that many
//! bytes. A count of 0 is a heartbeat and 0xFFFF the end of the session;
//! both carry the next sequence number and no blocks. The first message of a
//! session has sequence number 1.
//!
//! A request packet (session, first sequence number, count: 20 bytes) sent to
//! a re-request server is answered with ordinary downstream packets, unicast
//! to the requester.
//!
//! [`Packet::new_checked`] walks every block once, so an accepted packet's
//! blocks are known to lie inside the datagram: iterating them cannot fail.

use std::fmt;

/// Bytes of a downstream packet header (and of a request packet).
pub const HEADER_LEN: usize = 20;
/// Bytes of the session field.
pub const SESSION_LEN: usize = 10;
/// Message count of a heartbeat.
pub const HEARTBEAT: u16 = 0;
/// Message count announcing the end of the session.
pub const END_OF_SESSION: u16 = 0xFFFF;
/// Bytes of a request packet.
pub const REQUEST_LEN: usize = 20;

/// A session identifier: 10 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Session(pub [u8; SESSION_LEN]);

impl Session {
    /// A session named by up to 10 ASCII characters (space padded).
    pub fn new(name: &str) -> Option<Self> {
        if name.len() > SESSION_LEN || !name.is_ascii() {
            return None;
        }
        let mut s = [b' '; SESSION_LEN];
        s[..name.len()].copy_from_slice(name.as_bytes());
        Some(Self(s))
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter() {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({:?})", self.to_string())
    }
}

/// Why a datagram was refused, for counting. Never a panic, never a read
/// past the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Refusal {
    /// Shorter than the header it must start with.
    TooShort,
    /// The message count says more blocks than the datagram holds.
    CountPastEnd,
    /// A block's length runs past the end of the datagram.
    BlockPastEnd,
    /// Bytes left over after the counted blocks.
    TrailingBytes,
    /// Heartbeat or end of session with blocks after it.
    ControlWithBlocks,
    /// Sequence number 0, or one that overflows u64 with the count.
    BadSequence,
    /// Another session than the one being received.
    WrongSession,
    /// Anything else the protocol cannot read (e.g. a short 32-byte message).
    Malformed,
    /// Addressed to another UDP port than the line's.
    OtherPort,
}

impl Refusal {
    /// Every reason, in counter order.
    pub const ALL: [Refusal; 9] = [
        Refusal::TooShort,
        Refusal::CountPastEnd,
        Refusal::BlockPastEnd,
        Refusal::TrailingBytes,
        Refusal::ControlWithBlocks,
        Refusal::BadSequence,
        Refusal::WrongSession,
        Refusal::Malformed,
        Refusal::OtherPort,
    ];

    /// A short name for reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::TooShort => "too_short",
            Refusal::CountPastEnd => "count_past_end",
            Refusal::BlockPastEnd => "block_past_end",
            Refusal::TrailingBytes => "trailing_bytes",
            Refusal::ControlWithBlocks => "control_with_blocks",
            Refusal::BadSequence => "bad_sequence",
            Refusal::WrongSession => "wrong_session",
            Refusal::Malformed => "malformed",
            Refusal::OtherPort => "other_port",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters of refused datagrams, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals([u64; Refusal::ALL.len()]);

impl Refusals {
    /// Counts one refusal.
    #[inline]
    pub fn count(&mut self, r: Refusal) {
        self.0[r as usize] += 1;
    }

    /// How many were refused for `r`.
    pub fn get(&self, r: Refusal) -> u64 {
        self.0[r as usize]
    }

    /// All refusals.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Every reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (Refusal, u64)> + '_ {
        Refusal::ALL.iter().map(|&r| (r, self.get(r)))
    }

    /// Adds another set of counters.
    pub fn add(&mut self, other: &Refusals) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

/// What a downstream packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// Carries `count` ≥ 1 messages.
    Data,
    /// No messages: the sequence number is the next one to come.
    Heartbeat,
    /// No messages, and the session is over: the sequence number is one past the last.
    EndOfSession,
}

/// A checked view of one downstream packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl<'a> Packet<'a> {
    /// Checks the header and every block against the datagram's length.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Refusal> {
        if buf.len() < HEADER_LEN {
            return Err(Refusal::TooShort);
        }
        let p = Packet { buf };
        let seq = p.sequence();
        let count = be_u16(buf, 18);
        if count == HEARTBEAT || count == END_OF_SESSION {
            if buf.len() != HEADER_LEN {
                return Err(Refusal::ControlWithBlocks);
            }
            // A heartbeat's sequence number is the next to come: it may be one
            // past the last message, but never 0.
            if seq == 0 {
                return Err(Refusal::BadSequence);
            }
            return Ok(p);
        }
        if seq == 0 || seq.checked_add(u64::from(count)).is_none() {
            return Err(Refusal::BadSequence);
        }
        let mut at = HEADER_LEN;
        for _ in 0..count {
            if at == buf.len() {
                return Err(Refusal::CountPastEnd);
            }
            if at + 2 > buf.len() {
                return Err(Refusal::BlockPastEnd);
            }
            let len = usize::from(be_u16(buf, at));
            at += 2;
            if len > buf.len() - at {
                return Err(Refusal::BlockPastEnd);
            }
            at += len;
        }
        if at != buf.len() {
            return Err(Refusal::TrailingBytes);
        }
        Ok(p)
    }

    /// The session.
    pub fn session(&self) -> Session {
        let mut s = [0u8; SESSION_LEN];
        s.copy_from_slice(&self.buf[..SESSION_LEN]);
        Session(s)
    }

    /// The session field, borrowed.
    #[inline]
    pub fn session_bytes(&self) -> &'a [u8] {
        &self.buf[..SESSION_LEN]
    }

    /// Sequence number of the first message (or, for heartbeats and end of
    /// session, of the next message).
    #[inline]
    pub fn sequence(&self) -> u64 {
        be_u64(self.buf, SESSION_LEN)
    }

    /// The raw message count field.
    pub fn count_field(&self) -> u16 {
        be_u16(self.buf, 18)
    }

    /// Messages carried (0 for heartbeats and end of session).
    #[inline]
    pub fn message_count(&self) -> u16 {
        match self.count_field() {
            END_OF_SESSION => 0,
            n => n,
        }
    }

    /// Data, heartbeat or end of session.
    pub fn kind(&self) -> PacketKind {
        match self.count_field() {
            HEARTBEAT => PacketKind::Heartbeat,
            END_OF_SESSION => PacketKind::EndOfSession,
            _ => PacketKind::Data,
        }
    }

    /// The message blocks, in order.
    #[inline]
    pub fn messages(&self) -> Blocks<'a> {
        Blocks {
            rest: &self.buf[HEADER_LEN..],
            left: self.message_count(),
        }
    }

    /// The whole datagram.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// The message blocks of a checked packet (or of another protocol's datagram).
#[derive(Debug, Clone)]
pub struct Blocks<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Blocks<'a> {
    /// One block: the whole of `msg` (protocols with one message per datagram).
    pub fn single(msg: &'a [u8]) -> Self {
        Blocks {
            rest: msg,
            left: u16::MAX,
        }
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self.left {
            0 => None,
            u16::MAX => {
                self.left = 0;
                Some(self.rest)
            }
            _ => {
                // The packet was checked: every counted block is complete.
                let len = usize::from(u16::from_be_bytes([
                    *self.rest.first()?,
                    *self.rest.get(1)?,
                ]));
                let msg = self.rest.get(2..2 + len)?;
                self.rest = &self.rest[2 + len..];
                self.left -= 1;
                Some(msg)
            }
        }
    }
}

/// A request for `count` messages from `sequence` on `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Session asked about.
    pub session: Session,
    /// First sequence number wanted.
    pub sequence: u64,
    /// How many messages.
    pub count: u16,
}

impl Request {
    /// Parses a request packet: exactly 20 bytes, a count of 1 or more and a
    /// range that does not overflow.
    pub fn parse(buf: &[u8]) -> Result<Self, Refusal> {
        if buf.len() < REQUEST_LEN {
            return Err(Refusal::TooShort);
        }
        if buf.len() > REQUEST_LEN {
            return Err(Refusal::TrailingBytes);
        }
        let mut session = [0u8; SESSION_LEN];
        session.copy_from_slice(&buf[..SESSION_LEN]);
        let sequence = be_u64(buf, SESSION_LEN);
        let count = be_u16(buf, 18);
        if sequence == 0 || count == 0 || sequence.checked_add(u64::from(count)).is_none() {
            return Err(Refusal::BadSequence);
        }
        Ok(Request {
            session: Session(session),
            sequence,
            count,
        })
    }

    /// The 20 bytes of the request packet.
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[..SESSION_LEN].copy_from_slice(&self.session.0);
        b[SESSION_LEN..18].copy_from_slice(&self.sequence.to_be_bytes());
        b[18..20].copy_from_slice(&self.count.to_be_bytes());
        b
    }
}

/// Writes one downstream packet in place, message by message, up to a size
/// limit (the path MTU less the IP and UDP headers).
#[derive(Debug)]
pub struct PacketWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    count: u16,
}

impl<'b> PacketWriter<'b> {
    /// Starts a data packet in `buf` (its length is the size limit).
    /// `None` when `buf` cannot hold a header.
    pub fn new(buf: &'b mut [u8], session: Session, first: u64) -> Option<Self> {
        let hdr = buf.get_mut(..HEADER_LEN)?;
        hdr[..SESSION_LEN].copy_from_slice(&session.0);
        hdr[SESSION_LEN..18].copy_from_slice(&first.to_be_bytes());
        hdr[18..20].copy_from_slice(&0u16.to_be_bytes());
        Some(Self {
            buf,
            len: HEADER_LEN,
            count: 0,
        })
    }

    /// Continues a packet of `len` bytes and `count` messages already in `buf`.
    pub fn resume(buf: &'b mut [u8], len: usize, count: u16) -> Self {
        let len = len.clamp(HEADER_LEN, buf.len());
        Self { buf, len, count }
    }

    /// Appends a message; false (and nothing written) when it does not fit
    /// or the packet already holds 65534 messages.
    pub fn push(&mut self, msg: &[u8]) -> bool {
        self.push_with(msg.len(), |out| out.copy_from_slice(msg))
    }

    /// Appends a message of `len` bytes written by `write` in place.
    pub fn push_with(&mut self, len: usize, write: impl FnOnce(&mut [u8])) -> bool {
        let Ok(len16) = u16::try_from(len) else {
            return false;
        };
        if self.count >= END_OF_SESSION - 1 || self.len + 2 + len > self.buf.len() {
            return false;
        }
        self.buf[self.len..self.len + 2].copy_from_slice(&len16.to_be_bytes());
        write(&mut self.buf[self.len + 2..self.len + 2 + len]);
        self.len += 2 + len;
        self.count += 1;
        self.buf[18..20].copy_from_slice(&self.count.to_be_bytes());
        true
    }

    /// Room left for one more message's bytes.
    pub fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.len + 2)
    }

    /// Messages written.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Bytes of the packet so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no message was written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Writes a heartbeat (or, with `end`, an end-of-session packet) announcing
/// `next`; returns its length.
pub fn write_control(out: &mut [u8], session: Session, next: u64, end: bool) -> Option<usize> {
    let hdr = out.get_mut(..HEADER_LEN)?;
    hdr[..SESSION_LEN].copy_from_slice(&session.0);
    hdr[SESSION_LEN..18].copy_from_slice(&next.to_be_bytes());
    let count = if end { END_OF_SESSION } else { HEARTBEAT };
    hdr[18..20].copy_from_slice(&count.to_be_bytes());
    Some(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(first: u64, msgs: &[&[u8]]) -> Vec<u8> {
        let mut buf = vec![0u8; 1400];
        let mut w = PacketWriter::new(&mut buf, Session::new("TEST").unwrap(), first).unwrap();
        for m in msgs {
            assert!(w.push(m));
        }
        let n = w.len();
        buf.truncate(n);
        buf
    }

    #[test]
    fn a_written_packet_reads_back() {
        let b = packet(7, &[b"abc", b"", b"hello"]);
        let p = Packet::new_checked(&b).unwrap();
        assert_eq!(p.session(), Session::new("TEST").unwrap());
        assert_eq!(p.sequence(), 7);
        assert_eq!(p.kind(), PacketKind::Data);
        let m: Vec<&[u8]> = p.messages().collect();
        assert_eq!(m, vec![&b"abc"[..], b"", b"hello"]);
    }

    #[test]
    fn lies_are_refused_by_reason() {
        let good = packet(1, &[b"abc", b"defg"]);
        assert_eq!(
            Packet::new_checked(&good[..19]).unwrap_err(),
            Refusal::TooShort
        );
        // Count says 3, two blocks present.
        let mut b = good.clone();
        b[19] = 3;
        assert_eq!(Packet::new_checked(&b).unwrap_err(), Refusal::CountPastEnd);
        // Last block claims more bytes than remain.
        let mut b = good.clone();
        b[25] = 9;
        assert_eq!(Packet::new_checked(&b).unwrap_err(), Refusal::BlockPastEnd);
        // A length prefix cut in half.
        let b = &good[..good.len() - 5];
        assert_eq!(Packet::new_checked(b).unwrap_err(), Refusal::BlockPastEnd);
        let mut b = good.clone();
        b.push(0);
        assert_eq!(Packet::new_checked(&b).unwrap_err(), Refusal::TrailingBytes);
        let mut b = good.clone();
        b[10..18].copy_from_slice(&(u64::MAX - 1).to_be_bytes());
        assert_eq!(Packet::new_checked(&b).unwrap_err(), Refusal::BadSequence);
        let mut b = good.clone();
        b[10..18].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(Packet::new_checked(&b).unwrap_err(), Refusal::BadSequence);
        let mut hb = [0u8; 21];
        write_control(&mut hb, Session::new("TEST").unwrap(), 5, false).unwrap();
        assert_eq!(
            Packet::new_checked(&hb).unwrap_err(),
            Refusal::ControlWithBlocks
        );
        let p = Packet::new_checked(&hb[..20]).unwrap();
        assert_eq!(
            (p.kind(), p.sequence(), p.messages().count()),
            (PacketKind::Heartbeat, 5, 0)
        );
        write_control(&mut hb, Session::new("TEST").unwrap(), 9, true).unwrap();
        let p = Packet::new_checked(&hb[..20]).unwrap();
        assert_eq!((p.kind(), p.message_count()), (PacketKind::EndOfSession, 0));
    }

    #[test]
    fn requests_round_trip_and_refuse_nonsense() {
        let r = Request {
            session: Session::new("S1").unwrap(),
            sequence: 42,
            count: 10,
        };
        assert_eq!(Request::parse(&r.encode()), Ok(r));
        let mut b = r.encode();
        b[19] = 0;
        b[18] = 0;
        assert_eq!(Request::parse(&b), Err(Refusal::BadSequence));
        assert_eq!(Request::parse(&b[..19]), Err(Refusal::TooShort));
    }

    #[test]
    fn the_writer_stops_at_the_size_limit() {
        let mut buf = [0u8; 30];
        let mut w = PacketWriter::new(&mut buf, Session::default(), 1).unwrap();
        assert!(w.push(&[1; 8]));
        assert!(!w.push(&[1; 1]), "20 + 10 bytes used, no room for 2 + 1");
        assert_eq!(w.count(), 1);
    }
}

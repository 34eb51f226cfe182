//! The one decoder interface every feed goes through: a [`Protocol`] splits a
//! datagram into sequenced message blocks; the [`crate::feed::FeedHandler`]
//! tracks, arbitrates and orders them without knowing what they contain.
//!
//! Two implementations: [`MoldUdp64`] (any number of messages per datagram,
//! u64 sequence numbers, one session) and [`Md32`] (zc's 32-byte market-data
//! message, one per datagram, whose wrapping u32 sequence numbers are widened
//! to u64).

use crate::mold::{Blocks, Packet, PacketKind, Refusal, Session};
use zc_core::md::{MarketData, MESSAGE_LEN};
use zc_core::seq::widen_serial;

/// One datagram, split into its sequenced messages.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// Sequence number of the first message (for heartbeats and end of
    /// session: of the next message to come).
    pub first: u64,
    /// Messages in the datagram.
    pub count: u64,
    /// Data, heartbeat or end of session.
    pub kind: PacketKind,
    /// The message blocks, `count` of them.
    pub messages: Blocks<'a>,
}

/// A feed protocol: how datagrams divide into sequenced messages.
pub trait Protocol {
    /// Splits one datagram payload, or says why it is refused.
    fn frame<'a>(&mut self, payload: &'a [u8]) -> Result<Frame<'a>, Refusal>;

    /// Forgets per-session state (a new session begins).
    fn reset(&mut self) {}

    /// The session being received, when the protocol has one (for request packets).
    fn session(&self) -> Option<Session> {
        None
    }
}

/// MoldUDP64 downstream packets of one session.
#[derive(Debug, Clone, Default)]
pub struct MoldUdp64 {
    session: Option<Session>,
}

impl MoldUdp64 {
    /// Accepts only `session`; with `None`, locks onto the first session seen.
    pub fn new(session: Option<Session>) -> Self {
        Self { session }
    }
}

impl Protocol for MoldUdp64 {
    #[inline]
    fn frame<'a>(&mut self, payload: &'a [u8]) -> Result<Frame<'a>, Refusal> {
        let p = Packet::new_checked(payload)?;
        match self.session {
            Some(s) if s.0[..] != *p.session_bytes() => return Err(Refusal::WrongSession),
            Some(_) => {}
            None => self.session = Some(p.session()),
        }
        Ok(Frame {
            first: p.sequence(),
            count: u64::from(p.message_count()),
            kind: p.kind(),
            messages: p.messages(),
        })
    }

    fn reset(&mut self) {
        self.session = None;
    }

    fn session(&self) -> Option<Session> {
        self.session
    }
}

/// zc's 32-byte little-endian market-data message, one per datagram.
///
/// Its u32 sequence number wraps; it is widened to the u64 nearest the last
/// one seen (serial-number arithmetic), so the tracker sees a number line
/// without wrap-around. The first number seen is placed 2³² up the line so
/// that numbers before it are still representable.
#[derive(Debug, Clone, Default)]
pub struct Md32 {
    last: Option<u64>,
}

impl Md32 {
    /// Widens `seq` next to the last widened number.
    pub fn widen(&mut self, seq: u32) -> u64 {
        let wide = widen_serial(self.last, seq);
        if self.last.is_none_or(|l| wide > l) {
            self.last = Some(wide);
        }
        wide
    }
}

impl Protocol for Md32 {
    #[inline]
    fn frame<'a>(&mut self, payload: &'a [u8]) -> Result<Frame<'a>, Refusal> {
        let Some(msg) = payload.get(..MESSAGE_LEN) else {
            return Err(Refusal::Malformed);
        };
        let seq = MarketData::peek_seq(msg).ok_or(Refusal::Malformed)?;
        Ok(Frame {
            first: self.widen(seq),
            count: 1,
            kind: PacketKind::Data,
            messages: Blocks::single(msg),
        })
    }

    fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md32_numbers_widen_across_the_wrap() {
        let mut p = Md32::default();
        let a = p.widen(u32::MAX - 1);
        let b = p.widen(u32::MAX);
        let c = p.widen(0);
        let d = p.widen(u32::MAX - 5);
        assert_eq!((b - a, c - b), (1, 1));
        assert_eq!(c - d, 6, "a late number lands behind, not 2^32 ahead");
    }

    #[test]
    fn mold_locks_onto_one_session() {
        let mut buf = [0u8; 20];
        crate::mold::write_control(&mut buf, Session::new("A").unwrap(), 3, false).unwrap();
        let mut p = MoldUdp64::new(None);
        assert_eq!(p.frame(&buf).unwrap().first, 3);
        crate::mold::write_control(&mut buf, Session::new("B").unwrap(), 3, false).unwrap();
        assert_eq!(p.frame(&buf).unwrap_err(), Refusal::WrongSession);
    }
}

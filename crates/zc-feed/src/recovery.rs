//! Gap recovery over UDP: the re-request server that keeps the last N
//! messages of a session and answers MoldUDP64 request packets, and the
//! client socket a receiver sends its requests from.
//!
//! Requests are rare (only what every line missed), so both sides use one
//! plain non-blocking UDP socket each; the feed lines keep their backends.
//! The server answers with ordinary downstream packets, unicast to the
//! requester, each at most `max_payload` bytes; it never sends more than
//! `max_answer` messages for one request (a receiver asks again for the
//! rest), so a request cannot make it flood.

use crate::mold::{Packet, PacketWriter, Refusal, Refusals, Request, Session};
use std::io::ErrorKind as IoKind;
use std::net::{SocketAddr, UdpSocket};
use zc_core::{Error, Result};

/// The last `capacity` messages of a session, by sequence number.
#[derive(Debug, Clone)]
pub struct Retention {
    bytes: Vec<u8>,
    lens: Vec<u16>,
    seqs: Vec<u64>,
    slot: usize,
}

impl Retention {
    /// Room for `capacity` messages of at most `slot` bytes each.
    pub fn new(capacity: usize, slot: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            bytes: vec![0; capacity * slot],
            lens: vec![0; capacity],
            seqs: vec![0; capacity],
            slot,
        }
    }

    /// Keeps message `seq` (replacing the one `capacity` before it). A
    /// message longer than a slot is not kept: false.
    pub fn record(&mut self, seq: u64, msg: &[u8]) -> bool {
        if msg.len() > self.slot {
            return false;
        }
        let i = (seq % self.lens.len() as u64) as usize;
        self.bytes[i * self.slot..i * self.slot + msg.len()].copy_from_slice(msg);
        self.lens[i] = msg.len() as u16;
        self.seqs[i] = seq;
        true
    }

    /// Message `seq`, if still kept.
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = (seq % self.lens.len() as u64) as usize;
        (self.seqs[i] == seq && seq != 0)
            .then(|| &self.bytes[i * self.slot..i * self.slot + usize::from(self.lens[i])])
    }
}

/// What a server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Valid requests received.
    pub requests: u64,
    /// Requests refused, by reason.
    pub refused: Refusals,
    /// Messages sent in answers.
    pub messages: u64,
    /// Answer packets sent.
    pub packets: u64,
    /// Requested messages no longer (or not yet) kept.
    pub unavailable: u64,
}

/// A MoldUDP64 re-request server for one session.
pub struct RecoveryServer {
    session: Session,
    kept: Retention,
    socket: UdpSocket,
    max_answer: u16,
    stats: ServerStats,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl RecoveryServer {
    /// Binds the server's socket to `addr` for `session`, keeping `capacity`
    /// messages; answers are packets of at most `max_payload` bytes.
    pub fn bind(
        addr: SocketAddr,
        session: Session,
        capacity: usize,
        max_payload: usize,
    ) -> Result<Self> {
        let socket = UdpSocket::bind(addr)
            .map_err(|e| Error::io(format!("bind the re-request server to {addr}"), e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("make the re-request socket non-blocking", e))?;
        Ok(Self {
            session,
            kept: Retention::new(capacity, crate::itch::MAX_MESSAGE_LEN.max(64)),
            socket,
            max_answer: 4096,
            stats: ServerStats::default(),
            rx: vec![0; 2048],
            tx: vec![0; max_payload.max(crate::mold::HEADER_LEN + 66)],
        })
    }

    /// Where requests go.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket
            .local_addr()
            .map_err(|e| Error::io("read the re-request server's address", e))
    }

    /// The counters.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Keeps message `seq` for retransmission.
    #[inline]
    pub fn record(&mut self, seq: u64, msg: &[u8]) {
        self.kept.record(seq, msg);
    }

    /// Keeps every message of a downstream packet.
    pub fn record_packet(&mut self, packet: &[u8]) {
        if let Ok(p) = Packet::new_checked(packet) {
            for (i, m) in p.messages().enumerate() {
                self.kept.record(p.sequence() + i as u64, m);
            }
        }
    }

    /// Answers every request waiting on the socket; returns how many.
    pub fn poll(&mut self) -> Result<usize> {
        let mut n = 0;
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.rx) {
                Ok(x) => x,
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(n),
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => return Err(Error::io("receive on the re-request server", e)),
            };
            n += 1;
            let req = match Request::parse(&self.rx[..len]) {
                Ok(r) if r.session == self.session => r,
                Ok(_) => {
                    self.stats.refused.count(Refusal::WrongSession);
                    continue;
                }
                Err(r) => {
                    self.stats.refused.count(r);
                    continue;
                }
            };
            self.stats.requests += 1;
            let socket = &self.socket;
            let mut sent_packets = 0;
            let answered = answer(
                &self.kept,
                self.session,
                &req,
                self.max_answer,
                &mut self.tx,
                &mut |p| {
                    // A full socket buffer drops the answer; the client asks again.
                    if socket.send_to(p, from).is_ok() {
                        sent_packets += 1;
                    }
                },
            );
            self.stats.packets += sent_packets;
            self.stats.messages += answered;
            self.stats.unavailable += u64::from(req.count) - answered.min(u64::from(req.count));
        }
    }
}

/// Packs the kept messages `req` asks for (up to the first one not kept, at
/// most `max_answer`) into downstream packets the size of `buf`, handing
/// each to `send`. Returns how many messages were sent.
pub fn answer(
    kept: &Retention,
    session: Session,
    req: &Request,
    max_answer: u16,
    buf: &mut [u8],
    send: &mut dyn FnMut(&[u8]),
) -> u64 {
    let end = req.sequence + u64::from(req.count.min(max_answer));
    let mut seq = req.sequence;
    while seq < end {
        let Some(mut w) = PacketWriter::new(buf, session, seq) else {
            return seq - req.sequence;
        };
        while seq < end {
            let Some(m) = kept.get(seq) else {
                break;
            };
            if !w.push(m) {
                break;
            }
            seq += 1;
        }
        if w.is_empty() {
            break;
        }
        let len = w.len();
        send(&buf[..len]);
        if kept.get(seq).is_none() {
            break;
        }
    }
    seq - req.sequence
}

/// The receiver's side: sends requests to one server and reads its answers.
pub struct RecoveryClient {
    socket: UdpSocket,
    server: SocketAddr,
    buf: Vec<u8>,
    send_errors: u64,
    last_error: Option<String>,
}

impl RecoveryClient {
    /// A socket bound to `bind` (port 0: any) for `server`.
    pub fn new(bind: SocketAddr, server: SocketAddr) -> Result<Self> {
        let socket = UdpSocket::bind(bind)
            .map_err(|e| Error::io(format!("bind the recovery socket to {bind}"), e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("make the recovery socket non-blocking", e))?;
        Ok(Self {
            socket,
            server,
            buf: vec![0; 65_536],
            send_errors: 0,
            last_error: None,
        })
    }

    /// Sends one request. A failure (server unreachable) is counted, not
    /// returned: the gap is retried and given up on schedule.
    pub fn request(&mut self, r: Request) {
        if let Err(e) = self.socket.send_to(&r.encode(), self.server) {
            self.send_errors += 1;
            self.last_error = Some(e.to_string());
        }
    }

    /// Requests that could not be sent, and the latest reason.
    pub fn send_errors(&self) -> (u64, Option<&str>) {
        (self.send_errors, self.last_error.as_deref())
    }

    /// Hands every answer waiting on the socket to `f`; returns how many.
    pub fn receive(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let mut n = 0;
        loop {
            match self.socket.recv_from(&mut self.buf) {
                Ok((len, from)) if from == self.server => {
                    f(&self.buf[..len]);
                    n += 1;
                }
                Ok(_) => {}
                Err(e) if e.kind() == IoKind::WouldBlock => return Ok(n),
                // ICMP port unreachable from an earlier request: the server is gone.
                Err(e) if e.kind() == IoKind::ConnectionRefused => {
                    self.send_errors += 1;
                    self.last_error = Some(e.to_string());
                }
                Err(e) if e.kind() == IoKind::Interrupted => {}
                Err(e) => return Err(Error::io("receive on the recovery socket", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_stop_at_what_is_kept_and_fit_the_packet_size() {
        let mut kept = Retention::new(100, 64);
        for s in 1..=150u64 {
            kept.record(s, &[s as u8; 30]);
        }
        assert!(kept.get(10).is_none(), "overwritten by 110");
        let session = Session::new("S").unwrap();
        let mut buf = vec![0u8; 20 + 3 * 32];
        let mut packets = Vec::new();
        let req = Request {
            session,
            sequence: 140,
            count: 20,
        };
        let n = answer(&kept, session, &req, 4096, &mut buf, &mut |p| {
            packets.push(p.to_vec())
        });
        assert_eq!(n, 11, "140..=150 are kept, 151.. are not yet");
        assert_eq!(packets.len(), 4);
        let p = Packet::new_checked(&packets[3]).unwrap();
        assert_eq!((p.sequence(), p.message_count()), (149, 2));
        let req = Request {
            session,
            sequence: 5,
            count: 3,
        };
        assert_eq!(answer(&kept, session, &req, 4096, &mut buf, &mut |_| {}), 0);
    }
}

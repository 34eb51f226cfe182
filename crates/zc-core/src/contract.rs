//! The [`Sender`] contract as a check every backend's tests run on a real
//! sender, so that "back-pressure", "sent" and the oversized-payload rule
//! mean the same whichever backend sends.

use crate::backend::Sender;

/// Runs the [`Sender::send_burst`] contract on a fresh `tx` whose peer drains
/// everything (so no resource runs short), and panics with the rule that
/// broke:
///
/// - `count` 0 sends nothing and never calls `fill`;
/// - a `count` above the batch sends at most the batch, and exactly the batch
///   is not back-pressure; `fill` sees slots 0, 1, … of `max_payload` bytes;
/// - an oversized payload is an error naming its slot; the slots before it
///   are sent and counted, none after; it is not back-pressure;
/// - the counters add up to what the calls returned, and the peer receives
///   exactly that many datagrams: `received(n)` waits (a few seconds at most)
///   until the peer has `n` in all and returns how many it has, releasing
///   what it received (the check sends a full batch, lets the peer drain it,
///   then sends again).
pub fn check_sender(tx: &mut dyn Sender, received: &mut dyn FnMut(u64) -> u64) {
    const LEN: usize = 8;
    let max = tx.max_payload();
    let batch = tx.mode().batch;
    let before = tx.stats();
    assert!(max >= LEN, "max_payload {max} below {LEN}");
    assert!(batch >= 1, "a sender's batch is at least 1");

    let mut calls = 0;
    let sent = tx.send_burst(0, &mut |_, _| {
        calls += 1;
        0
    });
    assert_eq!((sent.ok(), calls), (Some(0), 0), "count 0 sends nothing");

    let mut slots = Vec::new();
    let n = tx
        .send_burst(batch + 5, &mut |i, buf| {
            slots.push((i, buf.len()));
            buf[..LEN].copy_from_slice(&(i as u64).to_le_bytes());
            LEN
        })
        .expect("a burst above the batch");
    assert!((1..=batch).contains(&n), "sent {n} of a batch of {batch}");
    let expected: Vec<_> = (0..slots.len()).map(|i| (i, max)).collect();
    assert_eq!(
        slots, expected,
        "fill sees slots in order, max_payload long"
    );
    assert!(slots.len() >= n, "sent more than was filled");
    assert_eq!(received(n as u64), n as u64, "the peer received the burst");
    let after_full = tx.stats();
    if n == batch {
        assert_eq!(
            after_full.backpressure, before.backpressure,
            "a count above the batch is not back-pressure"
        );
    }

    // The oversized slot: the second, or the only one of a batch of one.
    let bad = 1.min(batch - 1);
    let mut calls = 0;
    let e = tx
        .send_burst(3, &mut |i, buf| {
            calls += 1;
            if i == bad {
                max + 1
            } else {
                buf[..LEN].fill(0xee);
                LEN
            }
        })
        .expect_err("an oversized payload is an error");
    assert_eq!(
        calls,
        bad + 1,
        "nothing from the oversized slot on is filled"
    );
    let wording = format!(
        "slot {bad}: payload of {} bytes exceeds the {max}-byte slot",
        max + 1
    );
    assert!(e.to_string().contains(&wording), "{e}");
    let after = tx.stats();
    let oversized_sent = after.datagrams - after_full.datagrams;
    assert!(
        oversized_sent <= bad as u64,
        "slots after the oversized one were sent"
    );
    assert_eq!(
        after.backpressure, after_full.backpressure,
        "an oversized payload is not back-pressure"
    );

    let total = n as u64 + oversized_sent;
    assert_eq!(after.datagrams - before.datagrams, total);
    assert_eq!(after.bytes - before.bytes, total * LEN as u64);
    assert_eq!(received(total), total, "the peer received what was counted");
}

/// A kernel UDP socket that counts what a sender under test delivers: the
/// independent receiver for [`check_sender`].
#[derive(Debug)]
pub struct UdpSink {
    sock: std::net::UdpSocket,
    got: u64,
}

impl UdpSink {
    /// Binds `addr` (port 0 for any); each wait for a datagram gives up after
    /// two seconds.
    pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let sock = std::net::UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        Ok(Self { sock, got: 0 })
    }

    /// The bound address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.sock
            .local_addr()
            .expect("a bound socket has an address")
    }

    /// Receives until `want` datagrams arrived in all, or none came for two
    /// seconds; returns how many arrived in all (the `received` of
    /// [`check_sender`]).
    pub fn received(&mut self, want: u64) -> u64 {
        let mut buf = [0u8; 2048];
        while self.got < want && self.sock.recv(&mut buf).is_ok() {
            self.got += 1;
        }
        self.got
    }
}

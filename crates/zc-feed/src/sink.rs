//! The ITCH consumer of a feed: decode each delivered message, apply it to
//! the order book, and time it from its ITCH timestamp.

use crate::book::{BookConfig, OrderBook};
use crate::feed::Sink;
use crate::itch::{self, ItchError};
use zc_core::latency::LatencyRecorder;

/// Nanoseconds in a day: ITCH timestamps count from midnight.
pub const DAY_NS: u64 = 86_400_000_000_000;

/// Messages the decoder refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItchErrors {
    /// Empty blocks.
    pub empty: u64,
    /// Types the specification does not define (skipped by their length).
    pub unknown_type: u64,
    /// Known types with the wrong length.
    pub bad_length: u64,
}

impl ItchErrors {
    /// All refused messages.
    pub fn total(&self) -> u64 {
        self.empty + self.unknown_type + self.bad_length
    }

    fn count(&mut self, e: ItchError) {
        match e {
            ItchError::Empty => self.empty += 1,
            ItchError::UnknownType(_) => self.unknown_type += 1,
            ItchError::BadLength { .. } => self.bad_length += 1,
        }
    }
}

/// Decodes ITCH and keeps the book.
#[derive(Debug, Clone)]
pub struct ItchSink {
    /// The order book.
    pub book: OrderBook,
    latency: Option<LatencyRecorder>,
    errors: ItchErrors,
    by_type: [u64; 128],
    last_seq: u64,
}

impl ItchSink {
    /// A sink with its book allocated. With `latency`, the `now_ns` the feed
    /// handler is given must be CLOCK_REALTIME: each message is timed from
    /// its ITCH timestamp (nanoseconds since midnight, as the generator
    /// stamps its intended send time) to its delivery to the book.
    pub fn new(book: BookConfig, latency: bool) -> Self {
        Self {
            book: OrderBook::new(book),
            latency: latency.then(LatencyRecorder::new),
            errors: ItchErrors::default(),
            by_type: [0; 128],
            last_seq: 0,
        }
    }

    /// The latency recorder, when timing.
    pub fn latency(&self) -> Option<&LatencyRecorder> {
        self.latency.as_ref()
    }

    /// Messages refused by the decoder.
    pub fn errors(&self) -> ItchErrors {
        self.errors
    }

    /// Messages decoded of type `tag`.
    pub fn count_of(&self, tag: u8) -> u64 {
        self.by_type.get(usize::from(tag)).copied().unwrap_or(0)
    }

    /// Sequence number of the last message delivered.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Applies one message (also the offline path's entry).
    #[inline]
    pub fn apply(&mut self, msg: &[u8], now_ns: u64) {
        match itch::decode(msg) {
            Ok(m) => {
                self.by_type[usize::from(m.tag() & 0x7f)] += 1;
                self.book.apply(&m);
                if let Some(l) = self.latency.as_mut() {
                    let sent = m.header().timestamp;
                    let now = now_ns % DAY_NS;
                    // A message stamped just before midnight and received after it.
                    let now = if now < sent && sent - now > DAY_NS / 2 {
                        now + DAY_NS
                    } else {
                        now
                    };
                    l.record(sent, now);
                }
            }
            Err(e) => self.errors.count(e),
        }
    }
}

impl Sink for ItchSink {
    #[inline]
    fn message(&mut self, seq: u64, msg: &[u8], now_ns: u64) {
        self.last_seq = seq;
        self.apply(msg, now_ns);
    }

    fn lost(&mut self, _first: u64, count: u64) {
        self.book.mark_lost(count);
    }

    fn start(&mut self, seq: u64) {
        if seq > 1 {
            self.book.mark_late_join();
        }
    }
}

//! The offline path: the same handler and book as the online one, fed from
//! anything that yields UDP payloads with their timestamps (a capture, a
//! test), or straight from a NASDAQ-format ITCH file.

use crate::book::BookConfig;
use crate::feed::{FeedConfig, FeedHandler, Line, Sink};
use crate::file::FileReader;
use crate::protocol::MoldUdp64;
use crate::sink::ItchSink;
use std::path::Path;
use std::time::{Duration, Instant};
use zc_core::Result;

/// MoldUDP64 payloads in, book out; no recovery (a gap is given up when the
/// payloads end, or `line_wait_ns` of payload time after it opened).
pub struct Offline {
    /// The handler (counters, gaps).
    pub handler: FeedHandler<MoldUdp64>,
    /// The book.
    pub sink: ItchSink,
}

impl Offline {
    /// A handler expecting the session from message 1, and a book.
    pub fn new(book: BookConfig, feed: FeedConfig) -> Self {
        Self {
            handler: FeedHandler::new(
                MoldUdp64::new(None),
                FeedConfig {
                    recovery: false,
                    ..feed
                },
            ),
            sink: ItchSink::new(book, false),
        }
    }

    /// One UDP payload, received at `ts_ns` (any clock, ascending).
    #[inline]
    pub fn payload(&mut self, payload: &[u8], ts_ns: u64) {
        self.handler
            .on_datagram(Line::A, payload, ts_ns, &mut self.sink);
        self.handler.poll(ts_ns, &mut self.sink, &mut |_| {});
    }

    /// Every payload of `payloads`, then [`Self::finish`].
    pub fn replay<'a>(mut self, payloads: impl IntoIterator<Item = (&'a [u8], u64)>) -> Self {
        for (p, ts) in payloads {
            self.payload(p, ts);
        }
        self.finish()
    }

    /// The payloads ended: whatever is still missing is given up.
    pub fn finish(mut self) -> Self {
        self.handler.poll(u64::MAX, &mut self.sink, &mut |_| {});
        self
    }
}

/// What replaying a NASDAQ-format file measured.
#[derive(Debug, Clone, Copy)]
pub struct FileReplay {
    /// Messages read.
    pub messages: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Wall time of the read-decode-apply loop.
    pub elapsed: Duration,
}

/// Builds the book from a NASDAQ-format ITCH file (message `k` has sequence number `k`).
pub fn replay_itch_file(path: &Path, sink: &mut ItchSink) -> Result<FileReplay> {
    let mut r = FileReader::open(path)?;
    let start = Instant::now();
    let mut seq = 0;
    while let Some(msg) = r.next()? {
        seq += 1;
        sink.message(seq, msg, 0);
    }
    Ok(FileReplay {
        messages: seq,
        bytes: r.offset(),
        elapsed: start.elapsed(),
    })
}

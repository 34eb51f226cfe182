//! The market-data handler every backend's receiver feeds:
//! decode → sequence tracker → latency → per-symbol state.
//!
//! Once constructed it allocates nothing per message (the symbol table is
//! reserved up front and never grows past `max_symbols`), and it never logs.

use crate::backend::Datagram;
use crate::latency::{LatencyRecorder, LatencySummary};
use crate::md::MarketData;
use crate::seq::{SeqOutcome, SeqStats, SeqTracker, TrackerConfig};
use crate::wire::{parse_udp_frame, MalformedCounts, WireError};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a u32 symbol id with one multiplication (Fibonacci hashing).
///
/// SipHash, the std default, costs more than the rest of the per-message work.
/// Its flooding resistance buys little here: the table never holds more than
/// `max_symbols` entries, so a crafted id set can at worst make a lookup scan
/// that many slots.
#[derive(Default, Clone, Copy)]
struct SymbolHasher(u64);

impl Hasher for SymbolHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type SymbolTable = HashMap<u32, SymbolState, BuildHasherDefault<SymbolHasher>>;

/// Handler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerConfig {
    /// Only datagrams to this UDP port are the feed; others count as "not ours".
    /// `None` accepts every port.
    pub feed_port: Option<u16>,
    /// Symbols whose state is kept; later new symbols are counted, not stored.
    pub max_symbols: usize,
    /// The sequence tracker's memory bound and resynchronisation guard: a
    /// datagram whose number jumps beyond the window is not applied until
    /// following messages confirm the jump (see [`crate::seq`]).
    pub tracker: TrackerConfig,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            feed_port: None,
            max_symbols: 4096,
            tracker: TrackerConfig::default(),
        }
    }
}

/// Running state of one instrument.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SymbolState {
    /// Price of the latest update.
    pub last_price: f64,
    /// Sum of volumes.
    pub volume: i64,
    /// Sum of price × volume.
    pub notional: f64,
    /// Updates applied.
    pub updates: u64,
}

impl SymbolState {
    /// Volume-weighted average price, once any volume traded.
    pub fn vwap(&self) -> Option<f64> {
        (self.volume != 0).then(|| self.notional / self.volume as f64)
    }
}

/// Frames and datagrams the handler dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DropCounters {
    /// Frames the wire parser refused.
    pub malformed: u64,
    /// `malformed` by the parser's reason.
    pub malformed_by_reason: MalformedCounts,
    /// The reason of the latest malformed frame (serialized as its message).
    #[cfg_attr(feature = "serde", serde(serialize_with = "serialize_wire_error"))]
    pub last_malformed: Option<WireError>,
    /// Datagrams to another port than the feed's.
    pub not_ours: u64,
    /// Payloads too short to be a market-data message.
    pub not_market_data: u64,
    /// Messages tracked but whose symbol did not fit in the table.
    pub symbol_table_full: u64,
}

#[cfg(feature = "serde")]
fn serialize_wire_error<S: serde::Serializer>(
    e: &Option<WireError>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// What happened to one datagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Handled {
    /// Decoded and accounted; the tracker's verdict.
    Message(SeqOutcome),
    /// Dropped before decoding.
    Dropped,
}

/// A snapshot of everything the handler counted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HandlerReport {
    /// Messages decoded (duplicates included).
    pub messages: u64,
    /// Payload bytes of decoded messages.
    pub bytes: u64,
    /// Sequence counters.
    pub seq: SeqStats,
    /// Latency percentiles.
    pub latency: LatencySummary,
    /// Timestamps later than their receive time.
    pub clock_skew: u64,
    /// Drops by reason.
    pub drops: DropCounters,
    /// Symbols with state.
    pub symbols: usize,
}

/// Decodes, tracks, times and aggregates one feed.
#[derive(Debug, Clone)]
pub struct MarketDataHandler {
    cfg: HandlerConfig,
    tracker: SeqTracker,
    latency: LatencyRecorder,
    symbols: SymbolTable,
    drops: DropCounters,
    messages: u64,
    bytes: u64,
}

impl MarketDataHandler {
    /// A handler with its tables allocated.
    pub fn new(cfg: HandlerConfig) -> Self {
        Self {
            cfg,
            tracker: SeqTracker::new(cfg.tracker),
            latency: LatencyRecorder::new(),
            symbols: SymbolTable::with_capacity_and_hasher(cfg.max_symbols, Default::default()),
            drops: DropCounters::default(),
            messages: 0,
            bytes: 0,
        }
    }

    /// Handles one received datagram at `now_ns` (CLOCK_MONOTONIC).
    #[inline]
    pub fn on_datagram(&mut self, d: &Datagram<'_>, now_ns: u64) -> Handled {
        self.on_payload(d.payload, d.dst.port(), now_ns)
    }

    /// Handles a whole Ethernet frame (raw backends): parses it first.
    #[inline]
    pub fn on_frame(&mut self, frame: &[u8], now_ns: u64) -> Handled {
        match parse_udp_frame(frame) {
            Ok(f) => self.on_payload(f.payload(), f.udp.dst_port(), now_ns),
            Err(e) => {
                self.drops.malformed += 1;
                self.drops.malformed_by_reason.add(&e);
                self.drops.last_malformed = Some(e);
                Handled::Dropped
            }
        }
    }

    #[inline]
    fn on_payload(&mut self, payload: &[u8], dst_port: u16, now_ns: u64) -> Handled {
        if self.cfg.feed_port.is_some_and(|p| p != dst_port) {
            self.drops.not_ours += 1;
            return Handled::Dropped;
        }
        let Ok(msg) = MarketData::decode(payload) else {
            self.drops.not_market_data += 1;
            return Handled::Dropped;
        };
        self.messages += 1;
        self.bytes += payload.len() as u64;
        let seq = self.tracker.widen_u32(msg.seq);
        let outcome = self.tracker.observe(seq);
        if outcome.is_new() {
            self.latency.record(msg.timestamp_ns, now_ns);
            self.apply(&msg);
        }
        Handled::Message(outcome)
    }

    fn apply(&mut self, msg: &MarketData) {
        let state = if let Some(s) = self.symbols.get_mut(&msg.symbol) {
            s
        } else if self.symbols.len() < self.cfg.max_symbols {
            self.symbols.entry(msg.symbol).or_default()
        } else {
            self.drops.symbol_table_full += 1;
            return;
        };
        state.last_price = msg.price;
        state.volume = state.volume.wrapping_add(msg.volume);
        state.notional += msg.price * msg.volume as f64;
        state.updates += 1;
    }

    /// State of one symbol.
    pub fn symbol(&self, symbol: u32) -> Option<&SymbolState> {
        self.symbols.get(&symbol)
    }

    /// The sequence tracker (for missing ranges).
    pub fn tracker(&self) -> &SeqTracker {
        &self.tracker
    }

    /// The latency recorder (for histograms and plots).
    pub fn latency(&self) -> &LatencyRecorder {
        &self.latency
    }

    /// Messages decoded so far (cheap: for loop conditions; [`Self::report`]
    /// computes percentiles).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Everything counted so far.
    pub fn report(&self) -> HandlerReport {
        HandlerReport {
            messages: self.messages,
            bytes: self.bytes,
            seq: self.tracker.stats(),
            latency: self.latency.summary(),
            clock_skew: self.latency.clock_skew(),
            drops: self.drops,
            symbols: self.symbols.len(),
        }
    }
}

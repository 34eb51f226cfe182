//! The 32-byte market-data message (`docs/design.md` §1), and its codec.
//!
//! Wire layout (32 bytes, **little-endian**, no padding, no alignment needed):
//!
//! | offset | size | field        | type                                 |
//! |-------:|-----:|--------------|--------------------------------------|
//! | 0      | 4    | `seq`        | u32, per-feed sequence number        |
//! | 4      | 4    | `symbol`     | u32, instrument id                   |
//! | 8      | 8    | `price`      | f64, IEEE 754 bits                   |
//! | 16     | 8    | `volume`     | i64                                  |
//! | 24     | 8    | `timestamp`  | u64, CLOCK_MONOTONIC ns at send time |
//!
//! Little-endian matches the original packed C struct on x86-64 and SBE-style
//! exchange feeds. Fields are copied out of the slice byte by byte into arrays,
//! never read through a cast pointer, so the payload may sit at any address.
//! A payload longer than 32 bytes is accepted (the rest is padding, e.g. for
//! tests at larger packet sizes).

/// Encoded size of a [`MarketData`] message.
pub const MESSAGE_LEN: usize = 32;

/// One market-data update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketData {
    /// Per-feed sequence number.
    pub seq: u32,
    /// Instrument id.
    pub symbol: u32,
    /// Trade price.
    pub price: f64,
    /// Trade volume.
    pub volume: i64,
    /// Sender's CLOCK_MONOTONIC in nanoseconds (the intended send time when
    /// the sender is open-loop).
    pub timestamp_ns: u64,
}

/// Why a payload is not a market-data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is shorter than a message.
    #[error("payload of {0} bytes is shorter than the 32-byte market-data message")]
    TooShort(usize),
    /// The output buffer cannot hold a message.
    #[error("buffer of {0} bytes cannot hold the 32-byte market-data message")]
    BufferTooSmall(usize),
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

impl MarketData {
    /// Decodes the first 32 bytes of `payload`.
    #[inline]
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let Some(b) = payload.get(..MESSAGE_LEN) else {
            return Err(DecodeError::TooShort(payload.len()));
        };
        Ok(Self {
            seq: u32::from_le_bytes(array(b, 0)),
            symbol: u32::from_le_bytes(array(b, 4)),
            price: f64::from_le_bytes(array(b, 8)),
            volume: i64::from_le_bytes(array(b, 16)),
            timestamp_ns: u64::from_le_bytes(array(b, 24)),
        })
    }

    /// Reads only the sequence number (for senders that patch it in place).
    #[inline]
    pub fn peek_seq(payload: &[u8]) -> Option<u32> {
        payload.get(..4).map(|b| u32::from_le_bytes(array(b, 0)))
    }

    /// Encodes into the first 32 bytes of `out`.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) -> Result<(), DecodeError> {
        let len = out.len();
        let Some(b) = out.get_mut(..MESSAGE_LEN) else {
            return Err(DecodeError::BufferTooSmall(len));
        };
        b[0..4].copy_from_slice(&self.seq.to_le_bytes());
        b[4..8].copy_from_slice(&self.symbol.to_le_bytes());
        b[8..16].copy_from_slice(&self.price.to_le_bytes());
        b[16..24].copy_from_slice(&self.volume.to_le_bytes());
        b[24..32].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        Ok(())
    }
}

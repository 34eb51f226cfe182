//! Market-data feeds on top of any zc backend: NASDAQ TotalView-ITCH 5.0 in
//! MoldUDP64, from the datagram to a full-depth order book.
//!
//! - [`mold`]: checked views of MoldUDP64 downstream and request packets, a
//!   packet writer, refusals counted by reason.
//! - [`itch`]: a zero-copy view for every ITCH 5.0 message type.
//! - [`seq`]: u64 sequence tracking with a resynchronisation guard.
//! - [`book`]: the order book (preallocated orders, price levels, trust).
//!
//! This crate has no `unsafe`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod book;
pub mod feed;
pub mod file;
pub mod gen;
pub mod itch;
pub mod mold;
pub mod offline;
pub mod online;
pub mod protocol;
pub mod publish;
pub mod recovery;
/// The sequence tracker, shared with `zc recv`'s handler (its home is zc-core).
pub use zc_core::seq;
pub mod sink;

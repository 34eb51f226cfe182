//! The types every zc backend shares.
//!
//! - [`wire`]: checked zero-copy views over Ethernet II (with up to two 802.1Q
//!   tags), IPv4 and UDP, and a builder that writes a whole frame in place.
//! - [`measure`]: a median with its range, for every benchmark.
//! - [`md`]: the 32-byte market-data message and its codec.
//! - [`seq`]: a per-feed sequence tracker (gaps, duplicates, late arrivals).
//! - [`latency`]: one-way latency into an HdrHistogram.
//! - [`handler`]: decode → track → latency → per-symbol state, with drop counters.
//! - [`backend`]: the [`Receiver`]/[`Sender`] traits, the mode report and stats.
//! - [`contract`]: the [`Sender`] contract as a check each backend's tests run.
//! - [`loopback`]: an in-memory backend implementing both traits, for tests.
//! - [`feed`]: the test-feed generator (deliberate gaps/duplicates, open-loop pacing).
//! - [`sys`]: CPU pinning and the monotonic nanosecond clock.
//!
//! This crate has no `unsafe`: the backends own every unsafe block.
#![forbid(unsafe_code)]

pub mod backend;
pub mod contract;
pub mod error;
pub mod feed;
pub mod handler;
pub mod latency;
pub mod loopback;
pub mod md;
pub mod measure;
pub mod seq;
pub mod sys;
pub mod wire;

pub use backend::{
    Clock, DataPath, Datagram, DynReceiver, Mode, Receiver, RxBurst, RxStats, RxTimestamp,
    SendBurst, Sender, TxStats,
};
pub use error::{Error, ErrorKind, Result};
pub use handler::{HandlerConfig, MarketDataHandler};
pub use md::MarketData;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Packet captures for zc.
//!
//! - [`capture`]: record what any receiver gets to pcap or pcapng, off the
//!   receive path: the receive thread copies each frame into a bounded queue
//!   of preallocated chunks (a full queue drops and counts, never blocks) and a
//!   writer thread writes the files, rotates them, or keeps the last seconds
//!   in memory until a trigger fires.
//! - [`read`]: read pcap and pcapng files (Ethernet with VLAN tags, Linux
//!   cooked SLL and SLL2, raw IPv4) down to UDP datagrams with zc-core's frame
//!   parser, for offline runs of the handler and the feed decoders.
//! - [`replay`]: send a capture's UDP payloads through any sender at the
//!   original pace, scaled, at a fixed rate or as fast as possible, and
//!   measure how far each send was from its intended time.
//! - [`mod@write`] and [`link`]: the files themselves and the link layers.
//!
//! The file formats are read and written by the `pcap-file` crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod link;
pub mod read;
pub mod replay;
pub mod ring;
pub mod write;

pub use capture::{Capture, CaptureConfig, CaptureReport, CaptureStats};
pub use link::Format;
pub use read::CaptureReader;
pub use ring::RingConfig;
pub use write::Rotation;

//! The Linux system-call helpers the zc backends share, each written once.
//!
//! - [`sockopt`]: integer and struct socket options, `SO_MEMINFO` drop
//!   counts, and the one receive-buffer policy ([`sockopt::size_rcvbuf`]).
//! - [`sockaddr`]: `sockaddr_in`/`sockaddr_in6` decoded from raw bytes, as the
//!   kernel writes them into a name buffer (aligned or not).
//! - [`cmsg`]: a bounds-checked walk over control messages in raw bytes, and
//!   the payloads zc reads from them (`SCM_TIMESTAMPING`, `SO_RXQ_OVFL`,
//!   `IP_RECVERR`'s `sock_extended_err`).
//! - [`kernel`]: the running kernel's release.
//! - [`netif`]: a network interface's index by name.
//! - [`multicast`]: a group joined on an interface by a kernel socket, for
//!   the backends that bypass the kernel's receive path.
//! - [`cpu`]: CPU time of the calling thread, for every measurement.
//!
//! The parsers take `&[u8]` and never trust a length they read: they are the
//! code the `cmsg_sockaddr` fuzz target in `fuzz/` runs on arbitrary bytes.
//! `zc-core` has no `unsafe`; the few blocks this crate needs each carry their
//! reason.

pub mod cmsg;
pub mod cpu;
pub mod kernel;
pub mod multicast;
pub mod netif;
pub mod sockaddr;
pub mod sockopt;

pub use cpu::CpuTime;
pub use netif::ifindex;

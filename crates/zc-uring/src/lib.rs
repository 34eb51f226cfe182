//! io_uring backend for zc.
//!
//! - [`UringReceiver`]: one multishot `recvmsg` per socket, whose buffers come
//!   from a provided-buffer ring registered with the kernel; a burst lends the
//!   filled buffers out and gives them back to the ring when dropped.
//! - [`UringSender`]: batched submission of `IORING_OP_SEND` (small payloads)
//!   and `IORING_OP_SEND_ZC` (large ones), where a buffer becomes reusable only
//!   after its notification completion, and the kernel's "copied anyway"
//!   report (`IORING_NOTIF_USAGE_ZC_COPIED`) is counted and shown in the mode.
//!
//! Rings are `SINGLE_ISSUER` + `DEFER_TASKRUN` where the kernel has them
//! (SQPOLL on request); every flag the kernel refused, and what was used
//! instead, is listed in [`zc_core::Mode::details`].
//!
//! Dropping a receiver or sender cancels what is in flight and waits for the
//! last completion before the buffer memory is unmapped. When that cannot be
//! confirmed, the memory is leaked instead of freed and counted in
//! [`leaked_regions`]: the kernel must never write into freed memory.

mod mem;
mod ring;
mod rx;
mod tx;

pub use mem::leaked_regions;
pub use rx::{RxConfig, UringBurst, UringReceiver};
pub use tx::{TxConfig, UringSender};

/// The parsing of what the kernel writes into a provided buffer, for the fuzz
/// targets in `fuzz/` only: the `fuzzing` feature is off by default and
/// nothing here is a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::rx::{parse_received, recv_msghdr, Received};
}

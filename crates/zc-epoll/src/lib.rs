//! Kernel UDP socket backends for zc.
//!
//! Two receive paths and their send twins, behind the `zc-core` traits:
//!
//! | backend    | receive                                   | send                     |
//! |------------|-------------------------------------------|--------------------------|
//! | `recvfrom` | blocking `recvfrom`, one datagram a call  | `sendto`, one a call     |
//! | `recvmmsg` | blocking `recvmmsg(MSG_WAITFORONE)`, or a non-blocking socket with epoll readiness or spinning on `MSG_DONTWAIT` ([`BusyPoll`]), `recvmmsg` batches | `sendmmsg` batches |
//!
//! `recvfrom` is the traditional baseline (`docs/design.md` §1) and deliberately has nothing
//! else. `recvmmsg` adds receive timestamps (`SO_TIMESTAMPING`), kernel
//! drop counts (`SO_RXQ_OVFL`), optional `SO_BUSY_POLL`, `SO_REUSEPORT` and
//! multicast group membership. Both report socket drops from `SO_MEMINFO`.
//!
//! Buffers are allocated once when the socket is opened; receiving and sending
//! allocate nothing.

mod rx;
mod socket;
mod tx;

pub use rx::SocketReceiver;
pub use socket::{BusyPoll, RecvConfig, SendConfig, SocketApi};
pub use tx::SocketSender;

//! Socket configuration and set-up shared by the receiver and the sender.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr};
use zc_core::error::{Error, ErrorKind, Result};

/// Which system calls move the datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketApi {
    /// Blocking `recvfrom`/`sendto`, one datagram a call (the baseline).
    Recvfrom,
    /// Non-blocking socket with epoll readiness and `recvmmsg`/`sendmmsg` batches.
    Recvmmsg,
}

impl SocketApi {
    /// The backend name this API is known by.
    pub fn name(self) -> &'static str {
        match self {
            SocketApi::Recvfrom => "recvfrom",
            SocketApi::Recvmmsg => "recvmmsg",
        }
    }
}

/// How a `recvmmsg` receiver waits for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BusyPoll {
    /// Sleep in `epoll_wait` until the socket is readable.
    #[default]
    Off,
    /// Set `SO_BUSY_POLL` to this many microseconds and `SO_PREFER_BUSY_POLL`,
    /// and wait in a blocking `recvmmsg(MSG_WAITFORONE)`: the kernel polls
    /// the device queue in the receive call for that long before sleeping
    /// (needs a NAPI device; veth has one only with GRO or an XDP program).
    /// For one socket per thread only.
    Kernel(u32),
    /// Spin in user space on `recvmmsg(MSG_DONTWAIT)`: one core at 100 %.
    Spin,
    /// Sleep in a blocking `recvmmsg(MSG_WAITFORONE)` (timeouts through
    /// `SO_RCVTIMEO`): one system call per wake-up where epoll pays
    /// `epoll_wait` and `recvmmsg`. For one socket per thread only.
    Blocking,
}

impl BusyPoll {
    /// Whether the receiver waits in a blocking `recvmmsg` (no epoll).
    pub(crate) fn blocks(self) -> bool {
        matches!(self, Self::Blocking | Self::Kernel(_))
    }
}

/// Receiver settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvConfig {
    /// Address and port to bind (a multicast feed binds the group's port on 0.0.0.0
    /// or on the group address).
    pub bind: SocketAddr,
    /// Join this IPv4 multicast group on the interface that has `interface` as address.
    pub multicast: Option<(Ipv4Addr, Ipv4Addr)>,
    /// System calls to use.
    pub api: SocketApi,
    /// Datagrams per `recvmmsg` (ignored by `recvfrom`, which takes one).
    pub batch: usize,
    /// Largest datagram kept whole; longer ones are truncated and counted.
    pub max_payload: usize,
    /// `SO_RCVBUF` to ask for, in bytes; a warning says when the kernel caps it.
    pub rcvbuf: Option<usize>,
    /// `SO_REUSEPORT`, for several receivers on one port.
    pub reuse_port: bool,
    /// Steer the port's datagrams to the group's sockets by receiving CPU
    /// ([`zc_os::sockopt::steer_reuseport_by_cpu`]) for a group of this many
    /// sockets; set on the first socket of the group.
    pub steer_by_cpu: Option<u32>,
    /// Receive timestamps (`SO_TIMESTAMPING`): the NIC's when it stamps,
    /// else the kernel's software stamp on CLOCK_REALTIME.
    pub timestamps: bool,
    /// How to wait for data (`recvmmsg` only).
    pub busy_poll: BusyPoll,
}

impl RecvConfig {
    /// Defaults for `api` bound to `bind`: batch 64, 2 KiB datagrams, 32 MiB buffer.
    pub fn new(api: SocketApi, bind: SocketAddr) -> Self {
        Self {
            bind,
            multicast: None,
            api,
            batch: 64,
            max_payload: 2048,
            rcvbuf: Some(32 << 20),
            reuse_port: false,
            steer_by_cpu: None,
            timestamps: false,
            busy_poll: BusyPoll::Off,
        }
    }
}

/// Sender settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendConfig {
    /// Local address to bind (port 0 for any).
    pub bind: SocketAddr,
    /// Where every datagram goes (a unicast address or an IPv4 multicast group).
    pub dst: SocketAddr,
    /// System calls to use.
    pub api: SocketApi,
    /// Datagrams per `sendmmsg` (ignored by `sendto`).
    pub batch: usize,
    /// Largest payload a slot holds.
    pub max_payload: usize,
    /// `SO_SNDBUF` to ask for, in bytes.
    pub sndbuf: Option<usize>,
}

impl SendConfig {
    /// Defaults for `api` from `bind` to `dst`: batch 64, 2 KiB slots.
    pub fn new(api: SocketApi, bind: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            bind,
            dst,
            api,
            batch: 64,
            max_payload: 2048,
            sndbuf: Some(4 << 20),
        }
    }
}

pub(crate) fn check_sizes(batch: usize, max_payload: usize) -> Result<()> {
    if batch == 0 || batch > 1024 {
        return Err(Error::config(format!("batch {batch} must be 1 to 1024")));
    }
    if max_payload == 0 || max_payload > 65_507 {
        return Err(Error::config(format!(
            "max payload {max_payload} must be 1 to 65507 bytes (the largest UDP/IPv4 payload)"
        )));
    }
    Ok(())
}

pub(crate) fn udp_socket(addr: &SocketAddr) -> Result<Socket> {
    Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("create UDP socket", e))
}

pub(crate) fn bind(sock: &Socket, addr: SocketAddr) -> Result<()> {
    sock.bind(&SockAddr::from(addr))
        .map_err(|e| Error::io(format!("bind UDP {addr}"), e))
}

pub(crate) fn not_ipv4_multicast(group: Ipv4Addr) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("{group} is not an IPv4 multicast address (224.0.0.0/4)"),
    )
}

/// C structs for which all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for plain C structs without references or niches.
pub(crate) unsafe trait PlainC: Sized {}
// SAFETY: plain C structs of integers and raw pointers; zero is valid for each field.
unsafe impl PlainC for libc::sockaddr_storage {}
// SAFETY: as above.
unsafe impl PlainC for libc::iovec {}
// SAFETY: as above.
unsafe impl PlainC for libc::mmsghdr {}

/// `n` zeroed values of a plain C struct, on the heap (their address is stable).
pub(crate) fn zeroed_slice<T: PlainC>(n: usize) -> Box<[T]> {
    // SAFETY: `T: PlainC` guarantees all-zero bytes are a valid `T`.
    (0..n).map(|_| unsafe { std::mem::zeroed() }).collect()
}

//! The zc umbrella: every backend behind one feature flag each, and one way to
//! open any enabled backend by name.
//!
//! ```no_run
//! use zc::{open_receiver, RxSpec};
//! let mut rx = open_receiver(&RxSpec::new("recvmmsg", "198.18.0.1:9000".parse().unwrap()))?;
//! rx.recv_each(None, &mut |d| println!("{} bytes from {}", d.payload.len(), d.src))?;
//! # Ok::<(), zc::Error>(())
//! ```
//!
//! | name       | feature | path |
//! |------------|---------|------|
//! | `recvfrom` | `epoll` | blocking `recvfrom`/`sendto`, one datagram a call |
//! | `recvmmsg` | `epoll` | blocking `recvmmsg(MSG_WAITFORONE)`/`sendmmsg` batches |
//! | `uring`    | `uring` | io_uring multishot `recvmsg` on a provided-buffer ring; `SEND`/`SEND_ZC` |
//! | `afxdp`    | `afxdp` | AF_XDP socket per device queue, on zc's XDP filter (needs an interface) |
//! | `dpdk`     | `dpdk`  | DPDK on a `net_af_xdp` vdev bound to `interface` |
//! | `dpdk-packet` | `dpdk` | DPDK on a `net_af_packet` vdev bound to `interface` |

#![cfg_attr(docsrs, feature(doc_cfg))]

use std::net::{Ipv4Addr, SocketAddrV4};

#[cfg(feature = "afxdp")]
#[cfg_attr(docsrs, doc(cfg(feature = "afxdp")))]
pub use zc_afxdp;
pub use zc_core;
pub use zc_core::{DynReceiver, Error, ErrorKind, Result, Sender};
#[cfg(feature = "dpdk")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpdk")))]
pub use zc_dpdk;
#[cfg(feature = "epoll")]
#[cfg_attr(docsrs, doc(cfg(feature = "epoll")))]
pub use zc_epoll;
#[cfg(feature = "uring")]
#[cfg_attr(docsrs, doc(cfg(feature = "uring")))]
pub use zc_uring;

mod backends;

/// A backend zc knows of, compiled in or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendInfo {
    /// Name accepted by [`open_receiver`] and [`open_sender`].
    pub name: &'static str,
    /// Cargo feature of this crate that compiles it in.
    pub feature: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// Attaches to a network device (give [`RxSpec::interface`]) rather than
    /// receiving on an address through the kernel stack.
    pub needs_interface: bool,
    /// Gives receive timestamps when [`RxSpec::timestamps`] asks (the
    /// kernel's or the NIC's on the socket paths, the XDP program's on
    /// AF_XDP; the others refuse the option).
    pub rx_timestamps: bool,
    /// Whether this build has it.
    pub enabled: bool,
}

/// Every backend, in the order of the comparison table (baseline first).
pub const BACKENDS: &[BackendInfo] = &[
    BackendInfo {
        name: "recvfrom",
        feature: "epoll",
        summary: "blocking recvfrom/sendto, one datagram a call (the baseline)",
        needs_interface: false,
        rx_timestamps: false,
        enabled: cfg!(feature = "epoll"),
    },
    BackendInfo {
        name: "recvmmsg",
        feature: "epoll",
        summary: "blocking recvmmsg(MSG_WAITFORONE) batches (spinning on MSG_DONTWAIT with busy poll), sendmmsg",
        needs_interface: false,
        rx_timestamps: true,
        enabled: cfg!(feature = "epoll"),
    },
    BackendInfo {
        name: "uring",
        feature: "uring",
        summary: "io_uring multishot recvmsg into a kernel-registered buffer ring; batched SEND, SEND_ZC for large payloads",
        needs_interface: false,
        rx_timestamps: true,
        enabled: cfg!(feature = "uring"),
    },
    BackendInfo {
        name: "afxdp",
        feature: "afxdp",
        summary: "AF_XDP socket on a device queue; zc's XDP filter takes only the feed port",
        needs_interface: true,
        rx_timestamps: true,
        enabled: cfg!(feature = "afxdp"),
    },
    BackendInfo {
        name: "dpdk",
        feature: "dpdk",
        summary: "DPDK poll-mode driver on a net_af_xdp vdev bound to the interface; mbufs, busy-poll",
        needs_interface: true,
        rx_timestamps: false,
        enabled: cfg!(feature = "dpdk"),
    },
    BackendInfo {
        name: "dpdk-packet",
        feature: "dpdk",
        summary: "DPDK poll-mode driver on a net_af_packet vdev (TPACKET ring) bound to the interface",
        needs_interface: true,
        rx_timestamps: false,
        enabled: cfg!(feature = "dpdk"),
    },
];

/// The backends this build has.
pub fn enabled_backends() -> impl Iterator<Item = &'static BackendInfo> {
    BACKENDS.iter().filter(|b| b.enabled)
}

/// Looks a backend up by name; a clear error for an unknown or disabled one.
pub fn backend(name: &str) -> Result<&'static BackendInfo> {
    match BACKENDS.iter().find(|b| b.name == name) {
        Some(b) if b.enabled => Ok(b),
        Some(b) => Err(Error::new(
            ErrorKind::Unsupported,
            format!("backend {:?} is not compiled into this build", b.name),
        )
        .with_fix(format!(
            "rebuild with the `{}` feature of the zc crate",
            b.feature
        ))),
        None => Err(
            Error::new(ErrorKind::NotFound, format!("unknown backend {name:?}")).with_fix(format!(
                "use one of: {}",
                enabled_backends()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
    }
}

/// How to open a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxSpec {
    /// Backend name (see [`BACKENDS`]).
    pub backend: String,
    /// Feed address and UDP port to receive on.
    pub bind: SocketAddrV4,
    /// Interface, for backends that attach to a device (AF_XDP, DPDK).
    pub interface: Option<String>,
    /// Device queue, for backends bound to one (`afxdp`, `dpdk`; `dpdk-packet`
    /// sees every device queue and takes 0).
    pub queue: u32,
    /// Datagrams per burst.
    pub batch: usize,
    /// Busy-poll instead of sleeping (each backend's own way; reported in its mode).
    pub busy_poll: bool,
    /// Kernel busy polling for this many microseconds per receive call: the
    /// receiving thread runs the device's NAPI poll itself instead of waiting
    /// for a softirq (`recvmmsg`: `SO_BUSY_POLL` + `SO_PREFER_BUSY_POLL`;
    /// `uring`: `IORING_REGISTER_NAPI`; `afxdp`: `SO_PREFER_BUSY_POLL` +
    /// `SO_BUSY_POLL_BUDGET` of one batch). Acts only on a device with NAPI
    /// (veth: with GRO or an XDP program). `recvfrom` and the DPDK backends
    /// refuse it.
    pub kernel_busy_poll: Option<u32>,
    /// Join this multicast group (receiving on `bind`'s port, via the
    /// interface that has `bind`'s address).
    pub multicast: Option<Ipv4Addr>,
    /// Ask for kernel or NIC receive timestamps.
    pub timestamps: bool,
    /// Largest datagram payload.
    pub max_payload: usize,
    /// XDP attach mode (AF_XDP only; any other backend refuses all but `Auto`).
    pub xdp_mode: XdpAttach,
    /// Zero-copy or copy data path (AF_XDP only; any other backend refuses all but `Auto`).
    pub zero_copy: ZeroCopyPolicy,
    /// Where the DPDK EAL gets its memory (DPDK backends only; any other
    /// backend refuses all but `Auto`).
    pub dpdk_memory: DpdkMemory,
    /// Receive frames for any destination MAC (DPDK backends only; the
    /// others refuse it). It sets the interface's `IFF_PROMISC`, which the
    /// port clears when it closes, or the next zc after a crash.
    pub promiscuous: bool,
}

/// Which XDP attach mode an AF_XDP receiver insists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpAttach {
    /// Native (in the driver) when the driver takes it, else generic; the
    /// mode then names the fallback and the kernel's reason.
    #[default]
    Auto,
    /// Native or an error carrying the kernel's reason.
    Native,
    /// Generic (after the skb is built), which every device supports.
    Generic,
}

/// Whether an AF_XDP receiver insists on zero-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopyPolicy {
    /// Zero-copy when the driver takes it, else copy; the mode then names the
    /// fallback and the kernel's reason.
    #[default]
    Auto,
    /// Zero-copy or an error carrying the kernel's reason.
    Require,
    /// Copy mode only.
    Copy,
}

/// Where a DPDK backend's EAL gets its memory. The EAL starts once per
/// process, so every DPDK receiver and sender of a process must ask the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpdkMemory {
    /// Hugepages when enough are free (one TLB entry per 2 MiB of mbufs),
    /// else ordinary pages (`--no-huge`); the mode says which, and why.
    #[default]
    Auto,
    /// Ordinary pages (`--no-huge`) even when hugepages are free: the
    /// baseline a hugepage run is compared with.
    NoHuge,
}

/// The words `--xdp-mode`, `--zero-copy` and `--dpdk-memory` take.
macro_rules! named_enum {
    ($ty:ident, $what:literal, $($name:literal => $variant:ident),+) => {
        impl $ty {
            /// The word that names it on the command line.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(format!(
                        concat!("unknown ", $what, " {:?}: use one of {}"),
                        s,
                        [$($name),+].join(", ")
                    )),
                }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
named_enum!(XdpAttach, "XDP mode", "auto" => Auto, "native" => Native, "generic" => Generic);
named_enum!(ZeroCopyPolicy, "zero-copy policy", "auto" => Auto, "require" => Require, "copy" => Copy);
named_enum!(DpdkMemory, "DPDK memory", "auto" => Auto, "no-huge" => NoHuge);

impl RxSpec {
    /// Defaults: batch 64, no busy poll, queue 0, 2 KiB payloads.
    pub fn new(backend: &str, bind: SocketAddrV4) -> Self {
        Self {
            backend: backend.to_owned(),
            bind,
            interface: None,
            queue: 0,
            batch: 64,
            busy_poll: false,
            kernel_busy_poll: None,
            multicast: None,
            timestamps: false,
            max_payload: 2048,
            xdp_mode: XdpAttach::Auto,
            zero_copy: ZeroCopyPolicy::Auto,
            dpdk_memory: DpdkMemory::Auto,
            promiscuous: false,
        }
    }
}

/// How to open a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSpec {
    /// Backend name (see [`BACKENDS`]).
    pub backend: String,
    /// Local address (port 0: any).
    pub bind: SocketAddrV4,
    /// Destination of every datagram.
    pub dst: SocketAddrV4,
    /// Interface, for backends that write whole frames (AF_XDP, DPDK).
    pub interface: Option<String>,
    /// Destination MAC, for backends that write whole frames.
    pub dst_mac: Option<[u8; 6]>,
    /// Device queue, for backends bound to one (`afxdp`, `dpdk`; `dpdk-packet`
    /// sees every device queue and takes 0).
    pub queue: u32,
    /// Datagrams per send call.
    pub batch: usize,
    /// Largest payload.
    pub max_payload: usize,
    /// Where the DPDK EAL gets its memory (DPDK backends only; any other
    /// backend refuses all but `Auto`).
    pub dpdk_memory: DpdkMemory,
}

impl TxSpec {
    /// Defaults: batch 64, queue 0, 2 KiB payloads.
    pub fn new(backend: &str, bind: SocketAddrV4, dst: SocketAddrV4) -> Self {
        Self {
            backend: backend.to_owned(),
            bind,
            dst,
            interface: None,
            dst_mac: None,
            queue: 0,
            batch: 64,
            max_payload: 2048,
            dpdk_memory: DpdkMemory::Auto,
        }
    }
}

/// Releases what backends keep for the whole process (DPDK ports and the XDP
/// programs their drivers attached). Call it before exit, and before removing
/// an interface a backend was opened on; receivers and senders still open keep
/// their own port until dropped.
pub fn shutdown() {
    #[cfg(feature = "dpdk")]
    backends::close_dpdk_ports();
}

/// For a process about to exit without [`shutdown`] (a forced exit): undoes
/// at once, through the kernel, what its DPDK ports changed on their
/// interfaces (XDP programs detached, promiscuous mode off), leaving the
/// ports themselves alone. Returns what was done, one line each. A process
/// killed before it could is cleaned up by the next zc that opens the
/// interface (see `docs/SECURITY.md`).
pub fn restore_host_state() -> Vec<String> {
    #[cfg(feature = "dpdk")]
    return zc_dpdk::restore_host_state();
    #[cfg(not(feature = "dpdk"))]
    Vec::new()
}

/// Opens a receiver of any enabled backend.
///
/// An option the backend cannot honour is an error naming the backend and
/// the option, never silently dropped.
pub fn open_receiver(spec: &RxSpec) -> Result<Box<dyn DynReceiver + Send>> {
    let b = backend(&spec.backend)?;
    check_rx_options(b, spec)?;
    backends::open_receiver(b.name, spec)
}

/// Refuses, by name, every option of `spec` that backend `b` cannot honour.
fn check_rx_options(b: &BackendInfo, spec: &RxSpec) -> Result<()> {
    if b.name != "afxdp" {
        if spec.xdp_mode != XdpAttach::Auto {
            return Err(unsupported_option(
                b.name,
                &format!("an XDP mode ({})", spec.xdp_mode),
                "XDP modes apply to the afxdp backend only: drop the option",
            ));
        }
        if spec.zero_copy != ZeroCopyPolicy::Auto {
            return Err(unsupported_option(
                b.name,
                &format!("a zero-copy policy ({})", spec.zero_copy),
                "the zero-copy policy applies to the afxdp backend only: drop the option",
            ));
        }
    }
    check_dpdk_memory(b, spec.dpdk_memory)?;
    if spec.kernel_busy_poll.is_some() && !matches!(b.name, "recvmmsg" | "uring" | "afxdp") {
        return Err(unsupported_option(
            b.name,
            "kernel busy polling",
            "kernel busy polling applies to recvmmsg, uring and afxdp (DPDK always polls; \
             recvfrom is the plain baseline): drop the option or use --busy-poll",
        ));
    }
    if spec.promiscuous && b.feature != "dpdk" {
        return Err(unsupported_option(
            b.name,
            "promiscuous mode",
            "only the dpdk backends take frames for other MACs themselves: drop the option",
        ));
    }
    Ok(())
}

/// Opens `queues` receivers of `spec`'s backend on `spec`'s port, one per
/// receive queue, each to be driven by its own thread. The socket backends
/// (`recvfrom`, `recvmmsg`, `uring`) open a `SO_REUSEPORT` group whose
/// classic BPF program sends each datagram to socket `cpu % queues`, the
/// CPU the kernel received it on: with each NIC queue's interrupt (or NAPI
/// thread) on its own CPU, socket `q` gets queue `q`'s traffic, and a flow
/// stays on one socket. `afxdp` opens queues `spec.queue ..` on one UMEM
/// and one XDP program. `dpdk` opens a `net_af_xdp` port on each device
/// queue from `spec.queue`; `dpdk-packet` one `net_af_packet` port with
/// `queues` queues, which the kernel fills by flow hash (one flow stays on
/// one queue). One queue is [`open_receiver`].
pub fn open_receivers(spec: &RxSpec, queues: u32) -> Result<Vec<Box<dyn DynReceiver + Send>>> {
    if queues <= 1 {
        return Ok(vec![open_receiver(spec)?]);
    }
    // The option checks are the same for every queue.
    let b = backend(&spec.backend)?;
    if spec.multicast.is_some() {
        return Err(unsupported_option(
            b.name,
            "several queues with a multicast group",
            "receive a multicast feed on one queue",
        ));
    }
    check_rx_options(b, spec)?;
    backends::open_receivers(b.name, spec, queues)
}

/// Refuses a DPDK memory choice on a backend without an EAL.
fn check_dpdk_memory(backend: &BackendInfo, memory: DpdkMemory) -> Result<()> {
    if memory != DpdkMemory::Auto && backend.feature != "dpdk" {
        return Err(unsupported_option(
            backend.name,
            &format!("a DPDK memory choice ({memory})"),
            "the EAL's memory applies to the dpdk backends only: drop the option",
        ));
    }
    Ok(())
}

/// The error for an option `backend` cannot honour.
pub(crate) fn unsupported_option(backend: &str, option: &str, fix: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("backend {backend} cannot honour {option}"),
    )
    .with_fix(fix)
}

/// Opens a sender of any enabled backend.
pub fn open_sender(spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    let b = backend(&spec.backend)?;
    check_dpdk_memory(b, spec.dpdk_memory)?;
    backends::open_sender(b.name, spec)
}

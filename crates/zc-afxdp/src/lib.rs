//! AF_XDP receive and send backend for zc, on its own XDP filter program.
//!
//! Receive path: our XDP program (`bpf/zc_filter.bpf.c`) redirects UDP
//! datagrams to the configured destination ports into the AF_XDP socket of
//! the queue they arrived on (only to the configured destination addresses,
//! any address when that is 0.0.0.0), and passes everything else (ARP, ICMP, SSH,
//! other UDP ports) to the kernel. Each socket's frames cycle
//! fill ring → kernel → rx ring → a [`RxBurst`](zc_core::RxBurst) of borrowed
//! datagrams → back to the fill ring when the burst is dropped; the fill ring
//! is sized to hold every frame of its socket, so it is always kept full.
//!
//! Send path: payloads are written in place into UMEM frames, headers are built
//! around them by `zc_core::wire::UdpFrameSpec`, and a frame goes back to the
//! free list only when the kernel returns it on the completion ring.
//!
//! Modes are tried in order and reported in [`Mode`](zc_core::Mode): native
//! then generic XDP; zero-copy then copy; `need_wakeup`; busy polling.
//!
//! ```no_run
//! use zc_afxdp::{AfXdpConfig, open_receivers};
//! use zc_core::{Receiver, RxBurst};
//! let mut cfg = AfXdpConfig::new("eth0", 9000);
//! cfg.queues = vec![0, 1];
//! let mut rxs = open_receivers(&cfg)?;
//! let burst = rxs[0].recv_burst(Some(std::time::Duration::from_millis(10)))?;
//! for d in burst.iter() { let _ = d.payload; }
//! # Ok::<(), zc_core::Error>(())
//! ```

use std::net::Ipv4Addr;

mod program;
mod ring;
mod rx;
mod socket;
mod sys;
mod tx;
mod umem;

pub use program::{AttachedMode, FilterProgram, XdpMode, MAX_ADDRS, MAX_PORTS, MAX_QUEUES};
pub use rx::{open_receivers, AfXdpBurst, AfXdpQueues, AfXdpReceiver};
pub use sys::{ifindex, mac_address, raise_memlock, Ifindex};
pub use tx::{AfXdpSender, AfXdpSenderConfig};
pub use umem::{DescError, UmemLayout, UmemMemory, FRAME_SIZES};
pub use zc_nic::{check_queue, rx_queues};

/// Whether to use zero-copy (the NIC DMAs straight into the UMEM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy when the driver supports it, else copy mode (reported).
    Auto,
    /// Zero-copy or an error.
    Require,
    /// Copy mode only.
    Off,
}

/// Busy-polling settings (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
/// `SO_BUSY_POLL_BUDGET`): the receiving thread runs the device's NAPI poll
/// itself instead of waiting for a softirq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// Microseconds to busy-poll in each receive call.
    pub usecs: u32,
    /// Packets per NAPI poll.
    pub budget: u32,
}

/// Receiver settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Interface to attach to.
    pub ifname: String,
    /// Receive queues, one socket each, sharing one UMEM.
    pub queues: Vec<u32>,
    /// UDP destination ports redirected to AF_XDP; all other traffic goes to the kernel.
    pub ports: Vec<u16>,
    /// IPv4 destination addresses redirected (with one of `ports`): the
    /// address the feed is bound to, and any multicast group it joins.
    /// `0.0.0.0` matches every address, so that the filter takes datagrams to
    /// the port meant for other local addresses too: use it only for a
    /// receiver bound to 0.0.0.0.
    pub addrs: Vec<Ipv4Addr>,
    /// IPv4 multicast groups to join on the interface, through a kernel
    /// socket held as long as the receivers (so the kernel sends the IGMP
    /// report and the NIC accepts the group's MAC); each is added to the
    /// filter's destination addresses.
    pub multicast: Vec<Ipv4Addr>,
    /// UMEM frames per queue (all of them sit in the fill ring when idle).
    pub frames_per_queue: u32,
    /// Frame size: 2048 or 4096.
    pub frame_size: u32,
    /// Rx ring entries per socket (a power of two).
    pub rx_ring: u32,
    /// Datagrams per burst at most.
    pub batch: usize,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Use `XDP_USE_NEED_WAKEUP` (the kernel tells us when a syscall is needed).
    pub need_wakeup: bool,
    /// Busy polling, off when `None`.
    pub busy_poll: Option<BusyPoll>,
    /// Wait for datagrams by spinning on the rx ring in user space (no
    /// syscall) instead of sleeping in `poll`. A sleeping receiver makes the
    /// CPU that runs the NAPI poll wake it (an IPI) on every flush; spinning
    /// costs a whole core but takes that work off the receive path.
    pub spin: bool,
    /// Put the UMEM on 2 MiB hugepages when some are free.
    pub hugepages: bool,
    /// Stamp each frame in its XDP metadata when the XDP program takes it:
    /// the NIC's receive stamp when the driver gives one
    /// ([`Clock::NicHardware`](zc_core::Clock::NicHardware); native mode on
    /// Linux 6.3+, through the `bpf_xdp_metadata_rx_timestamp` kfunc of a
    /// program bound to the device), else CLOCK_MONOTONIC at the hook, in
    /// the receive softirq before any socket work
    /// ([`Clock::Monotonic`](zc_core::Clock::Monotonic)). The mode says
    /// which, and why not the NIC's.
    pub rx_timestamps: bool,
}

impl AfXdpConfig {
    /// Queue 0 of `ifname`, redirecting UDP port `port` to any destination
    /// address (set [`AfXdpConfig::addrs`] to narrow it), with defaults that
    /// hold a few milliseconds of traffic at line rate.
    pub fn new(ifname: &str, port: u16) -> Self {
        Self {
            ifname: ifname.to_owned(),
            queues: vec![0],
            ports: vec![port],
            addrs: vec![Ipv4Addr::UNSPECIFIED],
            multicast: Vec::new(),
            frames_per_queue: 4096,
            frame_size: 2048,
            rx_ring: 2048,
            batch: 64,
            xdp_mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            need_wakeup: true,
            busy_poll: None,
            spin: false,
            hugepages: false,
            rx_timestamps: false,
        }
    }
}

/// Checks that `n` is a power of two in 1..=max, for ring sizes.
pub(crate) fn ring_size(what: &str, n: u32) -> zc_core::Result<u32> {
    if n == 0 || !n.is_power_of_two() || n > 1 << 20 {
        return Err(zc_core::Error::config(format!(
            "{what} of {n} entries must be a power of two from 1 to 1048576"
        )));
    }
    Ok(n)
}

/// The descriptor checks and ring cursors on heap memory, for the fuzz targets
/// in `fuzz/` only: the `fuzzing` feature is off by default and nothing here
/// is a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::ring::LoopRing;
    pub use crate::rx::{collect_descriptors, Collected};
}

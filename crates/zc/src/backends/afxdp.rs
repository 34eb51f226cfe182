//! `afxdp`: AF_XDP on zc's own XDP filter (crate `zc-afxdp`).
//!
//! The receiver attaches to `spec.interface`, queue `spec.queue`, and takes
//! datagrams to `spec.bind` (its address and UDP port; any address when bound
//! to 0.0.0.0), and to `spec.multicast`'s group, joined on the interface by a
//! kernel socket. Everything else on the interface still goes to the kernel. A device
//! with several receive queues needs one receiver per queue
//! (`zc_afxdp::open_receivers`, or `zc_afxdp::AfXdpQueues` for all of them
//! behind one handle), or its traffic steered to one queue.

use crate::{RxSpec, TxSpec, XdpAttach, ZeroCopyPolicy};
use std::net::SocketAddrV4;
use zc_afxdp::{AfXdpConfig, AfXdpSender, AfXdpSenderConfig, BusyPoll, XdpMode, ZeroCopy};
use zc_core::wire::{ETH_HEADER_LEN, IPV4_MIN_HEADER_LEN, UDP_HEADER_LEN, VLAN_TAG_LEN};
use zc_core::{DynReceiver, Error, ErrorKind, Result, Sender};

/// Bytes the kernel keeps in front of a received frame in copy mode (`XDP_PACKET_HEADROOM`).
const XDP_HEADROOM: usize = 256;

/// The smallest frame size (2048 or 4096) that holds `payload` bytes plus
/// headers (and, on receive, the kernel's headroom).
fn frame_size(payload: usize, headroom: usize) -> Result<u32> {
    let overhead =
        ETH_HEADER_LEN + 2 * VLAN_TAG_LEN + IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN + headroom;
    let need = payload.saturating_add(overhead);
    match need {
        0..=2048 => Ok(2048),
        2049..=4096 => Ok(4096),
        _ => Err(Error::config(format!(
            "afxdp frames hold at most {} payload bytes ({payload} asked)",
            4096 - overhead
        ))),
    }
}

fn interface<'a>(interface: &'a Option<String>, side: &str) -> Result<&'a str> {
    interface.as_deref().ok_or_else(|| {
        Error::config(format!(
            "afxdp {side} attaches to a network device: give the interface (and queue)"
        ))
    })
}

pub(super) fn open_receiver(spec: &RxSpec) -> Result<Box<dyn DynReceiver + Send>> {
    let mut rxs = open_receivers(spec, 1)?;
    match rxs.pop() {
        Some(rx) => Ok(rx),
        None => Err(Error::new(
            ErrorKind::Io,
            "afxdp opened no receiver for one queue",
        )),
    }
}

/// Receivers on `queues` consecutive device queues from `spec.queue`,
/// sharing one UMEM (each queue its own frames and rings) and one XDP
/// program, each to be driven by its own thread.
pub(super) fn open_receivers(
    spec: &RxSpec,
    queues: u32,
) -> Result<Vec<Box<dyn DynReceiver + Send>>> {
    let ifname = interface(&spec.interface, "receiver")?;
    let mut cfg = AfXdpConfig::new(ifname, spec.bind.port());
    // Datagrams to the port on other local addresses stay with the kernel.
    cfg.addrs = vec![*spec.bind.ip()];
    // A group is joined on the interface by a kernel socket (IGMP goes out)
    // and its address added to the filter's.
    cfg.multicast = spec.multicast.into_iter().collect();
    cfg.xdp_mode = match spec.xdp_mode {
        XdpAttach::Auto => XdpMode::Auto,
        XdpAttach::Native => XdpMode::Native,
        XdpAttach::Generic => XdpMode::Generic,
    };
    cfg.zero_copy = match spec.zero_copy {
        ZeroCopyPolicy::Auto => ZeroCopy::Auto,
        ZeroCopyPolicy::Require => ZeroCopy::Require,
        ZeroCopyPolicy::Copy => ZeroCopy::Off,
    };
    cfg.queues = (0..queues)
        .map(|q| spec.queue.checked_add(q))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::config(format!("queues {} + {queues} overflow", spec.queue)))?;
    cfg.batch = spec.batch;
    // The XDP program's CLOCK_MONOTONIC stamp, in the frame's metadata.
    cfg.rx_timestamps = spec.timestamps;
    cfg.frame_size = frame_size(spec.max_payload, XDP_HEADROOM)?;
    // Slack of the same order as the socket backends' large receive buffer:
    // with 2048 entries a receiver descheduled for a few ms at 0.5 Mpps drops
    // (measured in docs/af_xdp.md). 32 MiB of UMEM at 2 KiB frames.
    cfg.frames_per_queue = 16384;
    cfg.rx_ring = 8192;
    // Busy polling here means spinning on the rx ring without syscalls: a
    // receiver sleeping in poll() makes the NAPI CPU wake it on every flush,
    // which on veth costs the sending CPU about a quarter of its time
    // (docs/af_xdp.md). Kernel busy polling (SO_PREFER_BUSY_POLL) is
    // `zc_afxdp::AfXdpConfig::busy_poll`.
    cfg.spin = spec.busy_poll;
    cfg.busy_poll = spec.kernel_busy_poll.map(|usecs| BusyPoll {
        usecs,
        // One NAPI poll fills at most one receive batch.
        budget: u32::try_from(spec.batch).unwrap_or(u32::MAX),
    });
    Ok(zc_afxdp::open_receivers(&cfg)?
        .into_iter()
        .map(|rx| Box::new(rx) as Box<dyn DynReceiver + Send>)
        .collect())
}

pub(super) fn open_sender(spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    let ifname = interface(&spec.interface, "sender")?;
    let mut cfg = AfXdpSenderConfig::new(ifname, spec.dst);
    cfg.queue = spec.queue;
    cfg.batch = spec.batch;
    cfg.dst_mac = spec.dst_mac;
    cfg.frame_size = frame_size(spec.max_payload, 0)?;
    if !spec.bind.ip().is_unspecified() {
        let port = if spec.bind.port() == 0 {
            40000
        } else {
            spec.bind.port()
        };
        cfg.src = Some(SocketAddrV4::new(*spec.bind.ip(), port));
    }
    Ok(Box::new(AfXdpSender::open(&cfg)?))
}

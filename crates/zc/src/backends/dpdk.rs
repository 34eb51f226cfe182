//! `dpdk` and `dpdk-packet`: DPDK on a vdev bound to an interface (crate `zc-dpdk`).
//!
//! The EAL starts once per process, without hugepages (`--no-huge`, in
//! memory), on the first CPU the calling thread may run on. Ports live for the
//! process, as in any DPDK application: the first open of a (backend,
//! interface) pair starts a port with its own mempool, later opens reuse it,
//! and [`crate::shutdown`] closes them all. DPDK 22.11's `net_af_xdp` cannot
//! be closed and opened again on the same interface in one process (its
//! socket and fill-ring mbufs outlive the port), so reuse is the only way a
//! process can open the same feed twice.

use crate::{RxSpec, TxSpec};
use std::sync::Mutex;
use std::time::Duration;
use zc_core::wire::UdpFrameSpec;
use zc_core::Receiver;
use zc_core::{Datagram, DynReceiver, Error, Mode, Result, RxBurst, RxStats, Sender};
use zc_dpdk::{
    open_interface, Eal, EalConfig, IfaceDriver, Mempool, MempoolConfig, Port, PortConfig,
    RxConfig, TxConfig,
};
use zc_os::multicast::Membership;

fn driver(name: &str) -> IfaceDriver {
    if name == "dpdk-packet" {
        IfaceDriver::AfPacket
    } else {
        IfaceDriver::AfXdp
    }
}

/// Open ports, by backend name and interface.
static PORTS: Mutex<Vec<(String, String, Port)>> = Mutex::new(Vec::new());

/// Closes every port this process opened (receivers and senders still open
/// keep theirs until they are dropped).
pub(crate) fn close_ports() {
    PORTS.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

fn port(name: &str, interface: Option<&str>) -> Result<Port> {
    let iface = interface.ok_or_else(|| {
        Error::config(format!(
            "{name} attaches to a network device: give its interface (--interface)"
        ))
    })?;
    let mut ports = PORTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, _, port)) = ports.iter().find(|(n, i, _)| n == name && i == iface) {
        return Ok(port.clone());
    }
    let affinity = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| Error::io("sched_getaffinity", e.into()))?;
    let core = (0..nix::sched::CpuSet::count())
        .find(|&c| affinity.is_set(c).unwrap_or(false))
        .ok_or_else(|| Error::config("this thread may run on no CPU"))?;
    let eal = Eal::shared(&EalConfig::no_huge(core))?;
    // Deep rings, as a market-data receiver wants: 4096 frames ride out a
    // scheduling stall of ~80 ms at 50 kpps (the socket backends get 64 MiB of
    // socket buffer for the same reason). The pool holds the rx ring, the
    // af_xdp fill ring and bursts in flight.
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 16_383,
            ..MempoolConfig::default()
        },
    )?;
    let port_cfg = PortConfig {
        rx_desc: 4096,
        ..PortConfig::default()
    };
    let port = open_interface(&eal, iface, driver(name), &pool, port_cfg)?;
    ports.push((name.to_owned(), iface.to_owned(), port.clone()));
    Ok(port)
}

fn queue(q: u32) -> Result<u16> {
    u16::try_from(q)
        .map_err(|_| Error::config(format!("queue {q} is beyond DPDK's 16-bit queue ids")))
}

pub(super) fn open_receiver(name: &str, spec: &RxSpec) -> Result<Box<dyn DynReceiver + Send>> {
    if spec.timestamps {
        return Err(crate::unsupported_option(
            name,
            "receive timestamps",
            "the net_af_xdp and net_af_packet drivers give no receive timestamp: drop the option, or use recvmmsg or uring for kernel timestamps",
        ));
    }
    let port = port(name, spec.interface.as_deref())?;
    // The vdev's interface is a kernel netdev: a kernel socket joins the
    // group on it (IGMP goes out, the NIC's MAC filter takes the group).
    let membership = match (spec.multicast, spec.interface.as_deref()) {
        (Some(group), Some(iface)) => Some(Membership::join_named(group, iface)?),
        _ => None,
    };
    let batch = u16::try_from(spec.batch.min(zc_dpdk::MAX_BURST as usize)).unwrap_or(32);
    let mut rx = port.receiver(
        queue(spec.queue)?,
        RxConfig {
            batch,
            accept: Some(spec.bind),
            group: spec.multicast,
        },
    )?;
    // A reused port may hold frames that arrived after the last receiver
    // closed: they belong to nobody now.
    while !rx.recv_burst(Some(Duration::ZERO))?.is_empty() {}
    Ok(match membership {
        Some(m) => Box::new(Joined::new(rx, m)),
        None => Box::new(rx),
    })
}

/// A receiver and the group membership it needs, left when it is dropped.
struct Joined<R> {
    rx: R,
    mode: Mode,
    _membership: Membership,
}

impl<R: DynReceiver> Joined<R> {
    fn new(rx: R, membership: Membership) -> Self {
        let mut mode = rx.mode().clone();
        mode.details
            .push(format!("joined {} by a kernel socket", membership.group()));
        Self {
            rx,
            mode,
            _membership: membership,
        }
    }
}

impl<R: DynReceiver> DynReceiver for Joined<R> {
    fn recv_each(
        &mut self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&Datagram<'_>),
    ) -> Result<usize> {
        self.rx.recv_each(timeout, f)
    }

    fn recv_each_frame(
        &mut self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&Datagram<'_>, Option<&[u8]>),
    ) -> Result<usize> {
        self.rx.recv_each_frame(timeout, f)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> RxStats {
        self.rx.stats()
    }
}

pub(super) fn open_sender(name: &str, spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    let port = port(name, spec.interface.as_deref())?;
    let dst_mac = spec.dst_mac.ok_or_else(|| {
        Error::config(format!(
            "{name} writes whole frames: give the destination MAC address"
        ))
    })?;
    let frame = UdpFrameSpec {
        src_mac: port.mac(),
        dst_mac,
        vlan: None,
        src: spec.bind,
        dst: spec.dst,
        ttl: 64,
        udp_checksum: true,
    };
    let mut cfg = TxConfig::new(frame);
    cfg.batch = u16::try_from(spec.batch.min(zc_dpdk::MAX_TX_BURST as usize)).unwrap_or(32);
    Ok(Box::new(port.sender(queue(spec.queue)?, cfg)?))
}

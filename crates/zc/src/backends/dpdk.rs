//! `dpdk` and `dpdk-packet`: DPDK on a vdev bound to an interface (crate `zc-dpdk`).
//!
//! The EAL starts once per process, in memory, on the first CPU the calling
//! thread may run on: on hugepages when at least [`HUGEPAGES_NEEDED_MB`] are
//! free, else on ordinary pages (`--no-huge`), or on ordinary pages when
//! asked ([`DpdkMemory::NoHuge`]); the receiver's mode says which and why.
//! Ports live for the
//! process, as in any DPDK application: the first open of a (backend,
//! interface, device queue) starts a port with its own mempool, later opens
//! reuse it, and [`crate::shutdown`] closes them all.
//!
//! Queues: `dpdk` (`net_af_xdp`) opens one port per device queue, its port
//! queue 0 on device queue `RxSpec::queue` (DPDK 22.11's driver refuses
//! several queues in one port on a device without combined channels, such
//! as veth); several queues are several such ports. `dpdk-packet`
//! (`net_af_packet`) sees every device queue through one AF_PACKET socket
//! per port queue, and the kernel spreads frames over those sockets by flow
//! hash (`PACKET_FANOUT_HASH`): several queues are one port with that many
//! queues, and one flow always lands on one of them. DPDK 22.11's `net_af_xdp` cannot
//! be closed and opened again on the same interface in one process (its
//! socket and fill-ring mbufs outlive the port), so reuse is the only way a
//! process can open the same feed twice.

use crate::{DpdkMemory, RxSpec, TxSpec};
use std::sync::Mutex;
use std::time::Duration;
use zc_core::wire::UdpFrameSpec;
use zc_core::Receiver;
use zc_core::{Datagram, DynReceiver, Error, Mode, Result, RxBurst, RxStats, Sender};
use zc_dpdk::{
    free_hugepages_mb, open_interface_at, Eal, EalConfig, IfaceDriver, Memory, Mempool,
    MempoolConfig, Port, PortConfig, RxConfig, TxConfig,
};
use zc_os::multicast::Membership;

fn driver(name: &str) -> IfaceDriver {
    if name == "dpdk-packet" {
        IfaceDriver::AfPacket
    } else {
        IfaceDriver::AfXdp
    }
}

/// Where a port sits: backend name, interface, first device queue, and
/// its number of queues.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortKey {
    name: String,
    interface: String,
    device_queue: u16,
    queues: u16,
}

/// Open ports, by where they sit, and whether promiscuous.
static PORTS: Mutex<Vec<(PortKey, bool, Port)>> = Mutex::new(Vec::new());

/// Closes every port this process opened (receivers and senders still open
/// keep theirs until they are dropped).
pub(crate) fn close_ports() {
    PORTS.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Free hugepage memory below which [`DpdkMemory::Auto`] starts the EAL on
/// ordinary pages: a port's pool of 16 K mbufs takes about 40 MB, and the EAL
/// its heap besides.
const HUGEPAGES_NEEDED_MB: u64 = 128;

/// The memory the process's EAL was started with, for the policy that chose
/// it, and the sentence the receivers' modes carry. Decided once: the EAL
/// itself takes hugepages, so asking again later would see fewer free.
static EAL_MEMORY: Mutex<Option<(DpdkMemory, Memory, String)>> = Mutex::new(None);

/// The EAL memory for `policy`, and why.
fn eal_memory(policy: DpdkMemory) -> Result<(Memory, String)> {
    let mut chosen = EAL_MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, m, why)) = &*chosen {
        if *p == policy {
            return Ok((m.clone(), why.clone()));
        }
    }
    let ordinary = Memory::NoHuge { mb: 256 };
    let (memory, why) = match policy {
        DpdkMemory::NoHuge => (
            ordinary,
            "EAL on ordinary pages (--no-huge, as asked)".to_owned(),
        ),
        DpdkMemory::Auto => {
            let free = free_hugepages_mb()?;
            if free >= HUGEPAGES_NEEDED_MB {
                (
                    Memory::Hugepages { mb: None },
                    format!("EAL on hugepages ({free} MB were free)"),
                )
            } else {
                (
                    ordinary,
                    format!("EAL on ordinary pages (--no-huge): {free} MB of hugepages free, {HUGEPAGES_NEEDED_MB} MB wanted"),
                )
            }
        }
    };
    *chosen = Some((policy, memory.clone(), why.clone()));
    Ok((memory, why))
}

/// The port of `name` on `interface` from `device_queue` with `queues`
/// queues, opened on first use; `promiscuous`: what a receiver needs
/// (`None`: a sender, which takes the port as it is).
fn port(
    name: &str,
    interface: Option<&str>,
    (device_queue, queues): (u16, u16),
    policy: DpdkMemory,
    promiscuous: Option<bool>,
) -> Result<(Port, String)> {
    let iface = interface.ok_or_else(|| {
        Error::config(format!(
            "{name} attaches to a network device: give its interface (--interface)"
        ))
    })?;
    let key = PortKey {
        name: name.to_owned(),
        interface: iface.to_owned(),
        device_queue,
        queues,
    };
    let mut ports = PORTS.lock().unwrap_or_else(|p| p.into_inner());
    let (memory, why) = eal_memory(policy)?;
    if let Some((k, _, _)) = ports.iter().find(|(k, _, _)| {
        k.name == key.name
            && k.interface == key.interface
            && k.device_queue == key.device_queue
            && k.queues != key.queues
    }) {
        return Err(Error::config(format!(
            "the {name} port on {iface} is open with {} queue(s) in this process, and ports live for the process ({queues} asked)",
            k.queues
        ))
        .with_fix("open every receiver of the interface with the same number of queues"));
    }
    if let Some((_, promisc, port)) = ports.iter().find(|(k, _, _)| *k == key) {
        if promiscuous.is_some_and(|p| p != *promisc) {
            return Err(Error::config(format!(
                "the {name} port on {iface} is open {} promiscuous mode in this process, and ports live for the process",
                if *promisc { "with" } else { "without" }
            ))
            .with_fix("open every receiver of the interface with the same promiscuous setting"));
        }
        return Ok((port.clone(), why));
    }
    let affinity = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| Error::io("sched_getaffinity", e.into()))?;
    let core = (0..nix::sched::CpuSet::count())
        .find(|&c| affinity.is_set(c).unwrap_or(false))
        .ok_or_else(|| Error::config("this thread may run on no CPU"))?;
    let mut cfg = EalConfig::no_huge(core);
    // Vdevs only: nothing DMAs by physical address, and with virtual
    // addresses the pool packs into one IOVA-contiguous zone on hugepages too.
    cfg.iova_va = matches!(memory, Memory::Hugepages { .. });
    cfg.memory = memory;
    let eal = Eal::shared(&cfg)?;
    // Deep rings, as a market-data receiver wants (the socket backends get
    // 64 MiB of socket buffer for the same reason): 4096 descriptors, of
    // which net_af_packet holds about 3700 frames and DPDK 22.11's
    // net_af_xdp only the 2048 it posts to its fill ring (docs/BENCHMARKS.md
    // §7). The pool holds the rx ring, the af_xdp fill ring and bursts in
    // flight.
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 16_383,
            ..MempoolConfig::default()
        },
    )?;
    let promiscuous = promiscuous.unwrap_or(false);
    let port_cfg = PortConfig {
        rx_desc: 4096,
        rx_queues: queues,
        tx_queues: queues,
        promiscuous,
        ..PortConfig::default()
    };
    let port = open_interface_at(&eal, iface, driver(name), device_queue, &pool, port_cfg)?;
    ports.push((key, promiscuous, port.clone()));
    Ok((port, why))
}

/// Where `spec.queue` (and the `n` queues from it) sit for `name`: the
/// device queue of the port and the port's queue count, and the port queue
/// of the first receiver. `net_af_xdp` puts device queue q on port queue 0
/// of its own port; `net_af_packet` has one port with `n` queues.
fn placement(name: &str, spec_queue: u32, n: u32) -> Result<((u16, u16), u16)> {
    let n = u16::try_from(n)
        .map_err(|_| Error::config(format!("{n} queues are beyond DPDK's 16-bit queue ids")))?;
    Ok(match driver(name) {
        IfaceDriver::AfXdp => ((queue(spec_queue)?, 1), 0),
        IfaceDriver::AfPacket => ((0, n), queue(spec_queue)?),
    })
}

fn queue(q: u32) -> Result<u16> {
    u16::try_from(q)
        .map_err(|_| Error::config(format!("queue {q} is beyond DPDK's 16-bit queue ids")))
}

pub(super) fn open_receiver(name: &str, spec: &RxSpec) -> Result<Box<dyn DynReceiver + Send>> {
    if spec.timestamps {
        return Err(no_timestamps(name));
    }
    let (at, port_queue) = placement(name, spec.queue, 1)?;
    // The vdev's interface is a kernel netdev: a kernel socket joins the
    // group on it (IGMP goes out, the NIC's MAC filter takes the group).
    let membership = match (spec.multicast, spec.interface.as_deref()) {
        (Some(group), Some(iface)) => Some(Membership::join_named(group, iface)?),
        _ => None,
    };
    open_on(name, spec, at, port_queue, membership)
}

/// Receivers on `n` queues from `spec.queue` (see [`placement`]), each to
/// be driven by its own thread.
pub(super) fn open_receivers(
    name: &str,
    spec: &RxSpec,
    n: u32,
) -> Result<Vec<Box<dyn DynReceiver + Send>>> {
    if spec.timestamps {
        return Err(no_timestamps(name));
    }
    let ((first, queues), port_queue) = placement(name, spec.queue, n)?;
    let n = u16::try_from(n).unwrap_or(u16::MAX);
    (0..n)
        .map(|i| match driver(name) {
            IfaceDriver::AfXdp => {
                let q = first.checked_add(i).ok_or_else(|| {
                    Error::config(format!("device queues {first} + {n} overflow"))
                })?;
                open_on(name, spec, (q, 1), 0, None)
            }
            IfaceDriver::AfPacket => open_on(name, spec, (first, queues), port_queue + i, None),
        })
        .collect()
}

/// A receiver on port queue `port_queue` of the port at `at`.
fn open_on(
    name: &str,
    spec: &RxSpec,
    at: (u16, u16),
    port_queue: u16,
    membership: Option<Membership>,
) -> Result<Box<dyn DynReceiver + Send>> {
    let (port, memory) = port(
        name,
        spec.interface.as_deref(),
        at,
        spec.dpdk_memory,
        Some(spec.promiscuous),
    )?;
    let batch = u16::try_from(spec.batch.min(zc_dpdk::MAX_BURST as usize)).unwrap_or(32);
    let mut rx = port.receiver(
        port_queue,
        RxConfig {
            batch,
            accept: Some(spec.bind),
            group: spec.multicast,
            ..RxConfig::default()
        },
    )?;
    // A reused port may hold frames that arrived after the last receiver
    // closed: they belong to nobody now.
    while !rx.recv_burst(Some(Duration::ZERO))?.is_empty() {}
    let mut described = Described::new(rx, memory, membership);
    described.mode.queue = Some(u32::from(at.0 + port_queue));
    Ok(Box::new(described))
}

fn no_timestamps(name: &str) -> Error {
    crate::unsupported_option(
        name,
        "receive timestamps",
        "the net_af_xdp and net_af_packet drivers give no receive timestamp: drop the option, or use recvmmsg, uring or afxdp for receive timestamps",
    )
}

/// A receiver whose mode also says where the EAL's memory is, with the group
/// membership it needs (left when it is dropped). Its kernel drops count from
/// its opening: the port's `imissed` is port-wide and lives as long as the
/// port, which this process reuses across receivers.
struct Described<R> {
    rx: R,
    mode: Mode,
    drops_at_open: u64,
    _membership: Option<Membership>,
}

impl<R: DynReceiver> Described<R> {
    fn new(rx: R, memory: String, membership: Option<Membership>) -> Self {
        let mut mode = rx.mode().clone();
        mode.details.push(memory);
        if let Some(m) = &membership {
            mode.details
                .push(format!("joined {} by a kernel socket", m.group()));
        }
        let drops_at_open = rx.stats().kernel_drops.unwrap_or(0);
        Self {
            rx,
            mode,
            drops_at_open,
            _membership: membership,
        }
    }
}

impl<R: DynReceiver> DynReceiver for Described<R> {
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
        let mut s = self.rx.stats();
        s.kernel_drops = s.kernel_drops.map(|d| d.saturating_sub(self.drops_at_open));
        s
    }
}

pub(super) fn open_sender(name: &str, spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    let (at, port_queue) = placement(name, spec.queue, 1)?;
    let (port, _) = port(name, spec.interface.as_deref(), at, spec.dpdk_memory, None)?;
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
    Ok(Box::new(port.sender(port_queue, cfg)?))
}

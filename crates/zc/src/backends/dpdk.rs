//! `dpdk` and `dpdk-packet`: DPDK on a vdev bound to an interface (crate `zc-dpdk`).
//!
//! The EAL starts once per process, in memory, on the first CPU the calling
//! thread may run on: on hugepages when at least [`HUGEPAGES_NEEDED_MB`] are
//! free, else on ordinary pages (`--no-huge`), or on ordinary pages when
//! asked ([`DpdkMemory::NoHuge`]); the receiver's mode says which and why.
//! Ports live for the
//! process, as in any DPDK application: the first open of a (backend,
//! interface) pair starts a port with its own mempool, later opens reuse it,
//! and [`crate::shutdown`] closes them all. DPDK 22.11's `net_af_xdp` cannot
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
    free_hugepages_mb, open_interface, Eal, EalConfig, IfaceDriver, Memory, Mempool, MempoolConfig,
    Port, PortConfig, RxConfig, TxConfig,
};
use zc_os::multicast::Membership;

fn driver(name: &str) -> IfaceDriver {
    if name == "dpdk-packet" {
        IfaceDriver::AfPacket
    } else {
        IfaceDriver::AfXdp
    }
}

/// Open ports, by backend name and interface, and whether promiscuous.
static PORTS: Mutex<Vec<(String, String, bool, Port)>> = Mutex::new(Vec::new());

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

/// The port of (`name`, `interface`), opened on first use; `promiscuous`:
/// what a receiver needs (`None`: a sender, which takes the port as it is).
fn port(
    name: &str,
    interface: Option<&str>,
    policy: DpdkMemory,
    promiscuous: Option<bool>,
) -> Result<(Port, String)> {
    let iface = interface.ok_or_else(|| {
        Error::config(format!(
            "{name} attaches to a network device: give its interface (--interface)"
        ))
    })?;
    let mut ports = PORTS.lock().unwrap_or_else(|p| p.into_inner());
    let (memory, why) = eal_memory(policy)?;
    if let Some((_, _, promisc, port)) = ports.iter().find(|(n, i, _, _)| n == name && i == iface) {
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
    let promiscuous = promiscuous.unwrap_or(false);
    let port_cfg = PortConfig {
        rx_desc: 4096,
        promiscuous,
        ..PortConfig::default()
    };
    let port = open_interface(&eal, iface, driver(name), &pool, port_cfg)?;
    ports.push((name.to_owned(), iface.to_owned(), promiscuous, port.clone()));
    Ok((port, why))
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
    let (port, memory) = port(
        name,
        spec.interface.as_deref(),
        spec.dpdk_memory,
        Some(spec.promiscuous),
    )?;
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
            ..RxConfig::default()
        },
    )?;
    // A reused port may hold frames that arrived after the last receiver
    // closed: they belong to nobody now.
    while !rx.recv_burst(Some(Duration::ZERO))?.is_empty() {}
    Ok(Box::new(Described::new(rx, memory, membership)))
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
    let (port, _) = port(name, spec.interface.as_deref(), spec.dpdk_memory, None)?;
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

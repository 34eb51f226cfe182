//! A kernel network interface driven through a DPDK vdev (`net_af_packet` or
//! `net_af_xdp`), attached when the port opens and detached when it closes:
//! what the `zc` command uses on the testbed's veth.

use crate::eal::{Eal, Vdev};
use crate::mempool::Mempool;
use crate::port::{Port, PortConfig};
use std::sync::atomic::{AtomicU32, Ordering};
use zc_core::error::{Error, ErrorKind, Result};

/// Which vdev driver carries the interface's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceDriver {
    /// `net_af_packet`: a TPACKET ring per queue; the kernel copies frames in.
    AfPacket,
    /// `net_af_xdp`: AF_XDP sockets on consecutive device queues (copy mode
    /// on veth).
    AfXdp,
}

impl IfaceDriver {
    /// The DPDK driver name.
    pub fn driver(self) -> &'static str {
        match self {
            IfaceDriver::AfPacket => "net_af_packet",
            IfaceDriver::AfXdp => "net_af_xdp",
        }
    }

    /// `frames`: the receive descriptors asked for. `net_af_packet` ignores
    /// the port's descriptor count and sizes its TPACKET ring by `framecnt`
    /// (512 by default), so a burst beyond 512 frames was dropped in the
    /// kernel, and DPDK 22.11's PMD does not count those drops.
    fn args(self, interface: &str, first: u16, queues: u16, frames: u16) -> String {
        match self {
            IfaceDriver::AfPacket => format!("iface={interface},qpairs={queues},framecnt={frames}"),
            IfaceDriver::AfXdp => {
                format!("iface={interface},start_queue={first},queue_count={queues}")
            }
        }
    }
}

/// Vdev instance numbers handed out by [`open_interface`] (names must be unique).
static NEXT_INSTANCE: AtomicU32 = AtomicU32::new(0);

/// Attaches `driver` to the kernel interface `interface` and opens its port
/// with `cfg` (`cfg.rx_queues` and `cfg.tx_queues` both become `queues` of the
/// device, from its queue 0). The vdev is detached again when the port closes.
pub fn open_interface(
    eal: &Eal,
    interface: &str,
    driver: IfaceDriver,
    pool: &Mempool,
    cfg: PortConfig,
) -> Result<Port> {
    open_interface_at(eal, interface, driver, 0, pool, cfg)
}

/// As [`open_interface`], with the port's queue 0 on device queue `first`
/// (`net_af_xdp` only: an AF_PACKET socket sees every device queue, so
/// [`IfaceDriver::AfPacket`] takes `first` 0 only).
///
/// One port per device queue is how DPDK 22.11's `net_af_xdp` reaches
/// several queues of a device that reports no combined channels (veth: it
/// refuses `queue_count` above 1 there). The ports of one interface share
/// its XDP program, which the first attached: close them together.
pub fn open_interface_at(
    eal: &Eal,
    interface: &str,
    driver: IfaceDriver,
    first: u16,
    pool: &Mempool,
    cfg: PortConfig,
) -> Result<Port> {
    if driver == IfaceDriver::AfPacket && first != 0 {
        return Err(Error::config(format!(
            "net_af_packet takes every queue of {interface} at once: device queue {first} cannot be chosen"
        ))
        .with_fix("use queue 0 and port queues (qpairs) for a flow-hash spread, or net_af_xdp for one device queue per port"));
    }
    let valid = !interface.is_empty()
        && interface.len() < 16
        && interface
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid {
        return Err(Error::config(format!(
            "{interface:?} is not an interface name"
        )));
    }
    if !std::path::Path::new(&format!("/sys/class/net/{interface}")).exists() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no network interface {interface:?} in this namespace"),
        )
        .with_fix("check `ip -br link`; the testbed's host end is `<name>h`"));
    }
    let xdp = driver == IfaceDriver::AfXdp;
    if xdp {
        // The PMD's own error for a queue the device lacks is EINVAL from
        // its socket setup, after the port is half made.
        let last = u32::from(first) + u32::from(cfg.rx_queues.max(cfg.tx_queues).max(1)) - 1;
        zc_nic::check_queue(interface, last)?;
    }
    let cleaned = crate::host::prepare(interface, xdp)?;
    let queues = cfg.rx_queues.max(cfg.tx_queues);
    let name = format!(
        "{}{}",
        driver.driver(),
        NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed)
    );
    eal.add_vdev(&Vdev::new(
        &name,
        &driver.args(interface, first, queues, cfg.rx_desc),
    ))?;
    let cfg = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        ..cfg
    };
    let mut port = Port::open_detaching(&name, pool, cfg, Some(name.clone()))
        .inspect_err(|_| eal.remove_vdev(&name))?;
    // A port just opened has no other handle.
    if let Some(inner) = std::sync::Arc::get_mut(&mut port.inner) {
        // On failure the port closes (dropped here) and undoes its changes.
        inner.host = crate::host::HostRecord::write(interface, xdp, inner.promiscuous)?;
        inner.details.extend(cleaned);
    }
    Ok(port)
}

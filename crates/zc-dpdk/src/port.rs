//! An ethdev port: configured with DPDK 22.11's API (`rxmode.mtu`), its queues
//! set up, started (promiscuous only when asked); promiscuous mode turned off
//! again, stopped and closed when the last queue handle and the [`Port`] are
//! gone.

use crate::eal::rte_strerror;
use crate::mempool::Mempool;
use crate::rx::{DpdkReceiver, RxConfig};
use crate::tx::{DpdkSender, TxConfig};
use dpdk_sys as sys;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use zc_core::backend::DataPath;
use zc_core::error::{Error, ErrorKind, Result};
use zc_core::wire::{ETH_HEADER_LEN, VLAN_TAG_LEN};

/// Port settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues (RSS spreads flows over them when the device can).
    pub rx_queues: u16,
    /// Transmit queues.
    pub tx_queues: u16,
    /// Descriptors per receive queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// Descriptors per transmit queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// MTU (`rxmode.mtu`); `None` keeps the device default (1500).
    pub mtu: Option<u16>,
    /// Receive frames for any destination MAC. Off by default: on a vdev bound
    /// to a kernel interface it sets the interface's `IFF_PROMISC`, a change to
    /// the host that the port undoes when it closes.
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: None,
            promiscuous: false,
        }
    }
}

/// Port counters from `rte_eth_stats_get`, and the mempool's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received by the port.
    pub ipackets: u64,
    /// Frames sent.
    pub opackets: u64,
    /// Frames dropped by the device because its receive queue was full.
    pub imissed: u64,
    /// Erroneous received frames.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive mbuf allocation failures.
    pub rx_nombuf: u64,
    /// Mbufs free in the port's pool.
    pub mempool_available: u32,
    /// Mbufs out of the pool.
    pub mempool_in_use: u32,
}

pub(crate) struct PortInner {
    pub(crate) id: u16,
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) mac: [u8; 6],
    pub(crate) mtu: u16,
    pub(crate) data_path: DataPath,
    pub(crate) details: Vec<String>,
    rx_claimed: Vec<AtomicBool>,
    tx_claimed: Vec<AtomicBool>,
    /// The vdev to detach once the port is closed (ports of `open_interface`).
    pub(crate) detach: Option<String>,
    /// Promiscuous mode was turned on by this port and is turned off at close.
    pub(crate) promiscuous: bool,
    /// The record of what the port changed on its kernel interface, removed
    /// after the close undid it (field order: dropped after `Drop::drop`).
    pub(crate) host: Option<crate::host::HostRecord>,
    // Dropped after the port is closed (field order): the pool outlives it.
    pub(crate) pool: Mempool,
}

impl Drop for PortInner {
    fn drop(&mut self) {
        if self.promiscuous {
            // SAFETY: the port is started and still open.
            let rc = unsafe { sys::rte_eth_promiscuous_disable(self.id) };
            if rc < 0 {
                tracing::warn!(port = %self.name, rc, "rte_eth_promiscuous_disable failed");
            }
        }
        // SAFETY: the port was started by Port::open; no queue handle is left
        // (each holds an Arc<PortInner>), so nothing polls it any more.
        let rc = unsafe { sys::rte_eth_dev_stop(self.id) };
        if rc < 0 {
            tracing::warn!(port = %self.name, rc, "rte_eth_dev_stop failed");
        }
        // SAFETY: stopped above; the id is not used after this.
        let rc = unsafe { sys::rte_eth_dev_close(self.id) };
        if rc < 0 {
            tracing::warn!(port = %self.name, rc, "rte_eth_dev_close failed");
        }
        if let Some(vdev) = &self.detach {
            self.pool.inner.eal.remove_vdev(vdev);
        }
    }
}

impl PortInner {
    pub(crate) fn stats(&self) -> Result<PortStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: the port id is valid while self lives; s is a writable struct.
        let rc = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        if rc < 0 {
            return Err(port_error(&self.name, "read port statistics", rc));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            mempool_available: self.pool.available(),
            mempool_in_use: self.pool.in_use(),
        })
    }

    fn claim(&self, rx: bool, queue: u16) -> Result<()> {
        let (set, kind) = if rx {
            (&self.rx_claimed, "receive")
        } else {
            (&self.tx_claimed, "transmit")
        };
        let Some(flag) = set.get(usize::from(queue)) else {
            return Err(Error::config(format!(
                "port {} has {} {kind} queues; queue {queue} does not exist",
                self.name,
                set.len()
            )));
        };
        if flag.swap(true, Ordering::AcqRel) {
            return Err(Error::new(
                ErrorKind::AddrInUse,
                format!(
                    "{kind} queue {queue} of port {} already has an owner",
                    self.name
                ),
            )
            .with_fix("one queue, one owner: drop the other handle first, or use another queue"));
        }
        Ok(())
    }

    pub(crate) fn release(&self, rx: bool, queue: u16) {
        let set = if rx {
            &self.rx_claimed
        } else {
            &self.tx_claimed
        };
        if let Some(flag) = set.get(usize::from(queue)) {
            flag.store(false, Ordering::Release);
        }
    }
}

/// A failed ethdev call: the errno table of [`Error::io`], except that DPDK
/// answers EINVAL for a configuration value the device refuses.
pub(crate) fn port_error(port: &str, what: &str, rc: i32) -> Error {
    let errno = rc.saturating_neg();
    let e = Error::io(
        format!("port {port}: {what} (rc {rc})"),
        std::io::Error::from_raw_os_error(errno),
    );
    if errno == libc::EINVAL {
        e.with_kind(ErrorKind::Config)
            .with_fix("the device refused a value of the port configuration: see DPDK's log above")
    } else {
        e
    }
}

/// Whether frames are copied on their way into mbufs, by driver. Never a
/// wish: an unknown virtual driver is reported as copying.
fn data_path_of(driver: &str, device: &str) -> (DataPath, &'static str) {
    match driver {
        "net_ring" | "net_null" => (DataPath::InProcess, "in-process device (no wire)"),
        "net_af_packet" => (DataPath::Copy, "copy: the kernel fills its packet ring, the PMD copies into mbufs; frames the full ring drops are not counted (kernel drops n/a)"),
        "net_af_xdp" => (
            DataPath::Copy,
            "AF_XDP: UMEM is the mempool, but the kernel copies unless the NIC driver has XDP zero-copy (veth has not; the PMD does not report which)",
        ),
        "net_tap" | "net_pcap" => (DataPath::Copy, "copy: frames pass through a kernel file descriptor"),
        _ if device.contains(':') => (DataPath::ZeroCopy, "zero-copy: the NIC writes frames into mbufs by DMA"),
        _ => (DataPath::Copy, "unknown virtual driver: assumed to copy"),
    }
}

/// A started ethdev port.
#[derive(Clone)]
pub struct Port {
    pub(crate) inner: Arc<PortInner>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .field("driver", &self.inner.driver)
            .finish_non_exhaustive()
    }
}

impl Port {
    /// Configures and starts the port named `device` (the vdev name, e.g.
    /// `net_ring0`, or a PCI address), taking receive mbufs from `pool`.
    pub fn open(device: &str, pool: &Mempool, cfg: PortConfig) -> Result<Port> {
        Self::open_detaching(device, pool, cfg, None)
    }

    /// [`Port::open`], and detach the vdev `detach` when the port closes.
    pub(crate) fn open_detaching(
        device: &str,
        pool: &Mempool,
        cfg: PortConfig,
        detach: Option<String>,
    ) -> Result<Port> {
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(Error::config(
                "a port needs at least one receive and one transmit queue",
            ));
        }
        let cname =
            CString::new(device).map_err(|_| Error::config("device name has a NUL byte"))?;
        let mut id = 0u16;
        // SAFETY: the EAL runs (pool holds it); name is NUL-terminated; id is writable.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc < 0 {
            // SAFETY: no precondition beyond a running EAL.
            let ports = unsafe { sys::rte_eth_dev_count_avail() };
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no DPDK port named {device:?} ({ports} ports available)"),
            )
            .with_fix(
                "attach the device first: EalConfig::vdevs, Eal::add_vdev, or EalConfig::pci",
            ));
        }

        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port; info is writable.
        let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
        if rc < 0 {
            return Err(port_error(device, "read device info", rc));
        }
        let driver = if info.driver_name.is_null() {
            "unknown".to_owned()
        } else {
            // SAFETY: driver_name points to the driver's static NUL-terminated name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::config(format!(
                "port {device} ({driver}) supports {} receive and {} transmit queues; asked {} and {}",
                info.max_rx_queues, info.max_tx_queues, cfg.rx_queues, cfg.tx_queues
            ))
            .with_fix("ask fewer queues, or create the device with more (e.g. net_af_packet qpairs=N, net_af_xdp queue_count=N)"));
        }
        if driver == "net_af_xdp" {
            let outside = pool.outside_af_xdp_umem();
            if outside > 0 {
                return Err(Error::config(format!(
                    "port {device} (net_af_xdp): {outside} of the pool's {} mbufs lie outside the UMEM the PMD registers (populated_size x object size from the first mbuf), so the kernel would drop every frame meant for them and reception would stop once the pool has cycled that far",
                    pool.config().mbufs
                ))
                .with_fix("the pool's mbufs must be back to back: Mempool::new packs them when the EAL can reserve one IOVA-contiguous zone for the pool (give the EAL more memory, or use --no-huge / IOVA-as-VA mode)"));
            }
        }
        let mtu = cfg.mtu.unwrap_or(1500);
        if mtu < info.min_mtu || mtu > info.max_mtu {
            return Err(Error::config(format!(
                "MTU {mtu} is outside port {device}'s range {}..={}",
                info.min_mtu, info.max_mtu
            )));
        }
        let frame_max = usize::from(mtu) + ETH_HEADER_LEN + VLAN_TAG_LEN;
        if frame_max > usize::from(pool.buf_len()) {
            return Err(Error::config(format!(
                "MTU {mtu} frames ({frame_max} bytes with a VLAN tag) do not fit one {}-byte mbuf; multi-segment frames are not supported",
                pool.buf_len()
            ))
            .with_fix("create the mempool with a larger data_room, or lower the MTU"));
        }

        let (data_path, how) = data_path_of(&driver, device);
        let mut details = vec![
            format!("driver {driver}"),
            format!("port {id}"),
            how.to_owned(),
        ];
        let mut conf = sys::rte_eth_conf::default();
        conf.rxmode.mtu = u32::from(mtu);
        if cfg.rx_queues > 1 {
            // SAFETY: the shim returns a constant.
            let wanted = unsafe { sys::zc_eth_rss_ip_udp() };
            let hf = wanted & info.flow_type_rss_offloads;
            if hf == 0 {
                details.push(format!(
                    "rss off: the device reports no IP/UDP hash types (flow_type_rss_offloads {:#x}); each queue gets what the device puts there",
                    info.flow_type_rss_offloads
                ));
            } else {
                conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
                details.push(format!("rss on (hash types {hf:#x} of wanted {wanted:#x})"));
            }
        }
        // SAFETY: id is valid, the port is not started, conf is a complete
        // zero-initialised rte_eth_conf with the fields above set.
        let rc = unsafe { sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if rc < 0 {
            return Err(port_error(device, "configure", rc));
        }
        let setup = || -> Result<(u16, u16)> {
            let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
            // SAFETY: id is valid; both pointers are writable.
            let rc =
                unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc) };
            if rc < 0 {
                return Err(port_error(device, "adjust descriptor counts", rc));
            }
            // SAFETY: id is valid.
            let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
            // SOCKET_ID_ANY (-1) is passed through as DPDK's unsigned parameter expects.
            let socket = socket as u32;
            for q in 0..cfg.rx_queues {
                // SAFETY: the port is configured and stopped; a null rx_conf means
                // the device defaults; the pool outlives the port (PortInner holds
                // it, and a failed setup closes the port before returning).
                let rc = unsafe {
                    sys::rte_eth_rx_queue_setup(
                        id,
                        q,
                        rx_desc,
                        socket,
                        std::ptr::null(),
                        pool.as_ptr(),
                    )
                };
                if rc < 0 {
                    return Err(port_error(device, &format!("set up receive queue {q}"), rc));
                }
            }
            for q in 0..cfg.tx_queues {
                // SAFETY: as above; a null tx_conf means the device defaults.
                let rc = unsafe {
                    sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket, std::ptr::null())
                };
                if rc < 0 {
                    return Err(port_error(
                        device,
                        &format!("set up transmit queue {q}"),
                        rc,
                    ));
                }
            }
            // SAFETY: configured with all queues set up.
            let rc = unsafe { sys::rte_eth_dev_start(id) };
            if rc < 0 {
                return Err(port_error(device, "start", rc));
            }
            Ok((rx_desc, tx_desc))
        };
        let (rx_desc, tx_desc) = match setup() {
            Ok(d) => d,
            Err(e) => {
                // Queues may already hold mbufs of `pool` (some drivers fill their
                // rings at setup): close the port now, while the pool is alive,
                // rather than leave the device pointing into a pool freed later.
                // SAFETY: the port is configured and not started.
                unsafe { sys::rte_eth_dev_close(id) };
                return Err(e.with_fix("the port was closed: to retry, attach the device under a new name (Eal::add_vdev) or call open_interface again"));
            }
        };
        // From here the port is started: PortInner's drop stops and closes it.
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: id is valid; mac is writable.
        let rc = unsafe { sys::rte_eth_macaddr_get(id, &mut mac) };
        let mac = if rc < 0 { [0; 6] } else { mac.addr_bytes };
        let mut inner = PortInner {
            id,
            name: device.to_owned(),
            driver,
            mac,
            mtu,
            data_path,
            details,
            rx_claimed: (0..cfg.rx_queues).map(|_| AtomicBool::new(false)).collect(),
            tx_claimed: (0..cfg.tx_queues).map(|_| AtomicBool::new(false)).collect(),
            detach,
            promiscuous: false,
            host: None,
            pool: pool.clone(),
        };
        if cfg.promiscuous {
            // SAFETY: id is a started port.
            let rc = unsafe { sys::rte_eth_promiscuous_enable(id) };
            if rc < 0 {
                inner.details.push(format!(
                    "promiscuous mode unavailable ({})",
                    rte_strerror(-rc)
                ));
            } else {
                inner.promiscuous = true;
                inner.details.push("promiscuous".to_owned());
            }
        }
        inner
            .details
            .push(format!("mtu {mtu}, {rx_desc}/{tx_desc} descriptors"));
        tracing::info!(port = device, driver = %inner.driver, details = ?inner.details, "DPDK port started");
        Ok(Port {
            inner: Arc::new(inner),
        })
    }

    /// The receive queue `queue` as a [`zc_core::Receiver`] (one owner per queue).
    pub fn receiver(&self, queue: u16, cfg: RxConfig) -> Result<DpdkReceiver> {
        self.inner.claim(true, queue)?;
        DpdkReceiver::new(Arc::clone(&self.inner), queue, cfg)
            .inspect_err(|_| self.inner.release(true, queue))
    }

    /// The transmit queue `queue` as a [`zc_core::Sender`] of frames built
    /// from `cfg.frame` (one owner per queue).
    pub fn sender(&self, queue: u16, cfg: TxConfig) -> Result<DpdkSender> {
        self.inner.claim(false, queue)?;
        DpdkSender::new(Arc::clone(&self.inner), queue, cfg)
            .inspect_err(|_| self.inner.release(false, queue))
    }

    /// Port and mempool counters.
    pub fn stats(&self) -> Result<PortStats> {
        self.inner.stats()
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.inner.mac
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The driver's name (e.g. `net_ring`).
    pub fn driver(&self) -> &str {
        &self.inner.driver
    }

    /// What was configured, one fact each (driver, RSS, promiscuous, MTU…).
    pub fn details(&self) -> &[String] {
        &self.inner.details
    }

    /// The pool receive mbufs come from.
    pub fn mempool(&self) -> &Mempool {
        &self.inner.pool
    }
}

//! The DPDK backend of zc, on the system DPDK (22.11) through `dpdk-sys`.
//!
//! - [`Eal`]: the Environment Abstraction Layer, started once per process from
//!   an [`EalConfig`] (cores, vdevs or PCI devices, hugepages or `--no-huge`,
//!   in memory or a file prefix); `rte_eal_cleanup` when the last handle goes.
//! - [`Mempool`]: a packet mbuf pool.
//! - [`Port`]: an ethdev configured with the 22.11 API (`rxmode.mtu`), RSS
//!   masked by what the device supports, started (promiscuous only when
//!   [`PortConfig::promiscuous`] asks).
//! - [`DpdkReceiver`]/[`DpdkSender`]: one queue each, implementing zc-core's
//!   [`Receiver`](zc_core::Receiver) and [`Sender`](zc_core::Sender): bursts of
//!   checked datagrams borrowed from mbufs; frames written in place into mbufs.
//! - [`open_interface`]: a kernel interface (a veth) through `net_af_packet` or
//!   `net_af_xdp`, attached with the port and detached with it; with
//!   [`Eal::shared`], what a program that opens devices from several places uses.
//! - [`market_data`]: the pinned busy-poll market-data receiver loop.
//!
//! Ownership: queues hold their port, ports their mempool, mempools the EAL,
//! so teardown always runs queue → port (stop, close) → pool → EAL.
//!
//! ```no_run
//! use zc_dpdk::{Eal, EalConfig, Mempool, MempoolConfig, Port, PortConfig, RxConfig};
//! use zc_core::{Receiver, RxBurst};
//! let eal = Eal::start(&EalConfig::no_huge(0).vdev("net_ring0", ""))?;
//! let pool = Mempool::new(&eal, MempoolConfig::default())?;
//! let port = Port::open("net_ring0", &pool, PortConfig::default())?;
//! let mut rx = port.receiver(0, RxConfig::default())?;
//! let burst = rx.recv_burst(Some(std::time::Duration::from_millis(10)))?;
//! for d in burst.iter() {
//!     println!("{} bytes from {}", d.payload.len(), d.src);
//! }
//! # Ok::<(), zc_core::Error>(())
//! ```

mod eal;
mod host;
mod iface;
pub mod market_data;
mod mbuf;
mod mempool;
mod port;
mod rx;
mod tx;

pub use eal::{free_hugepages_mb, Eal, EalConfig, Files, Memory, ThreadGuard, Vdev};
pub use host::restore_host_state;
pub use iface::{open_interface, open_interface_at, IfaceDriver};
pub use mempool::{Mempool, MempoolConfig};
pub use port::{Port, PortConfig, PortStats};
pub use rx::{DpdkBurst, DpdkReceiver, FrameBurst, RxConfig, MAX_BURST};
pub use tx::{DpdkSender, TxConfig, MAX_TX_BURST};

/// `rte_errno` of the calling thread.
pub(crate) fn ffi_errno() -> i32 {
    // SAFETY: reads a thread-local integer; no precondition.
    unsafe { dpdk_sys::zc_rte_errno() }
}

//! Dispatch from a backend name to its crate. One module per feature.

use crate::{RxSpec, TxSpec};
use zc_core::{DynReceiver, Error, Result, Sender};

#[cfg(feature = "afxdp")]
mod afxdp;
#[cfg(feature = "dpdk")]
mod dpdk;
#[cfg(feature = "epoll")]
mod epoll;
#[cfg(feature = "uring")]
mod uring;

#[cfg(feature = "dpdk")]
pub(crate) use dpdk::close_ports as close_dpdk_ports;

// Built without any backend feature, no arm uses `spec`.
#[cfg_attr(
    not(any(
        feature = "epoll",
        feature = "uring",
        feature = "afxdp",
        feature = "dpdk"
    )),
    allow(unused_variables)
)]
pub(crate) fn open_receiver(name: &str, spec: &RxSpec) -> Result<Box<dyn DynReceiver + Send>> {
    match name {
        #[cfg(feature = "epoll")]
        "recvfrom" | "recvmmsg" => epoll::open_receiver(name, spec),
        #[cfg(feature = "uring")]
        "uring" => uring::open_receiver(spec),
        #[cfg(feature = "afxdp")]
        "afxdp" => afxdp::open_receiver(spec),
        #[cfg(feature = "dpdk")]
        "dpdk" | "dpdk-packet" => dpdk::open_receiver(name, spec),
        _ => Err(Error::config(format!("backend {name:?} has no receiver"))),
    }
}

// Built without any backend feature, no arm uses `spec`.
#[cfg_attr(
    not(any(
        feature = "epoll",
        feature = "uring",
        feature = "afxdp",
        feature = "dpdk"
    )),
    allow(unused_variables)
)]
pub(crate) fn open_sender(name: &str, spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    match name {
        #[cfg(feature = "epoll")]
        "recvfrom" | "recvmmsg" => epoll::open_sender(name, spec),
        #[cfg(feature = "uring")]
        "uring" => uring::open_sender(spec),
        #[cfg(feature = "afxdp")]
        "afxdp" => afxdp::open_sender(spec),
        #[cfg(feature = "dpdk")]
        "dpdk" | "dpdk-packet" => dpdk::open_sender(name, spec),
        _ => Err(Error::config(format!("backend {name:?} has no sender"))),
    }
}

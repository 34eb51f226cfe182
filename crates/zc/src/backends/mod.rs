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
        "recvfrom" | "recvmmsg" => epoll::open_receiver(name, spec, None),
        #[cfg(feature = "uring")]
        "uring" => uring::open_receiver(spec, None),
        #[cfg(feature = "afxdp")]
        "afxdp" => afxdp::open_receiver(spec),
        #[cfg(feature = "dpdk")]
        "dpdk" | "dpdk-packet" => dpdk::open_receiver(name, spec),
        _ => Err(Error::config(format!("backend {name:?} has no receiver"))),
    }
}

/// One socket of a `SO_REUSEPORT` group that [`open_receivers`] opens: the
/// first also attaches the group's CPU steering program.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(any(feature = "epoll", feature = "uring")), allow(dead_code))]
pub(crate) struct GroupMember {
    pub first: bool,
    pub size: u32,
}

/// `queues` receivers sharing `spec`'s port, one per receive queue: the
/// socket backends open a `SO_REUSEPORT` group steered by receiving CPU.
#[cfg_attr(
    not(any(feature = "epoll", feature = "uring")),
    allow(unused_variables)
)]
pub(crate) fn open_receivers(
    name: &str,
    spec: &RxSpec,
    queues: u32,
) -> Result<Vec<Box<dyn DynReceiver + Send>>> {
    #[cfg(feature = "afxdp")]
    if name == "afxdp" {
        return afxdp::open_receivers(spec, queues);
    }
    #[cfg(feature = "dpdk")]
    if name == "dpdk" || name == "dpdk-packet" {
        return dpdk::open_receivers(name, spec, queues);
    }
    (0..queues)
        .map(|q| {
            let member = GroupMember {
                first: q == 0,
                size: queues,
            };
            match name {
                #[cfg(feature = "epoll")]
                "recvfrom" | "recvmmsg" => epoll::open_receiver(name, spec, Some(member)),
                #[cfg(feature = "uring")]
                "uring" => uring::open_receiver(spec, Some(member)),
                _ => Err(crate::unsupported_option(
                    name,
                    "several queues",
                    "several queues are built for recvfrom, recvmmsg, uring (a SO_REUSEPORT group), \
                     afxdp (one UMEM) and the dpdk backends (a port per device queue, or port queues)",
                )),
            }
        })
        .collect()
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

//! Dispatch from a backend name to its crate. One module per feature.

use crate::{RxSpec, TxSpec};
use zc_core::{DynReceiver, Error, Result, Sender};

#[cfg(feature = "afxdp")]
mod afxdp;
#[cfg(feature = "epoll")]
mod epoll;

pub(crate) fn open_receiver(name: &str, spec: &RxSpec) -> Result<Box<dyn DynReceiver + Send>> {
    match name {
        #[cfg(feature = "epoll")]
        "recvfrom" | "recvmmsg" => epoll::open_receiver(name, spec),
        #[cfg(feature = "afxdp")]
        "afxdp" => afxdp::open_receiver(spec),
        _ => Err(Error::config(format!("backend {name:?} has no receiver"))),
    }
}

pub(crate) fn open_sender(name: &str, spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    match name {
        #[cfg(feature = "epoll")]
        "recvfrom" | "recvmmsg" => epoll::open_sender(name, spec),
        #[cfg(feature = "afxdp")]
        "afxdp" => afxdp::open_sender(spec),
        _ => Err(Error::config(format!("backend {name:?} has no sender"))),
    }
}

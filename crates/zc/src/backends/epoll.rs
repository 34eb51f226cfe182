//! `recvfrom` and `recvmmsg`: kernel sockets (crate `zc-epoll`).

use crate::{RxSpec, TxSpec};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use zc_core::{DynReceiver, Error, Result, Sender};
use zc_epoll::{BusyPoll, RecvConfig, SendConfig, SocketApi, SocketReceiver, SocketSender};

fn api(name: &str) -> SocketApi {
    if name == "recvfrom" {
        SocketApi::Recvfrom
    } else {
        SocketApi::Recvmmsg
    }
}

pub(super) fn open_receiver(
    name: &str,
    spec: &RxSpec,
    group: Option<super::GroupMember>,
) -> Result<Box<dyn DynReceiver + Send>> {
    if spec.interface.is_some() {
        return Err(Error::config(format!(
            "{name} receives on an address, not an interface: drop the interface and bind the interface's address"
        )));
    }
    let mut cfg = RecvConfig::new(api(name), SocketAddr::V4(spec.bind));
    cfg.batch = spec.batch;
    cfg.max_payload = spec.max_payload;
    cfg.timestamps = spec.timestamps;
    if let Some(g) = group {
        cfg.reuse_port = true;
        cfg.steer_by_cpu = g.first.then_some(g.size);
    }
    // One socket per receiver: a blocking recvmmsg(MSG_WAITFORONE) is one
    // system call per wake-up where epoll pays two. Measured with `zc bench`
    // at 50 kpps (docs/BENCHMARKS.md): 13 % less receive-thread CPU per message.
    cfg.busy_poll = if let Some(us) = spec.kernel_busy_poll {
        if spec.busy_poll {
            return Err(Error::config(
                "recvmmsg busy-polls one way at a time: --busy-poll spins in user space, --kernel-busy-poll polls the device in the kernel; choose one",
            ));
        }
        BusyPoll::Kernel(us)
    } else if spec.busy_poll {
        BusyPoll::Spin
    } else if cfg.api == SocketApi::Recvmmsg {
        BusyPoll::Blocking
    } else {
        BusyPoll::Off
    };
    if let Some(group) = spec.multicast {
        // Bind the group's port on any address; join on the interface of `bind`.
        cfg.bind = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, spec.bind.port()));
        cfg.multicast = Some((group, *spec.bind.ip()));
    }
    Ok(Box::new(SocketReceiver::open(cfg)?))
}

pub(super) fn open_sender(name: &str, spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    let mut cfg = SendConfig::new(
        api(name),
        SocketAddr::V4(spec.bind),
        SocketAddr::V4(spec.dst),
    );
    cfg.batch = spec.batch;
    cfg.max_payload = spec.max_payload;
    Ok(Box::new(SocketSender::open(cfg)?))
}

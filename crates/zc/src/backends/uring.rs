//! `uring`: io_uring (crate `zc-uring`).

use crate::{RxSpec, TxSpec};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use zc_core::{DynReceiver, Error, Result, Sender};
use zc_uring::{RxConfig, TxConfig, UringReceiver, UringSender};

pub(super) fn open_receiver(
    spec: &RxSpec,
    group: Option<super::GroupMember>,
) -> Result<Box<dyn DynReceiver + Send>> {
    if spec.interface.is_some() {
        return Err(Error::config(
            "uring receives on an address, not an interface: drop the interface and bind the interface's address",
        ));
    }
    let mut cfg = RxConfig::new(SocketAddr::V4(spec.bind));
    cfg.batch = spec.batch;
    cfg.rx_timestamps = spec.timestamps;
    if let Some(g) = group {
        cfg.reuse_port = true;
        cfg.steer_by_cpu = g.first.then_some(g.size);
    }
    let room = u32::try_from(spec.max_payload + cfg.header_len())
        .map_err(|_| Error::config(format!("max payload {} is too large", spec.max_payload)))?;
    cfg.buffer_size = room;
    // Busy poll as the socket backends do it: spin in user space (here on the
    // completion queue and the ring's TASKRUN flag, without system calls).
    cfg.spin = spec.busy_poll;
    cfg.napi_busy_poll = spec
        .kernel_busy_poll
        .map(|us| Duration::from_micros(u64::from(us)));
    if let Some(group) = spec.multicast {
        cfg.bind = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, spec.bind.port()));
        cfg.multicast = Some((group, *spec.bind.ip()));
    }
    Ok(Box::new(UringReceiver::open(&cfg)?))
}

pub(super) fn open_sender(spec: &TxSpec) -> Result<Box<dyn Sender + Send>> {
    let mut cfg = TxConfig::new(SocketAddr::V4(spec.dst));
    cfg.bind = Some(SocketAddr::V4(spec.bind));
    cfg.max_payload = spec.max_payload;
    // Enough slots for a few batches in flight; the zero-copy threshold stays
    // at its default (only large payloads gain from SEND_ZC).
    cfg.slots = u16::try_from((spec.batch * 4).clamp(64, 32768)).unwrap_or(32768);
    Ok(Box::new(UringSender::open(&cfg)?))
}

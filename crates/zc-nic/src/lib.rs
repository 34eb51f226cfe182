//! What a network interface can do, asked of the kernel.
//!
//! `zc doctor` reads most of what it reports from sysfs and procfs; this crate
//! holds the part only the kernel's own interfaces answer, each behind a safe
//! function of the interface name:
//!
//! | function | kernel interface | what it tells |
//! |---|---|---|
//! | [`driver_info`] | `SIOCETHTOOL` `ETHTOOL_GDRVINFO` | driver, version, firmware, bus address |
//! | [`channels`] | `ETHTOOL_GCHANNELS` | queue (channel) counts and maximums |
//! | [`rx_queues`], [`check_queue`] | `ETHTOOL_GCHANNELS`, else sysfs `queues/rx-*` | how many receive queues, and whether one exists |
//! | [`rx_rings`], [`rss`], [`udp4_flow_hash`] | `ETHTOOL_GRXRINGS`, `ETHTOOL_GRSSH`, `ETHTOOL_GRXFH` | RSS: rings, indirection table, hash function, which UDP fields are hashed |
//! | [`timestamping`] | `ETHTOOL_GET_TS_INFO` | software and hardware timestamping, the PTP clock |
//! | [`xdp_features`] | generic netlink family `netdev` (Linux 6.3+) | native XDP actions, AF_XDP zero-copy, XDP receive metadata |
//! | [`attached_xdp`], [`detach_xdp`], [`promiscuous`], [`set_promiscuous`] | rtnetlink `RTM_GETLINK`/`RTM_SETLINK` (`IFLA_XDP`, `IFF_PROMISC`) | the XDP program on an interface; what the DPDK backend checks and restores |
//!
//! Every call works in the calling thread's network namespace. A driver that
//! does not implement a query answers `EOPNOTSUPP`, which comes back as an
//! error of kind [`zc_core::ErrorKind::Unsupported`]; an unknown interface as
//! [`zc_core::ErrorKind::NotFound`].
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod ethtool;
mod flags;
mod netdev;
mod netlink;
mod xdp;

pub use ethtool::{
    channels, driver_info, rss, rx_rings, stat_names, stats, timestamping, udp4_flow_hash,
    Channels, DriverInfo, Rss, TsInfo,
};
pub use flags::{
    rx_filter_names, so_timestamping_names, tx_type_names, udp_hash_field_names, xdp_feature_names,
    xdp_rx_metadata_names, xsk_feature_names, XDP_BASIC, XDP_HW_OFFLOAD, XDP_NDO_XMIT,
    XDP_REDIRECT, XDP_RX_SG, XDP_XSK_ZEROCOPY,
};
pub use netdev::{xdp_features, XdpFeatures};
pub use xdp::{attached_xdp, detach_xdp, promiscuous, set_promiscuous, AttachedXdp, XdpAttachMode};

use zc_core::error::{Error, ErrorKind, Result};

/// The index of interface `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    zc_os::ifindex(name).map_err(|e| match e.kind() {
        ErrorKind::NotFound => interface_not_found(name),
        _ => e,
    })
}

/// The one wording for an interface this network namespace does not have.
pub fn interface_not_found(name: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("interface {name:?} not found in this network namespace"),
    )
    .with_fix("list the interfaces with `ip -br link`, or run in the namespace that has it (`ip netns exec NS zc doctor ...`)")
}

/// Receive queues of `name` (ethtool channels: rx + combined), or the
/// `rx-*` entries in sysfs when the driver has no channel report. `None`
/// when neither can tell.
pub fn rx_queues(name: &str) -> Result<Option<u32>> {
    match channels(name) {
        Ok(ch) => return Ok(Some(ch.rx_queues())),
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let dir = format!("/sys/class/net/{name}/queues");
    Ok(std::fs::read_dir(&dir).ok().map(|entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
            .count() as u32
    }))
}

/// Checks that `queue` exists on `name` (when the driver says how many it has).
pub fn check_queue(name: &str, queue: u32) -> Result<()> {
    let Some(n) = rx_queues(name)? else {
        return Ok(());
    };
    if queue >= n {
        return Err(Error::config(format!(
            "queue {queue} is out of range: {name} has {n} receive queue{} (0..={})",
            if n == 1 { "" } else { "s" },
            n.saturating_sub(1)
        ))
        .with_fix(format!("pick a queue below {n} (see `ethtool -l {name}`), or add queues with `ethtool -L {name} combined N`")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_one_queue_and_queue_one_is_out_of_range() {
        assert_eq!(rx_queues("lo").unwrap(), Some(1));
        assert!(check_queue("lo", 0).is_ok());
        let e = check_queue("lo", 1).unwrap_err();
        assert!(
            e.to_string()
                .contains("queue 1 is out of range: lo has 1 receive queue"),
            "{e}"
        );
        assert_eq!(
            check_queue("zcnosuch0", 0).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}

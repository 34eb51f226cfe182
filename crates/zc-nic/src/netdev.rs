//! The kernel's `netdev` generic-netlink family (Linux 6.3+): what a device
//! can do with XDP and AF_XDP, as its driver declares it.

use crate::netlink::{attr_u32, attr_u64, GenlSocket, NlError};
use zc_core::error::{Error, ErrorKind, Result};

const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XDP_ZC_MAX_SEGS: u16 = 4;
const NETDEV_A_DEV_XDP_RX_METADATA_FEATURES: u16 = 5;
const NETDEV_A_DEV_XSK_FEATURES: u16 = 6;

/// A device's XDP capabilities from the netdev family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpFeatures {
    /// `NETDEV_XDP_ACT_*` bits (names with [`crate::xdp_feature_names`]).
    /// Non-zero means the driver runs XDP natively; 0 leaves only generic
    /// (skb) XDP.
    pub xdp: u64,
    /// Most fragments a zero-copy AF_XDP frame may have (newer kernels,
    /// and only for devices with zero-copy).
    pub zc_max_segs: Option<u32>,
    /// `NETDEV_XDP_RX_METADATA_*` bits: what an XDP program can read
    /// through kfuncs, such as the receive timestamp (newer kernels).
    pub rx_metadata: Option<u64>,
    /// `NETDEV_XSK_*` bits: AF_XDP transmit metadata (newer kernels).
    pub xsk: Option<u64>,
}

impl XdpFeatures {
    /// XDP runs in the driver (`basic` and `redirect`: what AF_XDP needs).
    pub fn native(&self) -> bool {
        let need = crate::XDP_BASIC | crate::XDP_REDIRECT;
        self.xdp & need == need
    }

    /// AF_XDP sockets can bind in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.xdp & crate::XDP_XSK_ZEROCOPY != 0
    }
}

/// The XDP features of interface `name` from the netdev family.
///
/// A kernel without the family (before Linux 6.3) gives an error of kind
/// [`ErrorKind::Unsupported`] that says so; whether a device runs XDP
/// natively can then only be learnt by attaching a program.
pub fn xdp_features(name: &str) -> Result<XdpFeatures> {
    let ifindex = crate::ifindex(name)?;
    let mut sock = GenlSocket::open()?;
    let Some(family) = sock.family_id("netdev")? else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "this kernel has no netdev netlink family (added in Linux 6.3), so it cannot say which XDP features a driver has",
        )
        .with_fix("on Linux 6.3 or later the driver's XDP features are listed; until then, attach and see: `zc recv --backend afxdp` reports native or generic mode and zero-copy or copy"));
    };
    let attrs = match sock.request(
        family,
        NETDEV_CMD_DEV_GET,
        1,
        &[(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())],
    ) {
        Ok(a) => a,
        Err(NlError::Errno(libc::ENODEV)) => return Err(crate::interface_not_found(name)),
        Err(NlError::Errno(e)) => {
            return Err(Error::io(
                format!("ask the netdev netlink family about {name}"),
                std::io::Error::from_raw_os_error(e),
            ))
        }
        Err(NlError::Other(e)) => return Err(e),
    };
    if attr_u32(&attrs, NETDEV_A_DEV_IFINDEX) != Some(ifindex) {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "the netdev family answered about another device than {name} (ifindex {ifindex})"
            ),
        ));
    }
    Ok(XdpFeatures {
        xdp: attr_u64(&attrs, NETDEV_A_DEV_XDP_FEATURES).unwrap_or(0),
        zc_max_segs: attr_u32(&attrs, NETDEV_A_DEV_XDP_ZC_MAX_SEGS),
        rx_metadata: attr_u64(&attrs, NETDEV_A_DEV_XDP_RX_METADATA_FEATURES),
        xsk: attr_u64(&attrs, NETDEV_A_DEV_XSK_FEATURES),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_no_native_xdp() {
        let f = xdp_features("lo").unwrap();
        assert_eq!(f.xdp, 0);
        assert!(!f.native() && !f.zero_copy());
        assert_eq!(f.rx_metadata, Some(0));
        assert_eq!(f.xsk, Some(0));
        // The zero-copy segment limit is only reported with zero-copy.
        assert_eq!(f.zc_max_segs, None);
    }

    #[test]
    fn an_unknown_interface_is_not_found() {
        assert_eq!(
            xdp_features("zcnosuch0").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}

//! Names for the kernel's capability bits, spelled as `ethtool` and the
//! netdev netlink specification spell them, so output can be compared.

/// `NETDEV_XDP_ACT_BASIC`: XDP_ABORTED, XDP_DROP, XDP_PASS and XDP_TX in the driver.
pub const XDP_BASIC: u64 = 1 << 0;
/// `NETDEV_XDP_ACT_REDIRECT`: XDP_REDIRECT in the driver (what AF_XDP needs).
pub const XDP_REDIRECT: u64 = 1 << 1;
/// `NETDEV_XDP_ACT_NDO_XMIT`: frames can be redirected into this device.
pub const XDP_NDO_XMIT: u64 = 1 << 2;
/// `NETDEV_XDP_ACT_XSK_ZEROCOPY`: AF_XDP sockets bind in zero-copy mode.
pub const XDP_XSK_ZEROCOPY: u64 = 1 << 3;
/// `NETDEV_XDP_ACT_HW_OFFLOAD`: programs can run on the NIC itself.
pub const XDP_HW_OFFLOAD: u64 = 1 << 4;
/// `NETDEV_XDP_ACT_RX_SG`: multi-buffer frames (MTU above one page) on receive.
pub const XDP_RX_SG: u64 = 1 << 5;

fn names(bits: u64, table: &[&str]) -> Vec<String> {
    (0..64)
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| {
            table
                .get(i)
                .map_or_else(|| format!("bit{i}"), |n| (*n).to_owned())
        })
        .collect()
}

/// The netdev family's `xdp-features` bits by name.
pub fn xdp_feature_names(bits: u64) -> Vec<String> {
    names(
        bits,
        &[
            "basic",
            "redirect",
            "ndo-xmit",
            "xsk-zerocopy",
            "hw-offload",
            "rx-sg",
            "ndo-xmit-sg",
        ],
    )
}

/// The netdev family's `xdp-rx-metadata-features` bits (what an XDP program
/// can read through kfuncs) by name.
pub fn xdp_rx_metadata_names(bits: u64) -> Vec<String> {
    names(bits, &["timestamp", "hash", "vlan-tag"])
}

/// The netdev family's `xsk-features` bits (AF_XDP transmit metadata) by name.
pub fn xsk_feature_names(bits: u64) -> Vec<String> {
    names(
        bits,
        &["tx-timestamp", "tx-checksum", "tx-launch-time-fifo"],
    )
}

/// `SOF_TIMESTAMPING_*` capability bits by the names `ethtool -T` prints.
pub fn so_timestamping_names(bits: u32) -> Vec<String> {
    names(
        u64::from(bits),
        &[
            "hardware-transmit",
            "software-transmit",
            "hardware-receive",
            "software-receive",
            "software-system-clock",
            "hardware-legacy-clock",
            "hardware-raw-clock",
        ],
    )
}

/// `HWTSTAMP_TX_*` modes (a bit per mode) by the names `ethtool -T` prints.
pub fn tx_type_names(bits: u32) -> Vec<String> {
    names(
        u64::from(bits),
        &["off", "on", "onestep-sync", "onestep-p2p"],
    )
}

/// `HWTSTAMP_FILTER_*` receive filters (a bit per filter) by the names
/// `ethtool -T` prints.
pub fn rx_filter_names(bits: u32) -> Vec<String> {
    names(
        u64::from(bits),
        &[
            "none",
            "all",
            "some",
            "ptpv1-l4-event",
            "ptpv1-l4-sync",
            "ptpv1-l4-delay-req",
            "ptpv2-l4-event",
            "ptpv2-l4-sync",
            "ptpv2-l4-delay-req",
            "ptpv2-l2-event",
            "ptpv2-l2-sync",
            "ptpv2-l2-delay-req",
            "ptpv2-event",
            "ptpv2-sync",
            "ptpv2-delay-req",
            "ntp-all",
        ],
    )
}

/// `RXH_*` flow-hash fields (`ethtool -n IF rx-flow-hash udp4`) by name.
pub fn udp_hash_field_names(bits: u64) -> Vec<String> {
    let table = [
        (1 << 1, "l2-dst"),
        (1 << 2, "vlan"),
        (1 << 3, "l3-proto"),
        (1 << 4, "ip-src"),
        (1 << 5, "ip-dst"),
        (1 << 6, "src-port"),
        (1 << 7, "dst-port"),
        (1 << 31, "discard"),
    ];
    table
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_map_to_kernel_names_and_unknown_bits_are_numbered() {
        assert_eq!(
            xdp_feature_names(XDP_BASIC | XDP_REDIRECT | XDP_RX_SG | 1 << 9),
            ["basic", "redirect", "rx-sg", "bit9"]
        );
        assert_eq!(
            so_timestamping_names(0b1_0101),
            [
                "hardware-transmit",
                "hardware-receive",
                "software-system-clock"
            ]
        );
        assert_eq!(tx_type_names(0b11), ["off", "on"]);
        assert_eq!(rx_filter_names(1 << 15 | 1), ["none", "ntp-all"]);
        assert_eq!(
            udp_hash_field_names(0xf0),
            ["ip-src", "ip-dst", "src-port", "dst-port"]
        );
        assert!(xdp_rx_metadata_names(0).is_empty());
    }
}

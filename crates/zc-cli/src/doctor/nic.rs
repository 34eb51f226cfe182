//! What only the kernel's ethtool and netdev interfaces tell of a NIC
//! (through `zc-nic`): driver and firmware, XDP and AF_XDP zero-copy,
//! channels, RSS, and timestamping.

use super::device::DeviceFacts;
use super::finding::{Finding, Status};
use serde::Serialize;
use std::collections::BTreeMap;

/// Above this MTU a frame no longer fits the one page XDP without
/// multi-buffer support (`rx-sg`) allows on most drivers.
const XDP_SINGLE_PAGE_MTU: u32 = 3498;

/// `ethtool -i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverFacts {
    /// Driver name.
    pub driver: String,
    /// Driver version.
    pub version: String,
    /// Firmware version (empty: none reported).
    pub firmware: String,
    /// Bus address (empty for virtual devices).
    pub bus_info: String,
}

/// The netdev family's XDP features, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XdpFacts {
    /// `xdp-features`: `basic`, `redirect`, `ndo-xmit`, `xsk-zerocopy`, `rx-sg`...
    pub features: Vec<String>,
    /// XDP runs in the driver.
    pub native: bool,
    /// AF_XDP binds in zero-copy mode.
    pub zero_copy: bool,
    /// Most fragments of a zero-copy frame.
    pub zc_max_segs: Option<u32>,
    /// What an XDP program can read through kfuncs (`timestamp`, `hash`, `vlan-tag`).
    pub rx_metadata: Option<Vec<String>>,
    /// AF_XDP transmit metadata (`tx-timestamp`, `tx-checksum`).
    pub xsk: Option<Vec<String>>,
}

/// `ethtool -l`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelFacts {
    /// Receive-only channels now.
    pub rx: u32,
    /// Transmit-only channels now.
    pub tx: u32,
    /// Combined channels now.
    pub combined: u32,
    /// Most receive-only channels.
    pub max_rx: u32,
    /// Most transmit-only channels.
    pub max_tx: u32,
    /// Most combined channels.
    pub max_combined: u32,
}

/// `ethtool -x`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RssFacts {
    /// Entries in the indirection table.
    pub indir_size: u32,
    /// Hash key bytes.
    pub key_size: u32,
    /// Hash functions in use.
    pub hash_functions: Vec<String>,
    /// Queues the table spreads traffic over.
    pub queues: Vec<u32>,
}

/// `ethtool -T`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimestampFacts {
    /// Capabilities (`hardware-receive`, `software-receive`...).
    pub capabilities: Vec<String>,
    /// PTP hardware clock index (`/dev/ptpN`).
    pub phc_index: Option<u32>,
    /// Hardware transmit modes.
    pub tx_types: Vec<String>,
    /// Hardware receive filters.
    pub rx_filters: Vec<String>,
}

/// Everything the kernel answered about a NIC; what it did not answer is in
/// `unavailable`, with the reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NicFacts {
    /// `ethtool -i`.
    pub driver: Option<DriverFacts>,
    /// The netdev netlink family's XDP features.
    pub xdp: Option<XdpFacts>,
    /// `ethtool -l`.
    pub channels: Option<ChannelFacts>,
    /// Receive rings RSS can target.
    pub rx_rings: Option<u32>,
    /// `ethtool -x`.
    pub rss: Option<RssFacts>,
    /// Fields RSS hashes for UDP/IPv4 (`ethtool -n IF rx-flow-hash udp4`).
    pub udp4_hash: Option<Vec<String>>,
    /// `ethtool -T`.
    pub timestamping: Option<TimestampFacts>,
    /// Why a query above has no answer, by its field name.
    pub unavailable: BTreeMap<&'static str, String>,
    /// The fix the failed XDP query suggested (a kernel without the netdev family).
    #[serde(skip)]
    pub(super) xdp_fix: Option<String>,
}

impl NicFacts {
    /// Asks the kernel about interface `name` in this network namespace.
    pub fn query(name: &str) -> Self {
        let mut f = NicFacts::default();
        let mut take = |field: &'static str, e: zc_core::Error| {
            f.unavailable.insert(field, e.to_string());
        };
        let driver = zc_nic::driver_info(name)
            .map_err(|e| take("driver", e))
            .ok();
        let xdp = zc_nic::xdp_features(name);
        let channels = zc_nic::channels(name).map_err(|e| take("channels", e)).ok();
        let rx_rings = zc_nic::rx_rings(name).map_err(|e| take("rx_rings", e)).ok();
        let rss = zc_nic::rss(name).map_err(|e| take("rss", e)).ok();
        let udp4 = zc_nic::udp4_flow_hash(name)
            .map_err(|e| take("udp4_hash", e))
            .ok();
        let ts = zc_nic::timestamping(name)
            .map_err(|e| take("timestamping", e))
            .ok();
        f.driver = driver.map(|d| DriverFacts {
            driver: d.driver,
            version: d.version,
            firmware: d.firmware,
            bus_info: d.bus_info,
        });
        match xdp {
            Ok(x) => {
                f.xdp = Some(XdpFacts {
                    features: zc_nic::xdp_feature_names(x.xdp),
                    native: x.native(),
                    zero_copy: x.zero_copy(),
                    zc_max_segs: x.zc_max_segs,
                    rx_metadata: x.rx_metadata.map(zc_nic::xdp_rx_metadata_names),
                    xsk: x.xsk.map(zc_nic::xsk_feature_names),
                })
            }
            Err(e) => {
                f.xdp_fix = e.fix().map(str::to_owned);
                f.unavailable.insert("xdp", e.to_string());
            }
        }
        f.channels = channels.map(|c| ChannelFacts {
            rx: c.rx,
            tx: c.tx,
            combined: c.combined,
            max_rx: c.max_rx,
            max_tx: c.max_tx,
            max_combined: c.max_combined,
        });
        f.rx_rings = rx_rings;
        f.rss = rss.map(|r| RssFacts {
            indir_size: r.indir_size,
            key_size: r.key_size,
            hash_functions: r.hash_functions,
            queues: r.queues,
        });
        f.udp4_hash = udp4.map(zc_nic::udp_hash_field_names);
        f.timestamping = ts.map(|t| TimestampFacts {
            capabilities: t.capability_names(),
            phc_index: t.phc_index,
            tx_types: zc_nic::tx_type_names(t.tx_types),
            rx_filters: zc_nic::rx_filter_names(t.rx_filters),
        });
        f
    }

    fn why(&self, field: &str) -> &str {
        self.unavailable
            .get(field)
            .map_or("not reported", String::as_str)
    }

    /// Driver, XDP, zero-copy, queues, RSS, timestamp and MTU findings.
    pub fn findings(&self, dev: &DeviceFacts) -> Vec<Finding> {
        vec![
            self.driver_finding(),
            self.native_xdp(&dev.name),
            self.zero_copy(&dev.name),
            self.queues(dev),
            self.rss_finding(dev),
            self.timestamps(&dev.name),
            self.mtu(dev),
        ]
    }

    fn driver_finding(&self) -> Finding {
        match &self.driver {
            Some(d) => {
                let or_none = |s: &str| {
                    if s.is_empty() {
                        "none reported".to_owned()
                    } else {
                        s.to_owned()
                    }
                };
                Finding::new(
                    "driver",
                    Status::Info,
                    format!(
                        "{} {}, firmware {}, bus {}",
                        d.driver,
                        d.version,
                        or_none(&d.firmware),
                        or_none(&d.bus_info)
                    ),
                )
            }
            None => Finding::new("driver", Status::Info, self.why("driver")),
        }
    }

    fn native_xdp(&self, name: &str) -> Finding {
        let Some(x) = &self.xdp else {
            let detail = format!("unknown: {}", self.why("xdp"));
            return match &self.xdp_fix {
                Some(fix) => Finding::fix("native XDP", Status::Warn, detail, fix.clone()),
                None => Finding::new("native XDP", Status::Warn, detail),
            };
        };
        let metadata = match &x.rx_metadata {
            Some(m) if !m.is_empty() => format!("; XDP receive metadata: {}", m.join(", ")),
            _ => String::new(),
        };
        if x.native {
            return Finding::new(
                "native XDP",
                Status::Ok,
                format!("xdp-features: {}{metadata}", x.features.join(", ")),
            );
        }
        Finding::fix(
            "native XDP",
            Status::Warn,
            format!(
                "no (xdp-features: {}): AF_XDP on {name} runs on generic XDP, after the kernel has built an skb for every packet",
                if x.features.is_empty() { "none".to_owned() } else { x.features.join(", ") }
            ),
            "use a NIC whose driver runs XDP natively (ice, i40e, ixgbe, mlx5, bnxt, virtio_net, veth...), or DPDK",
        )
    }

    fn zero_copy(&self, name: &str) -> Finding {
        let Some(x) = &self.xdp else {
            return Finding::new(
                "AF_XDP zero-copy",
                Status::Warn,
                format!("unknown: {}", self.why("xdp")),
            );
        };
        if x.zero_copy {
            let segs = x.zc_max_segs.map_or_else(String::new, |s| {
                format!(
                    ", at most {s} fragment{} a frame",
                    if s == 1 { "" } else { "s" }
                )
            });
            return Finding::new("AF_XDP zero-copy", Status::Ok, format!("yes{segs}"));
        }
        Finding::fix(
            "AF_XDP zero-copy",
            Status::Warn,
            format!("no: AF_XDP on {name} copies every frame into the UMEM (copy mode)"),
            "zero-copy needs a driver with XSK zero-copy (for example ice, i40e, ixgbe, igc, mlx5)",
        )
    }

    fn rx_queue_count(&self, dev: &DeviceFacts) -> usize {
        self.channels
            .as_ref()
            .map_or(dev.rx_queues, |c| (c.rx + c.combined) as usize)
    }

    fn queues(&self, dev: &DeviceFacts) -> Finding {
        let detail = match &self.channels {
            Some(c) => format!(
                "channels: {} rx, {} tx, {} combined (most {} rx, {} tx, {} combined); kernel queues {} rx, {} tx",
                c.rx, c.tx, c.combined, c.max_rx, c.max_tx, c.max_combined, dev.rx_queues, dev.tx_queues
            ),
            None => format!(
                "kernel queues {} rx, {} tx; channels: {}",
                dev.rx_queues,
                dev.tx_queues,
                self.why("channels")
            ),
        };
        Finding::new("queues", Status::Info, detail)
    }

    fn rss_finding(&self, dev: &DeviceFacts) -> Finding {
        let rx = self.rx_queue_count(dev);
        let table = match &self.rss {
            Some(r) if r.indir_size == 0 => format!(
                "no indirection table{}",
                if r.hash_functions.is_empty() {
                    String::new()
                } else {
                    format!(" (hash {})", r.hash_functions.join(", "))
                }
            ),
            Some(r) => {
                let hash = if r.hash_functions.is_empty() {
                    "hash not reported".to_owned()
                } else {
                    r.hash_functions.join(", ")
                };
                format!(
                    "{hash} over {} entries to queues {}",
                    r.indir_size,
                    r.queues
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
            None => format!("table: {}", self.why("rss")),
        };
        match &self.udp4_hash {
            Some(fields) => {
                let ports = fields.iter().any(|f| f == "src-port")
                    && fields.iter().any(|f| f == "dst-port");
                let detail = format!(
                    "{table}; UDP/IPv4 hashed on {}",
                    if fields.is_empty() {
                        "nothing".to_owned()
                    } else {
                        fields.join(", ")
                    }
                );
                if rx > 1 && !ports {
                    Finding::fix(
                        "RSS",
                        Status::Warn,
                        format!("{detail}: without the ports every datagram between two addresses lands on one queue"),
                        format!("ethtool -N {} rx-flow-hash udp4 sdfn", dev.name),
                    )
                } else {
                    Finding::new("RSS", Status::Info, detail)
                }
            }
            None if rx <= 1 => Finding::new(
                "RSS",
                Status::Info,
                format!("one receive queue: nothing to spread ({table})"),
            ),
            None => Finding::new(
                "RSS",
                Status::Info,
                format!("{table}; UDP hash fields: {}", self.why("udp4_hash")),
            ),
        }
    }

    fn timestamps(&self, name: &str) -> Finding {
        let Some(t) = &self.timestamping else {
            return Finding::new("timestamps", Status::Warn, self.why("timestamping"));
        };
        let has = |c: &str| t.capabilities.iter().any(|x| x == c);
        let phc = t.phc_index.map_or_else(
            || "no PTP clock".to_owned(),
            |i| format!("PTP clock /dev/ptp{i}"),
        );
        let hw = has("hardware-receive") && has("hardware-raw-clock");
        if hw && t.rx_filters.iter().any(|f| f == "all") {
            return Finding::new(
                "timestamps",
                Status::Ok,
                format!("hardware receive stamps on every packet (filter all), {phc}; transmit modes {}", t.tx_types.join(", ")),
            );
        }
        let soft = if has("software-receive") {
            "software receive stamps"
        } else {
            "no receive stamps"
        };
        if hw {
            return Finding::fix(
                "timestamps",
                Status::Warn,
                format!(
                    "hardware receive stamps for PTP messages only (filters {}), {phc}; a feed's packets get {soft}",
                    t.rx_filters.join(", ")
                ),
                "stamping every packet needs a NIC with the `all` receive filter (`ethtool -T IF`); until then latency starts when the kernel sees the packet",
            );
        }
        Finding::fix(
            "timestamps",
            Status::Warn,
            format!("{soft} only ({}), {phc}: the kernel stamps a packet when its driver hands it over, not when it arrives on the wire", t.capabilities.join(", ")),
            format!("for wire-arrival stamps use a NIC that timestamps every received packet in hardware (`ethtool -T {name}` lists hardware-receive and the `all` filter)"),
        )
    }

    fn mtu(&self, dev: &DeviceFacts) -> Finding {
        let Some(mtu) = dev.mtu else {
            return Finding::new("MTU", Status::Info, "unreadable");
        };
        let sg = self
            .xdp
            .as_ref()
            .is_some_and(|x| x.features.iter().any(|f| f == "rx-sg"));
        let native = self.xdp.as_ref().is_some_and(|x| x.native);
        if native && !sg && mtu > XDP_SINGLE_PAGE_MTU {
            return Finding::fix(
                "MTU",
                Status::Warn,
                format!("{mtu}: above {XDP_SINGLE_PAGE_MTU} a frame spans pages, and this driver has no XDP multi-buffer (rx-sg): attaching XDP fails"),
                format!("ip link set {} mtu 1500", dev.name),
            );
        }
        Finding::new("MTU", Status::Info, mtu.to_string())
    }
}

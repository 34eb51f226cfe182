//! `zc doctor` end to end on real interfaces: loopback, and both ends of a
//! veth pair with one end in a namespace, with exact expected answers and
//! `ethtool` as the independent reading of the same kernel facts.

use serde_json::{json, Value};
use std::process::{Command, Output};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `program`, run inside `netns` when one is given.
fn in_netns(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    }
}

/// `zc doctor ARGS --json`, optionally inside a namespace: the document and the exit code.
fn doctor_json(netns: Option<&str>, args: &[&str]) -> (Value, Option<i32>) {
    let o = in_netns(netns, env!("CARGO_BIN_EXE_zc"))
        .arg("doctor")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    (v, o.status.code())
}

/// `ethtool ARGS` inside `netns` (or here): its stdout.
fn ethtool(netns: Option<&str>, args: &[&str]) -> String {
    let o = in_netns(netns, "ethtool").args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The indented capability lines of `ethtool -T`.
fn ethtool_ts_capabilities(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with("Capabilities:"))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

/// `key: value` of `ethtool -i`.
fn ethtool_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn checks(v: &Value) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

const SOFTWARE_TS: [&str; 3] = [
    "software-transmit",
    "software-receive",
    "software-system-clock",
];

#[test]
fn loopback_is_described_exactly() {
    let (v, code) = doctor_json(None, &["--interface", "lo"]);
    let names = |section: &str| -> Vec<String> {
        v[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["check"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names("machine"),
        [
            "privileges",
            "kernel",
            "cores",
            "net.core.rmem_max",
            "io_uring",
            "AF_XDP",
            "bpffs",
            "hugepages",
            "DPDK",
            "libxdp / libbpf"
        ]
    );
    let uname = Command::new("uname").arg("-r").output().unwrap();
    let release = String::from_utf8_lossy(&uname.stdout).trim().to_owned();
    assert!(
        v["machine"][1]["detail"]
            .as_str()
            .unwrap()
            .contains(&release),
        "{}",
        v["machine"][1]
    );
    assert_eq!(
        names("host"),
        [
            "isolated CPUs",
            "nohz_full",
            "real-time priority",
            "RT throttling",
            "memlock limit",
            "irqbalance"
        ]
    );
    assert_eq!(names("vfio"), ["IOMMU", "vfio-pci", "user-space NICs"]);

    let lo = &v["interfaces"][0];
    assert_eq!(
        lo["device"],
        json!({
            "name": "lo", "operstate": "unknown", "admin_up": true, "carrier": true,
            "mtu": 65536, "speed_mbps": null, "duplex": null, "rx_queues": 1, "tx_queues": 1,
            "sysfs_path": "/sys/devices/virtual/net/lo", "pci": null, "irqs": []
        })
    );
    assert_eq!(
        lo["nic"],
        json!({
            "driver": null,
            "xdp": {"features": [], "native": false, "zero_copy": false, "zc_max_segs": null,
                    "rx_metadata": [], "xsk": []},
            "channels": null, "rx_rings": null, "rss": null, "udp4_hash": null,
            "timestamping": {"capabilities": SOFTWARE_TS, "phc_index": null,
                             "tx_types": [], "rx_filters": []},
            "unavailable": {
                "channels": "the driver of lo does not report its channel counts (EOPNOTSUPP)",
                "driver": "the driver of lo does not report its driver information (EOPNOTSUPP)",
                "rss": "the driver of lo does not report its RSS indirection table (EOPNOTSUPP)",
                "rx_rings": "the driver of lo does not report its receive ring count (EOPNOTSUPP)",
                "udp4_hash": "the driver of lo does not report its UDP/IPv4 flow hash fields (EOPNOTSUPP)"
            }
        })
    );
    assert_eq!(
        ethtool_ts_capabilities(&ethtool(None, &["-T", "lo"])),
        SOFTWARE_TS,
        "ethtool agrees"
    );
    assert_eq!(
        checks(lo),
        pairs(&[
            ("link", "ok"),
            ("device", "info"),
            ("NUMA node", "info"),
            ("IRQ affinity", "info"),
            ("driver", "info"),
            ("native XDP", "warn"),
            ("AF_XDP zero-copy", "warn"),
            ("queues", "info"),
            ("RSS", "info"),
            ("timestamps", "warn"),
            ("MTU", "info"),
        ])
    );
    assert_eq!(
        lo["checks"][5]["detail"],
        "no (xdp-features: none): AF_XDP on lo runs on generic XDP, after the kernel has built an skb for every packet"
    );

    // Every backend of this build is listed, ready exactly when nothing is missing,
    // and the exit code says whether all are.
    let backends = v["backends"].as_array().unwrap();
    let listed: Vec<&str> = backends
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    let known: Vec<&str> = zc::BACKENDS.iter().map(|b| b.name).collect();
    assert_eq!(listed, known);
    for b in backends {
        let missing = b["missing"].as_array().unwrap();
        assert_eq!(
            b["ready"].as_bool().unwrap(),
            b["enabled"].as_bool().unwrap() && missing.is_empty(),
            "{b}"
        );
    }
    assert_eq!(code, Some(if v["ready"] == json!(true) { 0 } else { 3 }));
}

#[test]
fn the_text_report_prints_each_finding_and_its_fix() {
    let o = Command::new(env!("CARGO_BIN_EXE_zc"))
        .args(["doctor", "--interface", "lo"])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    let expected = "\
interface lo
  ok      link               up (carrier on; the driver reports no operational state)
  info    device             virtual (/sys/devices/virtual/net/lo): no PCI function, IRQs or NUMA node
  info    NUMA node          none (virtual device)
  info    IRQ affinity       no interrupts (virtual device: receive work runs in the sender's softirq)
  info    driver             the driver of lo does not report its driver information (EOPNOTSUPP)
  WARN    native XDP         no (xdp-features: none): AF_XDP on lo runs on generic XDP, after the kernel has built an skb for every packet
                             fix: use a NIC whose driver runs XDP natively (ice, i40e, ixgbe, mlx5, bnxt, virtio_net, veth...), or DPDK
";
    assert!(t.contains(expected), "{t}");
    assert!(t.contains("\nbackends\n  recvfrom "), "{t}");
}

#[test]
fn an_unknown_interface_is_a_clear_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_zc"))
        .args(["doctor", "--interface", "zcnosuch0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "zc: error: interface \"zcnosuch0\" not found in this network namespace; fix: list the \
         interfaces with `ip -br link`, or run in the namespace that has it \
         (`ip netns exec NS zc doctor ...`)\n"
    );
}

#[test]
fn both_ends_of_a_veth_pair_are_described_exactly() {
    if !privileged_or_skip("both_ends_of_a_veth_pair_are_described_exactly") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zcdoc", 134)
    })
    .unwrap();
    let ns = tb.netns.as_str();
    for (netns, ifname) in [(None, tb.host_if.as_str()), (Some(ns), tb.peer_if.as_str())] {
        let (v, _) = doctor_json(netns, &["-i", ifname]);
        let i = &v["interfaces"][0];
        assert_eq!(
            i["device"],
            json!({
                "name": ifname, "operstate": "up", "admin_up": true, "carrier": true,
                "mtu": 1500, "speed_mbps": 10000, "duplex": "full", "rx_queues": 2, "tx_queues": 2,
                "sysfs_path": format!("/sys/devices/virtual/net/{ifname}"), "pci": null, "irqs": []
            }),
            "{ifname}"
        );
        assert_eq!(
            i["nic"],
            json!({
                "driver": {"driver": "veth", "version": "1.0", "firmware": "", "bus_info": ""},
                "xdp": {"features": ["basic", "redirect", "rx-sg"], "native": true,
                        "zero_copy": false, "zc_max_segs": null,
                        "rx_metadata": ["timestamp", "hash", "vlan-tag"], "xsk": []},
                "channels": {"rx": 2, "tx": 2, "combined": 0, "max_rx": 2, "max_tx": 2,
                             "max_combined": 0},
                "rx_rings": null, "rss": null, "udp4_hash": null,
                "timestamping": {"capabilities": SOFTWARE_TS, "phc_index": null,
                                 "tx_types": [], "rx_filters": []},
                "unavailable": {
                    "rss": format!("the driver of {ifname} does not report its RSS indirection table (EOPNOTSUPP)"),
                    "rx_rings": format!("the driver of {ifname} does not report its receive ring count (EOPNOTSUPP)"),
                    "udp4_hash": format!("the driver of {ifname} does not report its UDP/IPv4 flow hash fields (EOPNOTSUPP)")
                }
            }),
            "{ifname}"
        );
        // ethtool reads the same kernel facts its own way.
        let info = ethtool(netns, &["-i", ifname]);
        assert_eq!(ethtool_field(&info, "driver"), "veth");
        assert_eq!(ethtool_field(&info, "version"), "1.0");
        assert_eq!(ethtool_field(&info, "firmware-version"), "");
        assert_eq!(
            ethtool_ts_capabilities(&ethtool(netns, &["-T", ifname])),
            SOFTWARE_TS
        );
        let channels = ethtool(netns, &["-l", ifname]);
        assert_eq!(
            channels.matches("RX:\t\t2").count(),
            2,
            "maximum and current: {channels}"
        );
        assert_eq!(
            checks(i),
            pairs(&[
                ("link", "ok"),
                ("device", "info"),
                ("NUMA node", "info"),
                ("IRQ affinity", "info"),
                ("driver", "info"),
                ("native XDP", "ok"),
                ("AF_XDP zero-copy", "warn"),
                ("queues", "info"),
                ("RSS", "info"),
                ("timestamps", "warn"),
                ("MTU", "info"),
            ]),
            "{ifname}"
        );
        assert_eq!(i["checks"][0]["detail"], "up, 10000 Mb/s full duplex");
        assert_eq!(
            i["checks"][4]["detail"],
            "veth 1.0, firmware none reported, bus none reported"
        );
        assert_eq!(
            i["checks"][5]["detail"],
            "xdp-features: basic, redirect, rx-sg; XDP receive metadata: timestamp, hash, vlan-tag"
        );
        assert_eq!(
            i["checks"][7]["detail"],
            "channels: 2 rx, 2 tx, 0 combined (most 2 rx, 2 tx, 0 combined); kernel queues 2 rx, 2 tx"
        );
    }

    // The peer end down: the host end loses its carrier, the interface is not
    // usable, and the exit code says so.
    tb.exec_in_peer(&["ip", "link", "set", &tb.peer_if, "down"])
        .unwrap();
    let mut down = Value::Null;
    for _ in 0..50 {
        // operstate follows the carrier asynchronously (linkwatch).
        let (v, code) = doctor_json(None, &["-i", &tb.host_if]);
        if v["interfaces"][0]["device"]["operstate"] != "up" {
            assert_eq!(code, Some(3));
            down = v;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        down["interfaces"][0]["checks"][0],
        json!({
            "check": "link", "status": "missing",
            "detail": "down, carrier off",
            "fix": "the far end is down: check the cable, the optic and the switch port (for a veth pair, the peer end)"
        })
    );
    assert_eq!(down["ready"], false);
}

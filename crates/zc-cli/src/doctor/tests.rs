//! The host probes against a committed tree of sysfs and procfs files
//! (`tests/fixtures/doctor-host`, described in its README), for what a veth
//! pair cannot show: a PCI NIC and its IRQs, vfio, isolated CPUs, limits.
//! Variants copy the tree and change a file or two.

use super::device::DeviceFacts;
use super::finding::{Finding, Status};
use super::nic::{ChannelFacts, NicFacts, RssFacts, TimestampFacts, XdpFacts};
use super::sysroot::SysRoot;
use super::tuning::{HostFacts, Limit};
use super::vfio::{UserSpaceNic, VfioFacts};
use std::path::Path;
use zc_core::ErrorKind;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/doctor-host");

fn ok(check: &'static str, detail: &str) -> Finding {
    Finding::new(check, Status::Ok, detail)
}

fn info(check: &'static str, detail: &str) -> Finding {
    Finding::new(check, Status::Info, detail)
}

fn warn(check: &'static str, detail: &str, fix: &str) -> Finding {
    Finding::fix(check, Status::Warn, detail, fix)
}

/// A writable copy of the fixture, symbolic links kept.
fn copy() -> (tempfile::TempDir, SysRoot) {
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{FIXTURE}/."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let root = SysRoot::at(dir.path());
    (dir, root)
}

fn write(root: &Path, rel: &str, text: &str) {
    std::fs::write(root.join(rel), text).unwrap();
}

#[test]
fn host_tuning_is_read_exactly() {
    let host = HostFacts::read(&SysRoot::at(FIXTURE));
    assert_eq!(
        host,
        HostFacts {
            online_cpus: (0..16).collect(),
            isolated_cpus: vec![2, 3, 4, 5],
            nohz_full_cpus: vec![2, 3, 4],
            memlock: Some(Limit {
                soft: Some(65536),
                hard: Some(65536)
            }),
            rtprio: Some(Limit {
                soft: Some(0),
                hard: Some(0)
            }),
            cap_ipc_lock: false,
            cap_sys_nice: false,
            sched_rt_runtime_us: Some(950_000),
            sched_rt_period_us: Some(1_000_000),
            irqbalance_running: true,
        }
    );
    assert_eq!(
        host.findings(),
        vec![
            ok("isolated CPUs", "2-5"),
            warn("nohz_full", "2-4; isolated CPUs 5 still take the tick", "boot with nohz_full=2-5 (every isolated CPU)"),
            warn(
                "real-time priority",
                "RLIMIT_RTPRIO soft 0, hard 0: this user cannot run a thread at a real-time priority",
                "allow it in /etc/security/limits.conf (`USER - rtprio 99`), or give the binary CAP_SYS_NICE (`setcap cap_sys_nice+ep zc`)",
            ),
            warn(
                "RT throttling",
                "a real-time thread is stopped for 50000 µs of every 1000000 µs (kernel.sched_rt_runtime_us = 950000)",
                "sysctl -w kernel.sched_rt_runtime_us=-1   (only with the busy-polling threads on isolated CPUs: a runaway real-time thread then keeps its CPU)",
            ),
            Finding::fix(
                "memlock limit",
                Status::Missing,
                "soft 64 KiB, hard 64 KiB: below the 512 MiB the bypass backends lock",
                "ulimit -l unlimited, or LimitMEMLOCK=infinity in the service unit   (AF_XDP UMEM and DPDK memory are locked)",
            ),
            warn(
                "irqbalance",
                "running: it moves the NIC's interrupts between CPUs and undoes affinities set by hand",
                "systemctl disable --now irqbalance, or keep it off the receive CPUs with IRQBALANCE_BANNED_CPULIST=CPUS in /etc/default/irqbalance",
            ),
        ]
    );
}

#[test]
fn a_tuned_host_passes_every_tuning_check() {
    let (dir, root) = copy();
    let d = dir.path();
    write(d, "sys/devices/system/cpu/nohz_full", "2-5\n");
    // CAP_IPC_LOCK (14) and CAP_SYS_NICE (23).
    write(
        d,
        "proc/self/status",
        "Uid:\t0\t0\t0\t0\nCapEff:\t0000000000804000\n",
    );
    write(
        d,
        "proc/self/limits",
        "Max locked memory         unlimited            unlimited            bytes\nMax realtime priority     0                    0\n",
    );
    write(d, "proc/sys/kernel/sched_rt_runtime_us", "-1\n");
    std::fs::remove_dir_all(d.join("proc/4242")).unwrap();
    assert_eq!(
        HostFacts::read(&root).findings(),
        vec![
            ok("isolated CPUs", "2-5"),
            ok("nohz_full", "2-5"),
            ok(
                "real-time priority",
                "CAP_SYS_NICE: SCHED_FIFO allowed at any priority (RLIMIT_RTPRIO soft 0, hard 0)"
            ),
            ok("RT throttling", "off (kernel.sched_rt_runtime_us = -1)"),
            ok("memlock limit", "soft unlimited, hard unlimited"),
            ok("irqbalance", "not running"),
        ]
    );
}

#[test]
fn an_untuned_host_gets_every_fix() {
    let (dir, root) = copy();
    let d = dir.path();
    write(d, "sys/devices/system/cpu/isolated", "\n");
    write(d, "sys/devices/system/cpu/nohz_full", "(null)\n");
    // CAP_IPC_LOCK alone: the small limit no longer matters.
    write(d, "proc/self/status", "CapEff:\t0000000000004000\n");
    let host = HostFacts::read(&root);
    let f = host.findings();
    assert_eq!(
        f[0],
        warn(
            "isolated CPUs",
            "none: the scheduler may run any task on the receive threads' CPUs",
            "boot with isolcpus=managed_irq,domain,CPUS (say 2-3: not CPU 0, on the NIC's NUMA node) and pin the receive threads there (`zc recv --pin CPU`)",
        )
    );
    assert_eq!(
        f[1],
        warn(
            "nohz_full",
            "none: the scheduler tick interrupts every CPU, busy-polling ones too",
            "boot with nohz_full=CPUS rcu_nocbs=CPUS (the isolated CPUs)",
        )
    );
    assert_eq!(
        f[4],
        ok(
            "memlock limit",
            "soft 64 KiB, hard 64 KiB; CAP_IPC_LOCK: locked memory is not charged to it"
        )
    );
}

#[test]
fn vfio_and_the_bound_port_are_read_exactly() {
    let v = VfioFacts::read(&SysRoot::at(FIXTURE));
    assert_eq!(
        v,
        VfioFacts {
            iommu_groups: 2,
            noiommu_mode: false,
            vfio_pci_loaded: true,
            vfio_device: true,
            user_space_nics: vec![UserSpaceNic {
                pci: "0000:3b:00.1".into(),
                driver: "vfio-pci".into(),
                iommu_group: Some("18".into()),
            }],
        }
    );
    assert_eq!(
        v.findings(),
        vec![
            ok("IOMMU", "on, 2 groups"),
            ok("vfio-pci", "loaded, /dev/vfio/vfio present"),
            info("user-space NICs", "0000:3b:00.1 (vfio-pci, IOMMU group 18)"),
        ]
    );
}

#[test]
fn a_host_without_iommu_or_vfio_gets_the_fixes() {
    let (dir, root) = copy();
    let d = dir.path();
    std::fs::remove_dir_all(d.join("sys/kernel/iommu_groups")).unwrap();
    std::fs::remove_dir_all(d.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
    // Port 1 back on the kernel driver.
    let port1 = d.join("sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.1/driver");
    std::fs::remove_file(&port1).unwrap();
    std::os::unix::fs::symlink("../../../../bus/pci/drivers/ice", &port1).unwrap();
    let iommu_fix = "enable VT-d / AMD-Vi in the firmware and boot with intel_iommu=on iommu=pt (or amd_iommu=on)";
    assert_eq!(
        VfioFacts::read(&root).findings(),
        vec![
            warn("IOMMU", "off: vfio-pci cannot take a NIC for a DPDK poll-mode driver", iommu_fix),
            warn("vfio-pci", "not loaded", "modprobe vfio-pci"),
            info(
                "user-space NICs",
                "none: every NIC is bound to a kernel driver (what AF_XDP and zc's DPDK vdevs use); a DPDK PCI port needs `dpdk-devbind.py --bind=vfio-pci PCI`"
            ),
        ]
    );
    write(
        d,
        "sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
        "Y\n",
    );
    assert_eq!(
        VfioFacts::read(&root).findings()[0],
        warn(
            "IOMMU",
            "off; vfio runs in unsafe no-IOMMU mode (the device can write anywhere in memory)",
            iommu_fix
        )
    );
}

#[test]
fn the_pci_port_is_read_exactly() {
    let root = SysRoot::at(FIXTURE);
    let dev = DeviceFacts::read(&root, "ens1f0").unwrap();
    let json = serde_json::to_value(&dev).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "name": "ens1f0",
            "operstate": "up",
            "admin_up": true,
            "carrier": true,
            "mtu": 9000,
            "speed_mbps": 25000,
            "duplex": "full",
            "rx_queues": 2,
            "tx_queues": 2,
            "sysfs_path": "/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/net/ens1f0",
            "pci": {
                "address": "0000:3b:00.0",
                "id": "8086:159b",
                "driver": "ice",
                "iommu_group": "17",
                "numa_node": 1,
                "numa_cpus": [8, 9, 10, 11, 12, 13, 14, 15],
            },
            "irqs": [
                {"irq": 120, "name": "ice-0000:3b:00.0:misc", "affinity": (0..16).collect::<Vec<_>>(), "effective": [0]},
                {"irq": 121, "name": "ice-ens1f0-TxRx-0", "affinity": [3], "effective": [3]},
                {"irq": 122, "name": "ice-ens1f0-TxRx-1", "affinity": [9], "effective": [9]},
            ],
        })
    );
    let host = HostFacts::read(&root);
    assert_eq!(
        dev.findings(&host),
        vec![
            ok("link", "up, 25000 Mb/s full duplex"),
            info("device", "PCI 0000:3b:00.0 [8086:159b] bound to ice, IOMMU group 17"),
            warn(
                "NUMA node",
                "node 1 (CPUs 8-15); the isolated CPUs 2-5 are all on other nodes: every packet crosses the interconnect",
                "isolate and pin the receive threads on CPUs of node 1 (8-15)",
            ),
            warn(
                "IRQ affinity",
                "IRQs 120 may run on any CPU: 120 ice-0000:3b:00.0:misc → CPU 0; 121 ice-ens1f0-TxRx-0 → CPU 3; 122 ice-ens1f0-TxRx-1 → CPU 9",
                "for each queue's IRQ N: echo CPU > /proc/irq/N/smp_affinity_list, CPU being a housekeeping CPU (8-15) or the CPU that polls that queue",
            ),
        ]
    );
}

#[test]
fn irqs_on_isolated_cpus_a_local_node_and_a_down_link() {
    let (dir, root) = copy();
    let d = dir.path();
    write(d, "proc/irq/120/smp_affinity_list", "8\n");
    write(d, "sys/devices/system/cpu/isolated", "3,10-11\n");
    let host = HostFacts::read(&root);
    let dev = DeviceFacts::read(&root, "ens1f0").unwrap();
    let f = dev.findings(&host);
    assert_eq!(
        f[2],
        ok(
            "NUMA node",
            "node 1 (CPUs 8-15): pin the receive threads there"
        )
    );
    assert_eq!(
        f[3],
        warn(
            "IRQ affinity",
            "IRQs 121 land on isolated CPUs and preempt what runs there: 120 ice-0000:3b:00.0:misc → CPU 0; 121 ice-ens1f0-TxRx-0 → CPU 3; 122 ice-ens1f0-TxRx-1 → CPU 9",
            "move them to a housekeeping CPU (8-9,12-15): echo CPU > /proc/irq/N/smp_affinity_list (keep one there only if that CPU's thread busy-polls the same queue)",
        )
    );
    let net = "sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/net/ens1f0";
    write(d, &format!("{net}/operstate"), "down\n");
    write(d, &format!("{net}/carrier"), "0\n");
    let dev = DeviceFacts::read(&root, "ens1f0").unwrap();
    assert_eq!(
        dev.findings(&host)[0],
        Finding::fix(
            "link",
            Status::Missing,
            "down, carrier off",
            "the far end is down: check the cable, the optic and the switch port (for a veth pair, the peer end)",
        )
    );
    write(d, &format!("{net}/flags"), "0x1002\n");
    let dev = DeviceFacts::read(&root, "ens1f0").unwrap();
    assert_eq!(dev.admin_up, Some(false));
    assert_eq!(
        dev.findings(&host)[0].fix.as_deref(),
        Some("ip link set ens1f0 up")
    );
}

#[test]
fn an_unknown_or_escaping_interface_is_not_found() {
    let root = SysRoot::at(FIXTURE);
    for name in ["ens9", "../../..", "a/b", ""] {
        let e = DeviceFacts::read(&root, name).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{name:?}");
    }
    assert_eq!(
        DeviceFacts::read(&root, "ens9").unwrap_err().to_string(),
        "interface \"ens9\" not found in this network namespace; fix: list the interfaces with \
         `ip -br link`, or run in the namespace that has it (`ip netns exec NS zc doctor ...`)"
    );
}

/// A high-end NIC as the kernel would describe it, for the NIC findings a
/// veth cannot trigger (its facts come from ioctls, not files).
fn e810() -> (DeviceFacts, NicFacts) {
    let dev = DeviceFacts::read(&SysRoot::at(FIXTURE), "ens1f0").unwrap();
    let nic = NicFacts {
        xdp: Some(XdpFacts {
            features: vec![
                "basic".into(),
                "redirect".into(),
                "ndo-xmit".into(),
                "xsk-zerocopy".into(),
            ],
            native: true,
            zero_copy: true,
            zc_max_segs: Some(1),
            rx_metadata: Some(vec!["timestamp".into(), "hash".into()]),
            xsk: Some(vec![]),
        }),
        channels: Some(ChannelFacts {
            rx: 0,
            tx: 0,
            combined: 2,
            max_rx: 0,
            max_tx: 0,
            max_combined: 64,
        }),
        rss: Some(RssFacts {
            indir_size: 512,
            key_size: 52,
            hash_functions: vec!["toeplitz".into()],
            queues: vec![0, 1],
        }),
        udp4_hash: Some(vec!["ip-src".into(), "ip-dst".into()]),
        timestamping: Some(TimestampFacts {
            capabilities: vec![
                "hardware-transmit".into(),
                "hardware-receive".into(),
                "hardware-raw-clock".into(),
            ],
            phc_index: Some(0),
            tx_types: vec!["off".into(), "on".into()],
            rx_filters: vec!["none".into(), "ptpv2-event".into()],
        }),
        ..NicFacts::default()
    };
    (dev, nic)
}

#[test]
fn nic_findings_name_the_fix_for_what_a_veth_cannot_show() {
    let (dev, mut nic) = e810();
    let f = nic.findings(&dev);
    assert_eq!(
        f[1],
        ok(
            "native XDP",
            "xdp-features: basic, redirect, ndo-xmit, xsk-zerocopy; XDP receive metadata: timestamp, hash"
        )
    );
    assert_eq!(
        f[2],
        ok("AF_XDP zero-copy", "yes, at most 1 fragment a frame")
    );
    assert_eq!(
        f[4],
        warn(
            "RSS",
            "toeplitz over 512 entries to queues 0,1; UDP/IPv4 hashed on ip-src, ip-dst: without the ports every datagram between two addresses lands on one queue",
            "ethtool -N ens1f0 rx-flow-hash udp4 sdfn",
        )
    );
    assert_eq!(
        f[5],
        warn(
            "timestamps",
            "hardware receive stamps for PTP messages only (filters none, ptpv2-event), PTP clock /dev/ptp0; a feed's packets get no receive stamps",
            "stamping every packet needs a NIC with the `all` receive filter (`ethtool -T IF`); until then latency starts when the kernel sees the packet",
        )
    );
    assert_eq!(
        f[6],
        warn(
            "MTU",
            "9000: above 3498 a frame spans pages, and this driver has no XDP multi-buffer (rx-sg): attaching XDP fails",
            "ip link set ens1f0 mtu 1500",
        )
    );
    // With the ports hashed, stamps on every packet and multi-buffer XDP.
    nic.udp4_hash = Some(
        ["ip-src", "ip-dst", "src-port", "dst-port"]
            .map(String::from)
            .to_vec(),
    );
    if let Some(t) = nic.timestamping.as_mut() {
        t.rx_filters = vec!["none".into(), "all".into()];
    }
    if let Some(x) = nic.xdp.as_mut() {
        x.features.push("rx-sg".into());
    }
    let f = nic.findings(&dev);
    assert_eq!(
        f[4],
        info(
            "RSS",
            "toeplitz over 512 entries to queues 0,1; UDP/IPv4 hashed on ip-src, ip-dst, src-port, dst-port"
        )
    );
    assert_eq!(
        f[5],
        ok(
            "timestamps",
            "hardware receive stamps on every packet (filter all), PTP clock /dev/ptp0; transmit modes off, on"
        )
    );
    assert_eq!(f[6], info("MTU", "9000"));
}

#[test]
fn a_kernel_without_the_netdev_family_states_its_fallback() {
    let (dev, mut nic) = e810();
    nic.xdp = None;
    nic.unavailable.insert(
        "xdp",
        "this kernel has no netdev netlink family (added in Linux 6.3), so it cannot say which XDP features a driver has".into(),
    );
    nic.xdp_fix = Some("on Linux 6.3 or later the driver's XDP features are listed; until then, attach and see: `zc recv --backend afxdp` reports native or generic mode and zero-copy or copy".into());
    let f = nic.findings(&dev);
    assert_eq!(
        f[1],
        warn(
            "native XDP",
            "unknown: this kernel has no netdev netlink family (added in Linux 6.3), so it cannot say which XDP features a driver has",
            "on Linux 6.3 or later the driver's XDP features are listed; until then, attach and see: `zc recv --backend afxdp` reports native or generic mode and zero-copy or copy",
        )
    );
    assert_eq!(f[2].status, Status::Warn);
}

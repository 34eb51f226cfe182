//! 100 setup/teardown cycles leave no XDP program on the interface and no file
//! descriptor open. A test binary of its own, so that no other test opens or
//! closes descriptors while they are counted.

use std::process::Command;
use zc_afxdp::{open_receivers, AfXdpConfig};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

fn xdp_attached(ifname: &str) -> bool {
    let out = Command::new("ip")
        .args(["link", "show", "dev", ifname])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip link show {ifname} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains(" xdp") || text.contains("prog/xdp")
}

#[test]
fn a_hundred_setups_and_teardowns_leave_nothing_behind() {
    if !privileged_or_skip("a_hundred_setups_and_teardowns_leave_nothing_behind") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zcxdp6", 226)
    })
    .unwrap();
    let mut cfg = AfXdpConfig::new(&tb.host_if, 9600);
    cfg.queues = vec![0, 1];
    cfg.frames_per_queue = 256;
    cfg.rx_ring = 256;
    cfg.batch = 32;
    assert!(!xdp_attached(&tb.host_if));
    let before = open_fds();
    for cycle in 0..100 {
        let rxs = open_receivers(&cfg).unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        assert!(
            xdp_attached(&tb.host_if),
            "cycle {cycle}: program attached while open"
        );
        drop(rxs);
        assert!(
            !xdp_attached(&tb.host_if),
            "cycle {cycle}: program left attached after drop"
        );
    }
    assert_eq!(
        open_fds(),
        before,
        "file descriptors leaked over 100 cycles"
    );
}

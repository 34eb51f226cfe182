//! A process killed with SIGKILL while it has receivers open leaves no XDP
//! program on the interface: the program is held by a BPF link, which the
//! kernel closes with the process's file descriptors.
//!
//! The test runs itself as the victim: with `ZC_AFXDP_VICTIM_IF` set it opens
//! receivers on that interface, says so on stdout and waits to be killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zc_afxdp::{open_receivers, AfXdpConfig};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

const VICTIM_ENV: &str = "ZC_AFXDP_VICTIM_IF";
const TEST: &str = "a_killed_process_leaves_no_program_attached";

fn xdp_attached(ifname: &str) -> bool {
    let out = Command::new("ip")
        .args(["link", "show", "dev", ifname])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains(" xdp") || text.contains("prog/xdp")
}

#[test]
fn a_killed_process_leaves_no_program_attached() {
    if let Ok(ifname) = std::env::var(VICTIM_ENV) {
        let _rxs =
            open_receivers(&AfXdpConfig::new(&ifname, 9900)).expect("victim: open receivers");
        println!("READY");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if !privileged_or_skip(TEST) {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp8", 228)).unwrap();
    let mut victim = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(VICTIM_ENV, &tb.host_if)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(victim.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("READY"))),
        "the victim did not open its receivers"
    );
    assert!(
        xdp_attached(&tb.host_if),
        "program attached while the victim lives"
    );

    victim.kill().unwrap(); // SIGKILL: no destructor runs
    victim.wait().unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    while xdp_attached(&tb.host_if) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !xdp_attached(&tb.host_if),
        "an XDP program was left on {} by a killed process",
        tb.host_if
    );
}

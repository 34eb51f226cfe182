//! Picking a testbed subnet no interface on this machine uses.

/// The first 198.18.N.0/24 subnet from `from` on that no interface here uses:
/// other engineers' testbeds run on this machine at the same time, and two
/// veths on one subnet would steal each other's routes.
pub fn free_subnet(from: u8) -> u8 {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    (from..=250)
        .find(|n| !text.contains(&format!(" 198.18.{n}.")))
        .expect("a free 198.18.N.0/24 subnet")
}

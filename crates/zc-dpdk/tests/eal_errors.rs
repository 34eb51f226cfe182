//! Bad EAL arguments and a missing vdev are clear errors, never an abort, and
//! a second start says the EAL starts once per process.
//!
//! One test function: the EAL starts once per process.

use zc_core::sys::privileged_or_skip;
use zc_core::ErrorKind;
use zc_dpdk::{Eal, EalConfig, Files, Memory};

#[test]
fn bad_arguments_and_missing_vdevs_are_clear_errors() {
    if !privileged_or_skip("bad_arguments_and_missing_vdevs_are_clear_errors") {
        return;
    }
    // Refused before DPDK sees it: a core this process may not run on.
    let e = Eal::start(&EalConfig::no_huge(4000)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("core 4000"), "{e}");
    // Refused before DPDK sees it: an option that would make DPDK exit.
    let mut cfg = EalConfig::no_huge(0);
    cfg.log_level = Some("--help".to_owned());
    assert_eq!(Eal::start(&cfg).unwrap_err().kind(), ErrorKind::Config);
    // DPDK only warns about an unknown log level and goes on: refused here.
    let mut cfg = EalConfig::no_huge(0);
    cfg.log_level = Some("nosuchlevel".to_owned());
    let e = Eal::start(&cfg).unwrap_err();
    assert!(e.to_string().contains("log level \"nosuchlevel\""), "{e}");
    // More memory than the machine has: DPDK 22.11 would crash (SIGSEGV)
    // trying to map it with --no-huge, so it is refused before.
    let mut cfg = EalConfig::no_huge(0);
    cfg.memory = Memory::NoHuge { mb: 1 << 20 };
    let e = Eal::start(&cfg).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exhausted, "{e}");
    assert!(e.to_string().contains("MB available"), "{e}");
    // A bad file prefix.
    let mut cfg = EalConfig::no_huge(0);
    cfg.files = Files::Prefix("a/b".to_owned());
    assert_eq!(Eal::start(&cfg).unwrap_err().kind(), ErrorKind::Config);

    // A missing vdev at start: the EAL came up, the device did not; the error
    // names it, and the EAL is cleaned up.
    let cfg = EalConfig::no_huge(0)
        .vdev("net_ring0", "")
        .vdev("net_nosuchdriver0", "x=1");
    let e = Eal::start(&cfg).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("net_nosuchdriver0 (x=1)") && msg.contains("fix:"),
        "{msg}"
    );
    eprintln!("missing vdev: {msg}");

    // After that, a start is refused with the reason.
    let e = Eal::start(&EalConfig::no_huge(0)).unwrap_err();
    assert!(e.to_string().contains("once per process"), "{e}");
    eprintln!("second start: {e}");
}

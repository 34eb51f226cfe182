//! Clear errors when a privilege or the memlock limit is missing.
//!
//! Capabilities are per thread in Linux, so each case drops them in a thread
//! of its own; RLIMIT_MEMLOCK is per process, which is why this is a test
//! binary of its own (no other test shares the lowered limit).

use std::thread;
use zc_afxdp::{open_receivers, AfXdpConfig};
use zc_core::error::{ErrorKind, Result};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_RESOURCE: u32 = 24;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Keeps only the capabilities in `keep` (a 64-bit mask) for the calling thread.
fn keep_only_caps(keep: u64) {
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData for version 3; both pointers are valid.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &header as *const CapHeader,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "capget");
    for (i, d) in data.iter_mut().enumerate() {
        let mask = (keep >> (32 * i)) as u32;
        d.effective &= mask;
        d.permitted &= mask;
        d.inheritable &= mask;
    }
    // SAFETY: as above; capset changes only this thread's credentials.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    assert_eq!(rc, 0, "capset");
}

fn open_in_thread(cfg: AfXdpConfig, keep: u64) -> Result<usize> {
    thread::spawn(move || {
        keep_only_caps(keep);
        open_receivers(&cfg).map(|rxs| rxs.len())
    })
    .join()
    .expect("thread")
}

#[test]
fn missing_privileges_and_memlock_give_clear_errors() {
    if !privileged_or_skip("missing_privileges_and_memlock_give_clear_errors") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp7", 227)).unwrap();
    let mut cfg = AfXdpConfig::new(&tb.host_if, 9800);

    // No capabilities at all: loading the XDP program is refused.
    let e = open_in_thread(cfg.clone(), 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    assert!(
        e.fix()
            .is_some_and(|f| f.contains("CAP_BPF") && f.contains("CAP_NET_ADMIN")),
        "{e}"
    );

    // Everything but CAP_IPC_LOCK and CAP_SYS_RESOURCE, a UMEM above an 8 MiB
    // memlock limit: the UMEM registration is refused and the error says why.
    let limit = libc::rlimit {
        rlim_cur: 8 << 20,
        rlim_max: 8 << 20,
    };
    // SAFETY: a valid rlimit; lowering the limit needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) }, 0);
    cfg.frames_per_queue = 8192; // 16 MiB of 2 KiB frames
    let e = open_in_thread(
        cfg.clone(),
        !((1 << CAP_IPC_LOCK) | (1 << CAP_SYS_RESOURCE)),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exhausted, "{e}");
    assert!(
        e.to_string().contains("locked-memory limit 8192 KiB"),
        "{e}"
    );
    assert!(
        e.fix()
            .is_some_and(|f| f.contains("ulimit -l") && f.contains("CAP_IPC_LOCK")),
        "{e}"
    );

    // The same UMEM within the limit opens.
    cfg.frames_per_queue = 1024; // 2 MiB
    assert_eq!(
        open_in_thread(cfg, !((1 << CAP_IPC_LOCK) | (1 << CAP_SYS_RESOURCE))).unwrap(),
        1
    );
}

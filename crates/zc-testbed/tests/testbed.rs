//! The testbed sets up a working link and leaves nothing behind, also on failure.

use nix::sched::{sched_getaffinity, CpuSet};
use nix::unistd::Pid;
use std::net::UdpSocket;
use std::time::Duration;
use zc_core::sys::privileged_or_skip;
use zc_testbed::{interface_exists, netns_exists, Testbed, TestbedConfig};

#[test]
fn a_datagram_crosses_and_everything_is_removed_after() {
    if !privileged_or_skip("a_datagram_crosses_and_everything_is_removed_after") {
        return;
    }
    let cfg = TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zctb1", 201)
    };
    let (ns, host_if) = {
        let tb = Testbed::create(&cfg).unwrap();
        assert_eq!(tb.host_addr.octets(), [198, 18, 201, 1]);
        let rx = UdpSocket::bind((tb.host_addr, 0)).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let dst = rx.local_addr().unwrap();
        let peer = tb.peer_addr;
        tb.spawn_in_peer(move || {
            let s = UdpSocket::bind((peer, 0)).map_err(|e| zc_core::Error::io("bind", e))?;
            s.send_to(b"hello", dst)
                .map_err(|e| zc_core::Error::io("send", e))?;
            Ok(())
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.ip(), std::net::IpAddr::V4(tb.peer_addr));
        let queues = std::fs::read_dir(format!("/sys/class/net/{}/queues", tb.host_if))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("rx-")
            })
            .count();
        assert_eq!(queues, 2);
        // Quiet link: no IPv6 address on either end, so no stray neighbour
        // discovery or MLD frames reach a raw receiver.
        let v6 = std::process::Command::new("ip")
            .args(["-6", "addr", "show", "dev", &tb.host_if])
            .output()
            .unwrap();
        assert!(
            v6.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&v6.stdout)
        );
        let v6 = tb
            .exec_in_peer(&["ip", "-6", "addr", "show", "dev", &tb.peer_if])
            .unwrap();
        assert!(v6.is_empty(), "{v6}");
        (tb.netns.clone(), tb.host_if.clone())
    };
    assert!(!interface_exists(&host_if));
    assert!(!netns_exists(&ns));
}

#[test]
fn nothing_is_left_behind_when_a_test_panics() {
    if !privileged_or_skip("nothing_is_left_behind_when_a_test_panics") {
        return;
    }
    let cfg = TestbedConfig::new("zctb2", 202);
    let r = std::panic::catch_unwind(|| {
        let _tb = Testbed::create(&cfg).unwrap();
        panic!("a failing test");
    });
    assert!(r.is_err());
    assert!(!interface_exists("zctb2h"));
    assert!(!netns_exists("zctb2-ns"));
}

#[test]
fn a_namespace_it_did_not_create_is_left_alone() {
    if !privileged_or_skip("a_namespace_it_did_not_create_is_left_alone") {
        return;
    }
    let out = std::process::Command::new("ip")
        .args(["netns", "add", "zctb4-ns"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let e = Testbed::create(&TestbedConfig::new("zctb4", 204)).unwrap_err();
    let still_there = netns_exists("zctb4-ns");
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", "zctb4-ns"])
        .status();
    assert!(still_there, "a namespace someone else made was removed");
    assert!(e.to_string().contains("zctb4-ns exists"), "{e}");
}

#[test]
fn a_stale_testbed_of_the_same_name_is_replaced() {
    if !privileged_or_skip("a_stale_testbed_of_the_same_name_is_replaced") {
        return;
    }
    let cfg = TestbedConfig::new("zctb3", 203);
    let first = Testbed::create(&cfg).unwrap();
    std::mem::forget(first); // as if the process had been killed
    let second = Testbed::create(&cfg).unwrap();
    assert!(interface_exists(&second.host_if));
    drop(second);
    assert!(!interface_exists("zctb3h") && !netns_exists("zctb3-ns"));
}

#[test]
fn threaded_napi_runs_one_pinnable_thread_per_queue() {
    if !privileged_or_skip("threaded_napi_runs_one_pinnable_thread_per_queue") {
        return;
    }
    let cfg = TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zctb4", 204)
    };
    let tids = {
        let tb = Testbed::create(&cfg).unwrap();
        let e = tb.napi_threads().unwrap_err();
        assert!(tb.set_napi_fifo_priority(0).is_err());
        assert!(
            e.to_string()
                .contains("found 0 kernel threads named napi/zctb4h-"),
            "{e}"
        );
        let tids = tb.enable_threaded_napi().unwrap();
        assert_eq!(tids.len(), 2);
        let threaded = format!("/sys/class/net/{}/threaded", tb.host_if);
        assert_eq!(std::fs::read_to_string(threaded).unwrap().trim(), "1");
        let cpu = zc_core::sys::online_cpus() - 1;
        assert_eq!(tb.pin_napi_threads(cpu).unwrap(), tids);
        assert_eq!(tb.set_napi_fifo_priority(50).unwrap(), tids);
        for &tid in &tids {
            // Field 41 of /proc/TID/stat is the policy (1: SCHED_FIFO), after
            // the command name in parentheses.
            let stat = std::fs::read_to_string(format!("/proc/{tid}/stat")).unwrap();
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .collect();
            assert_eq!(
                (fields[37], fields[38]),
                ("50", "1"),
                "priority and policy of {tid}"
            );
            let set = sched_getaffinity(Pid::from_raw(tid)).unwrap();
            let allowed: Vec<usize> = (0..CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap())
                .collect();
            assert_eq!(allowed, [cpu], "thread {tid}");
        }
        tids
    };
    // The threads go with the interface.
    for tid in tids {
        assert!(
            sched_getaffinity(Pid::from_raw(tid)).is_err(),
            "thread {tid} outlived its device"
        );
    }
}

#[test]
fn bad_names_are_refused() {
    for bad in ["", "UPPER", "much-too-long-name", "a b"] {
        let e = Testbed::create(&TestbedConfig::new(bad, 1)).unwrap_err();
        assert!(e.to_string().contains("must be 1 to 10 characters"), "{e}");
    }
}

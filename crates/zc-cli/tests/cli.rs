//! The zc command end to end: real processes, the real testbed.

use std::process::{Command, Output};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

fn zc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zc"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_unknown_backend_is_a_usage_error_that_lists_the_backends() {
    let o = zc()
        .args(["recv", "--backend", "rdma", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("invalid value 'rdma' for '--backend <BACKEND>'")
            && t.contains("[possible values: recvfrom, recvmmsg, uring, afxdp, dpdk, dpdk-packet]"),
        "{t}"
    );
    // Senders are named for the call they send with.
    let t = text(&zc().args(["send", "--help"]).output().unwrap());
    assert!(t.contains("sendto") && t.contains("sendmmsg"), "{t}");
    let o = zc()
        .args(["send", "--backend", "recvmsg", "--dst", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("[possible values: sendto, sendmmsg, uring, afxdp, dpdk, dpdk-packet]"),
        "{}",
        text(&o)
    );
}

#[test]
fn help_teaches() {
    for sub in ["send", "recv", "bench", "doctor"] {
        let o = zc().args([sub, "--help"]).output().unwrap();
        assert!(o.status.success());
        let t = text(&o);
        assert!(t.contains("Usage: zc"), "{sub}: {t}");
    }
    let t = text(&zc().args(["bench", "--help"]).output().unwrap());
    assert!(
        t.contains("zero-loss search") && t.contains("Examples:"),
        "{t}"
    );
}

#[test]
fn a_run_that_receives_nothing_fails_unless_allowed() {
    let o = zc()
        .args([
            "recv",
            "--bind",
            "127.0.0.1:0",
            "--duration",
            "0.1",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("no message arrived"), "{}", text(&o));
    let o = zc()
        .args([
            "recv",
            "--bind",
            "127.0.0.1:0",
            "--duration",
            "0.1",
            "--allow-empty",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let o = zc()
        .args(["recv", "--bind", &addr, "--duration", "0.1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a runtime error");
    let t = text(&o);
    assert!(
        t.contains("Address already in use") && t.contains("fix:"),
        "{t}"
    );
}

#[test]
fn an_address_not_on_this_host_is_a_clear_error() {
    let o = zc()
        .args(["recv", "--bind", "198.19.255.254:9000", "--duration", "0.1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a runtime error");
    assert!(
        text(&o).contains("not assigned to any interface"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_testbed_without_privileges_is_a_clear_error() {
    if !privileged_or_skip("the_testbed_without_privileges_is_a_clear_error") {
        return;
    }
    // Run the command as nobody, without capabilities.
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_zc"))
        .args([
            "bench",
            "--quick",
            "--testbed",
            "zcclinp",
            "--subnet",
            "131",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("cannot create the veth testbed") && t.contains("run as root"),
        "{t}"
    );
    assert!(!zc_testbed::netns_exists("zcclinp-ns"));
}

#[test]
fn send_and_recv_report_exact_gaps_and_duplicates_through_the_testbed() {
    if !privileged_or_skip("send_and_recv_report_exact_gaps_and_duplicates_through_the_testbed") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zccli1", 132)).unwrap();
    let bind = format!("{}:9100", tb.host_addr);
    for (backend, sender, pipeline) in [
        ("recvfrom", "sendto", false),
        ("recvmmsg", "sendmmsg", false),
        ("recvmmsg", "sendmmsg", true),
    ] {
        let mut rx = zc();
        rx.args([
            "recv",
            "--backend",
            backend,
            "--bind",
            &bind,
            "--count",
            "10151",
            "--idle-exit",
            "2",
            "--quiet",
        ]);
        if pipeline {
            rx.arg("--pipeline");
        }
        let rx = rx
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        // 10000 numbers; every 100th skipped (99 gaps: the last is never skipped), every 40th
        // twice, every 30th swapped with the next (300 swaps: one gap and one late each).
        let send = Command::new("ip")
            .args(["netns", "exec", &tb.netns])
            .arg(env!("CARGO_BIN_EXE_zc"))
            .args([
                "send",
                "--backend",
                sender,
                "--dst",
                &bind,
                "--bind",
                &format!("{}:0", tb.peer_addr),
            ])
            .args([
                "--count",
                "10000",
                "--rate",
                "50000",
                "--skip-every",
                "100",
                "--duplicate-every",
                "40",
            ])
            .args(["--reorder-every", "30"])
            .output()
            .unwrap();
        assert!(send.status.success(), "{}", text(&send));
        let out = rx.wait_with_output().unwrap();
        let t = text(&out);
        // 10000 - 99 skipped = 9901 distinct; duplicates: multiples of 40 not skipped = 250.
        assert!(
            t.contains("messages     10151 (9901 distinct)"),
            "{backend}: {t}"
        );
        assert!(
            t.contains("sequence     gaps 399 missing 99 duplicates 250 late 300"),
            "{backend}: {t}"
        );
        assert!(
            t.contains("drops        kernel 0 malformed 0 not-ours 0 not-udp 0 not-market-data 0"),
            "{backend}: {t}"
        );
        assert_eq!(out.status.code(), Some(3), "gaps make the exit code 3: {t}");
    }
}

#[test]
fn bench_compares_the_socket_backends_and_writes_json_and_svg() {
    if !privileged_or_skip("bench_compares_the_socket_backends_and_writes_json_and_svg") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("zc-bench-test-{}", std::process::id()));
    let svg = dir.join("chart.svg");
    let o = zc()
        .args([
            "bench",
            "--quick",
            "--backends",
            "recvfrom,recvmmsg",
            "--generator",
            "sendmmsg",
            "--testbed",
            "zccli2",
            "--subnet",
            "133",
        ])
        .args([
            "--count",
            "20000",
            "--fixed-count",
            "5000",
            "--search-count",
            "5000",
        ])
        .args(["--itch", "--itch-messages", "5000", "--itch-rate", "20000"])
        // JSON to stdout: the tables then go to stderr.
        .args(["--json", "-"])
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("max rx Mpps") && t.contains("recvmmsg / recvfrom:"),
        "{t}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON alone on stdout");
    assert_eq!(v["generator"], "sendmmsg");
    let backends = v["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 2);
    for b in backends {
        assert_eq!(b["reps"].as_array().unwrap().len(), 2);
        assert!(b["reps"][0]["max_rate_pps"].as_f64().unwrap() > 0.0);
        assert!(b["mode"].as_str().unwrap().contains("copy"));
        for rep in b["reps"].as_array().unwrap() {
            let itch = &rep["itch"];
            // 5000 messages and the 3 that close the session, all in the book.
            assert_eq!(itch["sent"], 5003, "{itch}");
            assert_eq!(itch["delivered"], 5003, "{itch}");
            assert_eq!(
                (&itch["lost"], &itch["refused"], &itch["decode_errors"]),
                (&0.into(), &0.into(), &0.into()),
                "{itch}"
            );
            let (p50, p99) = (
                itch["p50_ns"].as_u64().unwrap(),
                itch["p99_ns"].as_u64().unwrap(),
            );
            assert!(0 < p50 && p50 <= p99, "{itch}");
        }
    }
    assert!(
        t.contains("ITCH 5.0 over MoldUDP64 to the order book"),
        "{t}"
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("recvmmsg"));
    assert!(
        !zc_testbed::netns_exists("zccli2-ns"),
        "the testbed is removed"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The drain run and the all-CPU figure on every backend of this build, with
/// the default generators: every message generated is received or counted as
/// dropped (a queue that holds fewer than the burst and says nothing fails).
#[test]
fn bench_drain_and_fixed_runs_account_for_every_message_on_every_backend() {
    if !privileged_or_skip("bench_drain_and_fixed_runs_account_for_every_message_on_every_backend")
    {
        return;
    }
    let backends: Vec<&str> = zc::enabled_backends().map(|b| b.name).collect();
    let o = zc()
        .args(["bench", "--quick", "--reps", "1", "--backends"])
        .arg(backends.join(","))
        .args(["--testbed", "zccli3", "--subnet", "150"])
        .args([
            "--count",
            "5000",
            "--fixed-count",
            "5000",
            "--drain-count",
            "3000",
        ])
        .args(["--search-steps", "0", "--latency-at", "10"])
        .args(["--json", "-", "--svg"])
        .arg(std::env::temp_dir().join(format!("zc-bench-drain-{}.svg", std::process::id())))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("drain Mpps") && t.contains("all-CPU ns/msg @fixed"),
        "{t}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON alone on stdout");
    let rows = v["backends"].as_array().unwrap();
    assert_eq!(rows.len(), backends.len());
    for b in rows {
        let rep = &b["reps"][0];
        let name = &b["name"];
        for (sent, received, dropped, want) in [
            ("drain_sent", "drain_received", "drain_kernel_drops", 2000),
            ("fixed_sent", "fixed_received", "kernel_drops", 5000),
        ] {
            let sent = rep[sent].as_u64().unwrap();
            let received = rep[received].as_u64().unwrap();
            let dropped = rep[dropped].as_u64().unwrap_or(0);
            assert_eq!(sent, want, "{name}: {rep}");
            assert_eq!(received + dropped, sent, "{name}: {rep}");
        }
        assert!(rep["drain_pps"].as_f64().unwrap() > 0.0, "{name}: {rep}");
        assert!(
            rep["total_cpu_ns_per_msg"].as_f64().unwrap() > 0.0,
            "{name}: {rep}"
        );
    }
}

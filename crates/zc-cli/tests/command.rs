//! What the command says about itself and how it reports: exit codes, log
//! levels, JSON, the Prometheus endpoint, completions and the man page. Every
//! test runs the real `zc` binary; traffic goes over loopback or the testbed.

use serde_json::Value;
use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

fn zc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zc"));
    c.env_remove("RUST_LOG");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A loopback UDP port nobody holds right now.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A 32-byte market-data message numbered `seq`, stamped now.
fn message(seq: u32, symbol: u32) -> [u8; zc_core::md::MESSAGE_LEN] {
    let m = zc_core::md::MarketData {
        seq,
        symbol,
        price: 1.5,
        volume: 1,
        timestamp_ns: zc_core::sys::monotonic_ns(),
    };
    let mut buf = [0u8; zc_core::md::MESSAGE_LEN];
    m.encode(&mut buf).unwrap();
    buf
}

#[test]
fn exit_codes_tell_usage_from_runtime_errors() {
    // Usage: an option clap refuses, and a semantic check of the command.
    let o = zc().args(["recv", "--batch", "many"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = zc()
        .args(["bench", "--reps", "0", "--backends", "recvfrom"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--reps must be 1 or more"),
        "{}",
        text(&o)
    );
    // Runtime: the JSON file cannot be created (its folder is a file).
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let o = zc()
        .args([
            "recv",
            "--bind",
            "127.0.0.1:0",
            "--duration",
            "0.1",
            "--json",
        ])
        .arg(blocker.join("out.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("zc: error: create"), "{}", text(&o));
    // The help documents all of them.
    let t = text(&zc().arg("--help").output().unwrap());
    for line in [
        "1  runtime error",
        "2  usage error",
        "3  done, but the verdict is bad",
    ] {
        assert!(t.contains(line), "{t}");
    }
}

#[test]
fn a_backend_left_out_of_the_build_names_its_feature() {
    // `zc doctor --json` says which backends this build has (CI builds them all).
    let o = zc().args(["doctor", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for b in v["backends"].as_array().unwrap() {
        let (name, feature) = (b["name"].as_str().unwrap(), b["feature"].as_str().unwrap());
        let o = zc()
            .args([
                "recv",
                "--backend",
                name,
                "--bind",
                "127.0.0.1:0",
                "--duration",
                "0.1",
            ])
            .args(["--interface", "zcnosuch0"])
            .output()
            .unwrap();
        let t = text(&o);
        if b["enabled"] == true {
            assert!(!t.contains("built without"), "{name}: {t}");
        } else {
            assert_eq!(o.status.code(), Some(2), "{name}: {t}");
            assert!(
                t.contains(&format!("built without the `{feature}` feature"))
                    && t.contains(&format!("cargo install zc-cli --features {feature}")),
                "{name}: {t}"
            );
        }
    }
}

#[test]
fn rust_log_and_the_verbosity_flags_pick_what_is_logged() {
    let debug_logged = |args: &[&str], rust_log: Option<&str>| {
        let mut c = zc();
        c.args(args).args(["completions", "bash"]);
        if let Some(v) = rust_log {
            c.env("RUST_LOG", v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!err.contains('\x1b'), "no colours into a pipe: {err:?}");
        err.contains("DEBUG") && err.contains("command line understood as Completions")
    };
    assert!(!debug_logged(&[], None), "warnings only by default");
    assert!(!debug_logged(&["-v"], None), "-v is info");
    assert!(debug_logged(&["-vv"], None), "-vv is debug");
    assert!(debug_logged(&[], Some("debug")), "RUST_LOG=debug");
    assert!(
        debug_logged(&["-q"], Some("zc=debug")),
        "RUST_LOG wins over -q"
    );
    assert!(
        !debug_logged(&[], Some("zc_afxdp=trace")),
        "other targets only"
    );
    let o = zc().args(["-v", "-q", "doctor"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "-v and -q conflict");
    assert!(!text(&zc().arg("--help").output().unwrap()).contains("ZC_LOG"));
}

/// `zc recv --json - -q` on loopback while `zc send` sends 3 s of a feed with
/// known gaps: a status line a second, then a summary with the exact counts,
/// and JSON alone on stdout.
#[test]
fn recv_writes_json_lines_a_second_and_a_summary() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let rx = zc()
        .args([
            "-q",
            "recv",
            "--bind",
            &bind,
            "--json",
            "-",
            "--idle-exit",
            "1",
        ])
        .args(["--duration", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // 24000 numbers at 8000/s: 3 s; every 1000th skipped (23 gaps).
    let send = zc()
        .args([
            "send",
            "--backend",
            "sendto",
            "--dst",
            &bind,
            "--count",
            "24000",
        ])
        .args(["--rate", "8000", "--skip-every", "1000"])
        .output()
        .unwrap();
    assert!(send.status.success(), "{}", text(&send));
    let out = rx.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "gaps: {}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let (summary, status) = lines.split_last().unwrap();
    assert!(status.len() >= 2, "a line a second: {stdout}");
    let mut prev = 0;
    for s in status {
        assert_eq!(s["type"], "status", "{s}");
        let m = s["report"]["messages"].as_u64().unwrap();
        assert!(m >= prev, "counters only grow: {stdout}");
        prev = m;
        assert!(s["elapsed_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["mode"]["backend"], "recvmmsg");
    assert_eq!(summary["report"]["messages"], 24000 - 23);
    assert_eq!(summary["report"]["seq"]["gaps"], 23);
    assert_eq!(summary["report"]["seq"]["missing"], 23);
    assert_eq!(summary["report"]["seq"]["duplicates"], 0);
    assert_eq!(summary["rx"]["datagrams"], 24000 - 23);
    assert_eq!(summary["lost"], true);
    // The text summary went to stderr instead.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sequence     gaps 23 missing 23"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Gbit/s  gaps"),
        "-q: no status lines: {stderr}"
    );
}

/// Issue 14 item 7, through a real socket: one datagram numbered 2³¹−1
/// ahead of the stream is counted as suspect and not applied, and the real
/// stream after it still updates the sequence, the latency and the symbols
/// (it used to read as duplicates from then on).
#[test]
fn one_spoofed_datagram_does_not_freeze_recv() {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let rx = zc()
        .args(["-q", "recv", "--bind", &bind, "--json", "-"])
        .args(["--idle-exit", "1", "--duration", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |seq: u32, symbol: u32| {
        tx.send_to(&message(seq, symbol), &bind).unwrap();
        // Paced so that loopback never drops.
        std::thread::sleep(Duration::from_micros(200));
    };
    for s in 1000..1100 {
        send(s, 1);
    }
    send(1100 + 0x7fff_ffff, 2);
    for s in 1100..1200 {
        send(s, 3);
    }
    let out = rx.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let r = &summary["report"];
    assert_eq!(r["messages"], 201, "{r}");
    assert_eq!(r["seq"]["received"], 200, "{r}");
    assert_eq!(r["seq"]["suspect"], 1, "{r}");
    assert_eq!(r["seq"]["resync_rejected"], 1, "{r}");
    assert_eq!(r["seq"]["resyncs"], 0, "{r}");
    assert_eq!(r["seq"]["duplicates"], 0, "{r}");
    assert_eq!(r["seq"]["gaps"], 0, "{r}");
    assert_eq!(r["latency"]["count"], 200, "{r}");
    assert_eq!(r["symbols"], 2, "symbols 1 and 3, not the spoof's 2: {r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("suspect 1 resyncs 0"), "{stderr}");
}

/// Messages per sending CPU in the `--queues` tests.
const PER_CPU: u32 = 2000;

/// The `--queues` tests pin receive threads and senders to CPUs 0 and 1, and
/// the dpdk ones busy-poll there: run one at a time. Run side by side in
/// CI, the afxdp test's two halves of the feed once drifted more than 1024
/// messages apart (379 of the handler's open gaps evicted, so their late
/// messages read as duplicates), most likely because the dpdk test's
/// busy-polling threads held the same two CPUs.
static PINNED_TO_BOTH_CPUS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn pinned_to_both_cpus() -> std::sync::MutexGuard<'static, ()> {
    PINNED_TO_BOTH_CPUS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// For a `--queues` test on the testbed: `None` (test `name` skipped, with
/// a message) without root or with fewer than 2 CPUs, else the turn to run.
#[cfg(any(feature = "afxdp", feature = "dpdk"))]
fn testbed_queues_turn(name: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    if !privileged_or_skip(name) {
        return None;
    }
    if zc_core::sys::online_cpus() < 2 {
        eprintln!("{name}: needs 2 CPUs: skipped");
        return None;
    }
    Some(pinned_to_both_cpus())
}

/// Sends one feed of `2 * PER_CPU` messages from `tx` (one socket, so one
/// flow) to `dst`: number 0 alone from CPU 0 (so the feed starts at 0 on
/// either queue), then the even numbers from CPU 0 and the odd ones from CPU
/// 1 at once, paced so that nothing is dropped.
fn send_feed_split_by_cpu(tx: &UdpSocket, dst: &str) {
    let send = |cpu: usize, seqs: Vec<u32>| {
        let (tx, dst) = (tx.try_clone().unwrap(), dst.to_owned());
        std::thread::spawn(move || {
            zc_core::sys::pin_current_thread(cpu).unwrap();
            for seq in seqs {
                tx.send_to(&message(seq, seq % 8), &dst).unwrap();
                std::thread::sleep(Duration::from_micros(100));
            }
        })
    };
    send(0, vec![0]).join().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let even = send(0, (1..PER_CPU).map(|i| 2 * i).collect());
    let odd = send(1, (0..PER_CPU).map(|i| 2 * i + 1).collect());
    even.join().unwrap();
    odd.join().unwrap();
}

/// `zc recv --queues 2 --queue-cpus 0,1` with `args`, to stop after the
/// split feed.
fn recv_two_queues(backend: &str, bind: &str, args: &[&str]) -> std::process::Child {
    zc().args([
        "-q",
        "recv",
        "--backend",
        backend,
        "--bind",
        bind,
        "--json",
        "-",
    ])
    .args(["--queues", "2", "--queue-cpus", "0,1", "--duration", "20"])
    .args(["--count", &(2 * PER_CPU).to_string()])
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// Checks a finished two-queue run of the split feed: the whole feed, nothing
/// missing, and each queue exactly its CPU's half. Returns its stderr.
fn check_split_feed(backend: &str, out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{backend}: {}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let seq = &summary["report"]["seq"];
    assert_eq!(seq["received"], 2 * PER_CPU, "{backend}: {seq}");
    assert_eq!(seq["missing"], 0, "{backend}: {seq}");
    assert_eq!(seq["duplicates"], 0, "{backend}: {seq}");
    assert_eq!(
        seq["gaps"], seq["late"],
        "{backend}: every gap was filled: {seq}"
    );
    assert_eq!(
        summary["accounting"]["kernel_drops"], 0,
        "{backend}: the queues' drops add up: {summary}"
    );
    let queues = summary["queues"].as_array().expect("per-queue figures");
    assert_eq!(queues.len(), 2, "{backend}: {summary}");
    for (q, queue) in queues.iter().enumerate() {
        assert_eq!(queue["cpu"], q, "{backend}: {summary}");
        assert_eq!(
            queue["messages"], PER_CPU,
            "{backend}: queue {q} has exactly CPU {q}'s half: {summary}"
        );
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `zc recv --queues 2` on the socket backends: a SO_REUSEPORT pair steered
/// by receiving CPU. Loopback receives a datagram on the CPU that sent it, so
/// each queue gets exactly its CPU's half of the split feed although all of
/// it is one flow, and the one handler sees the whole feed, the interleaving
/// between queues counted as late arrivals.
#[test]
fn recv_queues_split_a_feed_by_cpu_and_track_it_merged() {
    if zc_core::sys::online_cpus() < 2 {
        eprintln!("recv_queues_split_a_feed_by_cpu_and_track_it_merged: needs 2 CPUs: skipped");
        return;
    }
    let _one_at_a_time = pinned_to_both_cpus();
    for backend in ["recvmmsg", "uring", "recvfrom"] {
        let bind = format!("127.0.0.1:{}", free_port());
        let rx = recv_two_queues(backend, &bind, &[]);
        std::thread::sleep(Duration::from_millis(300));
        send_feed_split_by_cpu(&UdpSocket::bind("127.0.0.1:0").unwrap(), &bind);
        let stderr = check_split_feed(backend, rx.wait_with_output().unwrap());
        assert!(
            stderr.contains("2 queues, one receive thread each"),
            "{stderr}"
        );
        assert!(stderr.contains("queue 1"), "{stderr}");
    }
}

/// `zc recv --queues 2` with `backend` on a two-queue veth (testbed `name`,
/// `subnet`), one receive thread per device queue. The peer's transmit queue
/// follows the sending CPU (XPS: CPU 0 → queue 0, CPU 1 → queue 1), and veth
/// receives on the queue a frame was sent on, so each queue gets exactly its
/// CPU's half of the split feed.
#[cfg(any(feature = "afxdp", feature = "dpdk"))]
fn split_feed_over_two_device_queues(backend: &str, name: &str, subnet: u8) {
    let tb = Testbed::create(&TestbedConfig {
        queues: 2,
        ..TestbedConfig::new(name, subnet)
    })
    .unwrap();
    for (q, mask) in [(0, "1"), (1, "2")] {
        let path = format!("/sys/class/net/{}/queues/tx-{q}/xps_cpus", tb.peer_if);
        tb.exec_in_peer(&["sh", "-c", &format!("echo {mask} > {path}")])
            .unwrap();
    }
    let bind = format!("{}:9600", tb.host_addr);
    let rx = recv_two_queues(backend, &bind, &["--interface", &tb.host_if]);
    std::thread::sleep(Duration::from_millis(2000));
    let (peer, dst) = (tb.peer_addr, bind.clone());
    tb.spawn_in_peer(move || {
        let tx = UdpSocket::bind((peer, 0)).map_err(|e| zc::Error::io("bind", e))?;
        send_feed_split_by_cpu(&tx, &dst);
        Ok(())
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    let stderr = check_split_feed(backend, rx.wait_with_output().unwrap());
    eprintln!("{backend}:\n{stderr}");
    // The queues shared one XDP program: gone with the process, and no
    // record of it left for the next zc to clean up.
    let link = Command::new("ip")
        .args(["link", "show", "dev", &tb.host_if])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("xdp"), "{backend} left XDP behind: {link}");
    let suffix = format!("-{}", tb.host_if);
    let records = std::fs::read_dir("/run/zc/dpdk")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(&suffix))
        .count();
    assert_eq!(
        records, 0,
        "{backend} left a host record for {}",
        tb.host_if
    );
}

/// `zc recv --queues 2` on AF_XDP: N sockets on one UMEM.
#[cfg(feature = "afxdp")]
#[test]
fn recv_queues_on_afxdp_take_each_device_queue_on_its_own_thread() {
    let Some(_turn) =
        testbed_queues_turn("recv_queues_on_afxdp_take_each_device_queue_on_its_own_thread")
    else {
        return;
    };
    split_feed_over_two_device_queues("afxdp", "zcq0", 150);
}

/// `zc recv --queues 2` on dpdk: a net_af_xdp port per device queue (DPDK
/// 22.11 refuses two queues in one port on veth, which reports no combined
/// channels), the two sharing the interface's XDP program.
#[cfg(feature = "dpdk")]
#[test]
fn recv_queues_on_dpdk_take_a_port_per_device_queue() {
    let Some(_turn) = testbed_queues_turn("recv_queues_on_dpdk_take_a_port_per_device_queue")
    else {
        return;
    };
    split_feed_over_two_device_queues("dpdk", "zcq1", 151);
}

/// `zc recv --queues 2` on dpdk-packet: one net_af_packet port with two
/// queues, which the kernel fills by flow hash. One feed sent round-robin
/// from 16 source ports (16 flows) spreads over both; every message arrives
/// once, each queue took some, and the queues' counts add up to the feed.
/// Number 0 goes first, alone, so that the handler starts the feed there
/// whichever queue hands it over first (a message older than the first one
/// seen reads as a duplicate).
#[cfg(feature = "dpdk")]
#[test]
fn recv_queues_on_dpdk_packet_spread_flows_by_hash() {
    let name = "recv_queues_on_dpdk_packet_spread_flows_by_hash";
    let Some(_turn) = testbed_queues_turn(name) else {
        return;
    };
    let tb = Testbed::create(&TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zcq2", 152)
    })
    .unwrap();
    let bind = format!("{}:9601", tb.host_addr);
    let total = 2 * PER_CPU;
    let rx = recv_two_queues("dpdk-packet", &bind, &["--interface", &tb.host_if]);
    std::thread::sleep(Duration::from_millis(2000));
    let (peer, dst) = (tb.peer_addr, bind.clone());
    tb.spawn_in_peer(move || {
        let flows = (0..16)
            .map(|_| UdpSocket::bind((peer, 0)).map_err(|e| zc::Error::io("bind", e)))
            .collect::<zc::Result<Vec<_>>>()?;
        for seq in 0..total {
            flows[seq as usize % flows.len()]
                .send_to(&message(seq, seq % 8), &dst)
                .map_err(|e| zc::Error::io("send", e))?;
            let pause = if seq == 0 { 50_000 } else { 100 };
            std::thread::sleep(Duration::from_micros(pause));
        }
        Ok(())
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    let out = rx.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let seq = &summary["report"]["seq"];
    assert_eq!(seq["received"], total, "{seq}");
    assert_eq!(seq["missing"], 0, "{seq}");
    assert_eq!(seq["duplicates"], 0, "{seq}");
    let queues = summary["queues"].as_array().expect("per-queue figures");
    assert_eq!(queues.len(), 2, "{summary}");
    let counts: Vec<u64> = queues
        .iter()
        .map(|q| q["messages"].as_u64().unwrap())
        .collect();
    eprintln!("{name}: per-queue messages {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), u64::from(total), "{summary}");
    assert!(
        counts.iter().all(|&c| c > 0),
        "16 flows hashed over 2 queues all landed on one: {counts:?}"
    );
}

#[test]
fn doctor_writes_json_to_stdout_or_a_file() {
    for args in [&["--json"][..], &["--json", "-"]] {
        let o = zc().arg("doctor").args(args).output().unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).expect("JSON alone on stdout");
        assert!(v["backends"].as_array().is_some_and(|b| !b.is_empty()));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doctor.json");
    let o = zc().args(["doctor", "--json"]).arg(&path).output().unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v["machine"].as_array().is_some_and(|m| !m.is_empty()));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\nbackends\n"),
        "the text still goes to stdout"
    );
}

/// Scrapes `zc recv --metrics` with curl while a feed flows over the testbed:
/// the counters grow between scrapes, and the last scrape matches the summary.
#[test]
fn recv_serves_prometheus_metrics_while_traffic_flows() {
    if !privileged_or_skip("recv_serves_prometheus_metrics_while_traffic_flows") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zccmd1", 134)).unwrap();
    let bind = format!("{}:9200", tb.host_addr);
    let metrics = format!("127.0.0.1:{}", free_port());
    let rx = zc()
        .args(["-q", "recv", "--bind", &bind, "--metrics", &metrics])
        .args(["--idle-exit", "3", "--duration", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // 4 s of traffic from the peer namespace, duplicates included.
    let send = Command::new("ip")
        .args(["netns", "exec", &tb.netns])
        .arg(env!("CARGO_BIN_EXE_zc"))
        .args([
            "send",
            "--dst",
            &bind,
            "--bind",
            &format!("{}:0", tb.peer_addr),
        ])
        .args([
            "--count",
            "40000",
            "--rate",
            "10000",
            "--duplicate-every",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let scrape = || {
        let o = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "5"])
            .arg(format!("http://{metrics}/metrics"))
            .output()
            .expect("curl is installed (build/install-deps.sh)");
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let value = |page: &str, name: &str| -> f64 {
        let line = page
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .unwrap_or_else(|| panic!("{name} in {page}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let first = scrape();
    std::thread::sleep(Duration::from_millis(1500));
    let second = scrape();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "scraped while sending"
    );
    let m1 = value(&first, "zc_recv_messages_total");
    let m2 = value(&second, "zc_recv_messages_total");
    assert!(
        m1 > 0.0 && m2 > m1,
        "growing while traffic flows: {m1} then {m2}"
    );
    assert!(
        first.contains("# TYPE zc_recv_messages_total counter"),
        "{first}"
    );
    assert!(
        first.contains("zc_recv_messages_total{backend=\"recvmmsg\"}"),
        "{first}"
    );
    assert!(first.contains("zc_recv_latency_seconds{backend=\"recvmmsg\",quantile=\"0.99\"}"));
    let o = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{metrics}/other"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
    assert!(send.wait_with_output().unwrap().status.success());
    // The run itself saw every message once and every duplicate.
    let out = rx.wait_with_output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "nothing lost: {t}");
    assert!(t.contains("messages     40400 (40000 distinct)"), "{t}");
    assert!(t.contains("duplicates 400"), "{t}");
}

#[test]
fn bash_completion_completes_the_subcommands_and_backends() {
    let script = zc().args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zc.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // Load it into a real bash and ask the completion function, as Tab does.
    let complete = |words: &str| -> Vec<String> {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
                 _zc zc \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let subs = complete("zc ''");
    for s in [
        "send",
        "recv",
        "bench",
        "doctor",
        "serve",
        "proxy",
        "feed",
        "completions",
        "man",
    ] {
        assert!(subs.iter().any(|w| w == s), "{s} in {subs:?}");
    }
    let backends = complete("zc recv --backend ''");
    assert!(
        backends.iter().any(|w| w == "recvmmsg") && backends.iter().any(|w| w == "dpdk-packet"),
        "{backends:?}"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = zc().args(["completions", shell]).output().unwrap();
        assert!(o.status.success() && o.stdout.len() > 1000, "{shell}");
    }
}

#[test]
fn the_man_page_renders_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("zc.1");
    let o = zc().arg("man").output().unwrap();
    assert!(o.status.success());
    std::fs::write(&page, &o.stdout).unwrap();
    let o = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man is installed (build/install-deps.sh)");
    assert!(o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout);
    for want in [
        "NAME",
        "zc - Zero-copy",
        "SYNOPSIS",
        "zc-recv(1)",
        "Exit codes",
        "RUST_LOG",
    ] {
        assert!(t.contains(want), "{want} in {t}");
    }
    // One page per subcommand.
    let pages = dir.path().join("pages");
    let o = zc().arg("man").arg("--dir").arg(&pages).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for p in ["zc.1", "zc-recv.1", "zc-bench.1", "zc-feed-recv.1"] {
        assert!(pages.join(p).exists(), "{p}");
    }
    let o = Command::new("man")
        .arg("-l")
        .arg(pages.join("zc-recv.1"))
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("--metrics") && t.contains("recvmmsg"), "{t}");
}

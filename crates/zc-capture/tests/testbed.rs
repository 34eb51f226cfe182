//! Captures of real traffic on the veth testbed: zc and tcpdump side by side,
//! and a capture whose writer cannot keep up.

use std::io::{BufRead, BufReader};
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use zc::{open_receiver, open_sender, DynReceiver, RxSpec, TxSpec};
use zc_capture::{Capture, CaptureConfig, CaptureReader};
use zc_core::feed::{generate, FeedPlan, GenConfig};
use zc_core::sys::privileged_or_skip;
use zc_testbed::{Testbed, TestbedConfig};

/// tcpdump writing the first `count` UDP frames matching `filter` that leave
/// the peer end, once it listens; it exits by itself after `count` (`-c`).
fn tcpdump_on_peer(
    tb: &Testbed,
    file: &Path,
    filter: &str,
    count: u64,
) -> (Child, BufReader<ChildStderr>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &tb.netns, "tcpdump", "-i", &tb.peer_if])
        // A 64 MiB buffer: tcpdump must not be the one that drops.
        .args([
            "-U",
            "-B",
            "65536",
            "-s",
            "0",
            "-nn",
            "-c",
            &count.to_string(),
        ])
        .args(["--time-stamp-precision=nano", "-w"])
        .arg(file)
        .arg(filter)
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump is missing: run ./build/install-deps.sh");
    let mut line = String::new();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "tcpdump: {line}");
    // It says so a moment before its ring takes packets.
    std::thread::sleep(Duration::from_millis(500));
    (child, err)
}

/// Waits (10 s at most) for a tcpdump this test started to have written its
/// `-c` count and exit, else stops it (SIGTERM: it flushes what it wrote; a
/// packet still in its ring is lost, so the counts then differ and say so);
/// returns what it said (the packet counts).
fn stop((mut child, mut err): (Child, BufReader<ChildStderr>)) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        child.wait().unwrap();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    rest
}

/// Sends `plan` from the peer namespace at `rate` to `dst`.
fn send_from_peer(
    tb: &Testbed,
    dst: SocketAddrV4,
    plan: FeedPlan,
    rate: f64,
) -> std::thread::JoinHandle<zc_core::Result<u64>> {
    let bind = SocketAddrV4::new(tb.peer_addr, 0);
    tb.spawn_in_peer(move || {
        let mut tx = open_sender(&TxSpec::new("recvmmsg", bind, dst))?;
        let cfg = GenConfig {
            plan,
            rate: Some(rate),
            symbols: 16,
            payload_len: 32,
            batch: 32,
        };
        Ok(generate(tx.as_mut(), &cfg, &AtomicBool::new(false))?.sent)
    })
    .unwrap()
}

/// Receives until `want` datagrams came (or 10 s passed), capturing each.
fn receive(rx: &mut dyn DynReceiver, cap: &mut Capture, want: u64) -> u64 {
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < want && Instant::now() < deadline {
        got += rx
            .recv_each_frame(Some(Duration::from_millis(20)), &mut |d, f| {
                cap.record(d, f)
            })
            .unwrap() as u64;
        cap.end_burst();
    }
    got
}

fn plan() -> FeedPlan {
    FeedPlan {
        skip_every: Some(50),
        duplicate_every: Some(40),
        ..FeedPlan::new(3000)
    }
}

#[test]
fn zc_and_tcpdump_capture_the_same_traffic() {
    if !privileged_or_skip("zc_and_tcpdump_capture_the_same_traffic") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zccap1", 141)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let td_path = dir.path().join("tcpdump.pcap");
    let want = plan().expected().sent;
    let td = tcpdump_on_peer(
        &tb,
        &td_path,
        "udp and (dst port 9300 or dst port 9301)",
        2 * want,
    );

    // AF_XDP: frames as received, byte for byte what the peer sent.
    let xdp_dst = SocketAddrV4::new(tb.host_addr, 9300);
    let mut spec = RxSpec::new("afxdp", xdp_dst);
    spec.interface = Some(tb.host_if.clone());
    let mut rx = open_receiver(&spec).unwrap();
    let mut cfg = CaptureConfig::new(dir.path().join("afxdp.pcapng"));
    cfg.raw_frames = true;
    cfg.source = rx.mode().to_string();
    let mut cap = Capture::start(cfg).unwrap();
    let sender = send_from_peer(&tb, xdp_dst, plan(), 20_000.0);
    let got = receive(rx.as_mut(), &mut cap, want);
    assert_eq!(sender.join().unwrap().unwrap(), want);
    assert_eq!(got, want);
    let xdp = cap.finish().unwrap();
    assert_eq!((xdp.stats.queued, xdp.stats.dropped), (want, 0));
    drop(rx);

    // recvmmsg: the socket sees payloads; zc synthesizes the frames.
    let sock_dst = SocketAddrV4::new(tb.host_addr, 9301);
    let mut rx = open_receiver(&RxSpec::new("recvmmsg", sock_dst)).unwrap();
    let mut cap = Capture::start(CaptureConfig::new(dir.path().join("sock.pcap"))).unwrap();
    let sender = send_from_peer(&tb, sock_dst, plan(), 20_000.0);
    assert_eq!(receive(rx.as_mut(), &mut cap, want), want);
    sender.join().unwrap().unwrap();
    let sock = cap.finish().unwrap();
    assert_eq!(sock.synthesized, want);
    let said = stop(td);

    // tcpdump's capture, split by port.
    let mut theirs = CaptureReader::open(&td_path).unwrap();
    let (mut xdp_frames, mut sock_dgrams) = (Vec::new(), Vec::new());
    while let Some(rec) = theirs.next_record().unwrap() {
        let u = zc_capture::link::decode_udp(rec.link, rec.data).unwrap();
        if u.dst.port() == 9300 {
            xdp_frames.push((rec.ts_ns, rec.data.to_vec()));
        } else {
            sock_dgrams.push((u.src, u.dst, u.payload.to_vec()));
        }
    }
    assert_eq!(xdp_frames.len() as u64, want, "tcpdump: {said}");
    assert_eq!(sock_dgrams.len() as u64, want, "tcpdump: {said}");

    let mut ours = CaptureReader::open(&xdp.files[0].path).unwrap();
    let mut n = 0;
    while let Some(rec) = ours.next_record().unwrap() {
        let (ts, frame) = &xdp_frames[n];
        assert_eq!(rec.data, &frame[..], "frame {n}");
        // Received after tcpdump saw it leave, and soon after.
        let delay = rec.ts_ns as i128 - *ts as i128;
        assert!(
            (-1_000_000..1_000_000_000).contains(&delay),
            "frame {n}: {delay} ns"
        );
        n += 1;
    }
    assert_eq!(n as u64, want);
    assert!(ours.clock_offset_ns().is_some());

    let mut ours = CaptureReader::open(&sock.files[0].path).unwrap();
    let mut n = 0;
    while let Some(u) = ours.next_udp().unwrap() {
        assert_eq!(
            (u.src, u.dst, u.payload.to_vec()),
            sock_dgrams[n],
            "datagram {n}"
        );
        assert!(u.synthesized);
        n += 1;
    }
    assert_eq!(n as u64, want);
}

#[test]
fn a_full_capture_queue_drops_and_counts_without_slowing_the_receiver() {
    if !privileged_or_skip("a_full_capture_queue_drops_and_counts_without_slowing_the_receiver") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zccap2", 142)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The capture goes into a FIFO nobody reads: once the pipe holds 64 KiB,
    // the writer blocks, as on a disk far slower than the traffic.
    let fifo = dir.path().join("stuck.pcap");
    let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(ok.success());
    let reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(0o4000) // O_NONBLOCK: open without waiting for a writer
            .open(&fifo)
            .unwrap()
    };
    let dst = SocketAddrV4::new(tb.host_addr, 9302);
    let mut rx = open_receiver(&RxSpec::new("recvmmsg", dst)).unwrap();
    let mut cfg = CaptureConfig::new(&fifo);
    cfg.queue_bytes = 1; // the minimum: two chunks
    let mut cap = Capture::start(cfg).unwrap();
    let rate = 50_000.0;
    let plan = FeedPlan::new(50_000);
    let sender = send_from_peer(&tb, dst, plan, rate);
    let start = Instant::now();
    let got = receive(rx.as_mut(), &mut cap, 50_000);
    let elapsed = start.elapsed();
    assert_eq!(sender.join().unwrap().unwrap(), 50_000);
    let stats = cap.stats();
    // Every datagram received, at the offered rate; the capture lost records
    // and says how many.
    assert_eq!(got, 50_000);
    assert_eq!(rx.stats().kernel_drops.unwrap_or(0), 0);
    assert!(
        elapsed < Duration::from_secs_f64(50_000.0 / rate * 1.25),
        "{elapsed:?}"
    );
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.queued + stats.dropped, 50_000);
    // Let the writer finish: read the FIFO dry in the background.
    let drain = std::thread::spawn(move || {
        use std::io::Read;
        let mut r = reader;
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        loop {
            match r.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    let report = cap.finish().unwrap();
    let bytes = drain.join().unwrap();
    assert_eq!(report.files[0].records, report.stats.queued);
    assert_eq!(report.stats.written, report.stats.queued);
    // 24-byte header, then 16 + 74 bytes per record.
    assert_eq!(bytes as u64, 24 + report.stats.queued * 90);
}

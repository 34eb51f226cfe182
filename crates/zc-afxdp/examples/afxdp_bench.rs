//! AF_XDP against recvmmsg on the veth testbed, same generator, same run.
//!
//! ```text
//! sudo cargo run --release -p zc-afxdp --example afxdp_bench -- \
//!     --runs 5 --secs 2 --gen afxdp --backends recvmmsg,afxdp,afxdp-busy,afxdp-generic
//! ```
//!
//! A generator thread in the peer namespace (pinned to the last CPU) sends
//! 32-byte market-data messages flat out for `--secs` seconds, from a UDP
//! socket with `sendmmsg` (`--gen udp`) or from an AF_XDP socket on the peer
//! end (`--gen afxdp`, which skips the sender's UDP/IP stack so that the
//! receive side is what limits). The receiver under test runs on CPU 0
//! (`--rx-cpu`), the generator on the last CPU (`--gen-cpu`); the receiver
//! feeds every datagram to the market-data handler. Backends are interleaved
//! run by run; the table gives medians with min–max.
//!
//! Reported per run: the receive rate (datagrams received / generator time),
//! loss, CPU time of the receiving thread per datagram (getrusage), and the
//! softirq time of each CPU (/proc/stat), which is where the kernel's share
//! of the receive path is accounted on veth.
//!
//! Backends `xsk-rs`, `xsk-rs-spin`, `xsk-rs-generic` and `xsk-rs-generic-spin` receive with the
//! `xsk-rs` crate: the peer binary of `benches/xsk-rs-peer` (a separate
//! package: its static libxdp must not link next to `xdp-sys`), run as a child
//! process on the receiver's CPU with the same frames, rings, batch, XDP mode
//! and waiting as the `afxdp` variant of the same suffix, and compared with it
//! in the last column. `build/bench-xsk-rs.sh` builds both and runs them.
//!
//! The testbed is `zcxdpb` on 198.18.229.0/24 unless `--testbed NAME --subnet N`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zc_afxdp::{open_receivers, AfXdpConfig, AfXdpSender, AfXdpSenderConfig, BusyPoll, XdpMode};
use zc_core::backend::{Datagram, Receiver, RxBurst, Sender};
use zc_core::error::{Error, Result};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::md::MarketData;
use zc_core::measure::Spread;
use zc_core::sys::{monotonic_ns, online_cpus, pin_current_thread};
use zc_os::cpu::{thread_cpu_ns, thread_sleeps};
use zc_testbed::{Testbed, TestbedConfig};

const PORT: u16 = 9700;
const BATCH: usize = 64;

#[derive(Debug, Clone)]
struct Args {
    runs: usize,
    secs: f64,
    generator: String,
    backends: Vec<String>,
    rx_cpu: usize,
    gen_cpu: usize,
    frames: u32,
    rx_ring: u32,
    napi_cpu: Option<usize>,
    xsk_rs_peer: PathBuf,
    testbed: String,
    subnet: u8,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        runs: 5,
        secs: 2.0,
        generator: "afxdp".into(),
        backends: vec![
            "recvmmsg".into(),
            "afxdp".into(),
            "afxdp-busy".into(),
            "afxdp-generic".into(),
        ],
        rx_cpu: 0,
        // Decided before any thread is pinned: pinned threads' children inherit
        // the mask, and available_parallelism would then see one CPU.
        gen_cpu: online_cpus().saturating_sub(1),
        frames: 16384,
        rx_ring: 8192,
        napi_cpu: None,
        testbed: "zcxdpb".into(),
        subnet: 229,
        xsk_rs_peer: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../benches/xsk-rs-peer/target/release/xsk-rs-peer"
        )),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--secs" => a.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--gen" => a.generator = value()?,
            "--backends" => a.backends = value()?.split(',').map(str::to_owned).collect(),
            "--frames" => a.frames = value()?.parse().map_err(|e| format!("--frames: {e}"))?,
            "--rx-ring" => a.rx_ring = value()?.parse().map_err(|e| format!("--rx-ring: {e}"))?,
            "--napi-cpu" => {
                a.napi_cpu = Some(value()?.parse().map_err(|e| format!("--napi-cpu: {e}"))?)
            }
            "--rx-cpu" => a.rx_cpu = value()?.parse().map_err(|e| format!("--rx-cpu: {e}"))?,
            "--gen-cpu" => a.gen_cpu = value()?.parse().map_err(|e| format!("--gen-cpu: {e}"))?,
            "--xsk-rs-peer" => a.xsk_rs_peer = PathBuf::from(value()?),
            "--testbed" => a.testbed = value()?,
            "--subnet" => a.subnet = value()?.parse().map_err(|e| format!("--subnet: {e}"))?,
            other => {
                return Err(format!(
                    "unknown argument {other}; see the doc comment at the top of afxdp_bench.rs"
                ))
            }
        }
    }
    if !matches!(a.generator.as_str(), "udp" | "afxdp") {
        return Err(format!("--gen {} must be udp or afxdp", a.generator));
    }
    Ok(a)
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct RunResult {
    sent: u64,
    received: u64,
    gen_secs: f64,
    rx_cpu_ns: u64,
    /// Voluntary context switches of the receiving thread: how often it slept.
    rx_sleeps: u64,
    softirq_ms: Vec<u64>,
    kernel_drops: u64,
    mode: String,
    gen_cpu: u64,
    rx_cpu: i32,
    gen_cpu_ns: u64,
}

/// Softirq time per CPU in ms (USER_HZ ticks × 10 on Linux).
fn softirq_ms() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            l.split_whitespace()
                .nth(7)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 10
        })
        .collect()
}

fn rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

struct GenShared {
    done: AtomicBool,
    sent: AtomicU64,
    nanos: AtomicU64,
    cpu: AtomicU64,
    /// CPU time of the generator thread (user + system, which includes the
    /// softirq work run in its context: the veth receive path).
    cpu_ns: AtomicU64,
}

/// Starts the generator in the peer namespace; it runs `secs` seconds.
fn start_generator(
    tb: &Testbed,
    args: &Args,
    shared: Arc<GenShared>,
) -> Result<std::thread::JoinHandle<Result<()>>> {
    let dst = SocketAddrV4::new(tb.host_addr, PORT);
    let (peer_if, peer_addr, host_mac) = (tb.peer_if.clone(), tb.peer_addr, tb.host_mac);
    let (kind, secs, cpu) = (args.generator.clone(), args.secs, args.gen_cpu);
    tb.spawn_in_peer(move || {
        pin_current_thread(cpu)?;
        let mut template = [0u8; 32];
        MarketData {
            seq: 0,
            symbol: 7,
            price: 101.5,
            volume: 10,
            timestamp_ns: 0,
        }
        .encode(&mut template)
        .map_err(|e| Error::config(e.to_string()))?;
        let run_for = Duration::from_secs_f64(secs);
        let cpu_start = thread_cpu_ns();
        let mut seq = 1u32;
        let start = Instant::now();
        match kind.as_str() {
            "afxdp" => {
                let mut cfg = AfXdpSenderConfig::new(&peer_if, dst);
                cfg.dst_mac = Some(host_mac);
                cfg.src = Some(SocketAddrV4::new(peer_addr, 40000));
                let mut tx = AfXdpSender::open(&cfg)?;
                while start.elapsed() < run_for {
                    let now = monotonic_ns();
                    let n = tx.send_burst(BATCH, &mut |i, buf| {
                        buf[..32].copy_from_slice(&template);
                        buf[..4].copy_from_slice(&(seq + i as u32).to_le_bytes());
                        buf[24..32].copy_from_slice(&now.to_le_bytes());
                        32
                    })?;
                    seq += n as u32;
                }
                tx.flush(Duration::from_secs(1))?;
            }
            _ => {
                let s = UdpSocket::bind((peer_addr, 40000))
                    .map_err(|e| Error::io("bind generator", e))?;
                s.connect(dst)
                    .map_err(|e| Error::io("connect generator", e))?;
                let mut bufs = [[0u8; 32]; BATCH];
                let mut iov: Vec<libc::iovec> = Vec::with_capacity(BATCH);
                let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(BATCH);
                while start.elapsed() < run_for {
                    let now = monotonic_ns();
                    iov.clear();
                    msgs.clear();
                    for (i, b) in bufs.iter_mut().enumerate() {
                        b.copy_from_slice(&template);
                        b[..4].copy_from_slice(&(seq + i as u32).to_le_bytes());
                        b[24..32].copy_from_slice(&now.to_le_bytes());
                    }
                    for b in bufs.iter_mut() {
                        iov.push(libc::iovec {
                            iov_base: b.as_mut_ptr().cast(),
                            iov_len: 32,
                        });
                    }
                    for v in iov.iter_mut() {
                        // SAFETY: msghdr is plain data; all-zero is valid.
                        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                        h.msg_iov = v;
                        h.msg_iovlen = 1;
                        msgs.push(libc::mmsghdr {
                            msg_hdr: h,
                            msg_len: 0,
                        });
                    }
                    // SAFETY: msgs and the buffers they point to live across the call.
                    let n = unsafe {
                        libc::sendmmsg(s.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0)
                    };
                    if n > 0 {
                        seq += n as u32;
                    }
                }
            }
        }
        // SAFETY: no arguments; returns the CPU this thread runs on.
        shared
            .cpu
            .store(unsafe { libc::sched_getcpu() } as u64, Ordering::Relaxed);
        shared
            .nanos
            .store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        shared
            .cpu_ns
            .store(thread_cpu_ns() - cpu_start, Ordering::Relaxed);
        shared.sent.store(u64::from(seq - 1), Ordering::Relaxed);
        shared.done.store(true, Ordering::Release);
        Ok(())
    })
}

/// Receives until the generator is done and nothing arrived for 100 ms.
fn drain<F: FnMut(&mut MarketDataHandler) -> Result<usize>>(
    shared: &GenShared,
    h: &mut MarketDataHandler,
    mut step: F,
) -> Result<()> {
    let mut idle_since: Option<Instant> = None;
    loop {
        let n = step(h)?;
        if shared.done.load(Ordering::Acquire) {
            if n > 0 {
                idle_since = None;
            } else if idle_since.get_or_insert_with(Instant::now).elapsed()
                > Duration::from_millis(100)
            {
                return Ok(());
            }
        }
    }
}

fn run_recvmmsg(tb: &Testbed, args: &Args, spin: bool) -> Result<RunResult> {
    let sock = UdpSocket::bind((tb.host_addr, PORT)).map_err(|e| Error::io("bind", e))?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| Error::io("SO_RCVTIMEO", e))?;
    let fd = sock.as_raw_fd();
    let size: libc::c_int = 8 << 20;
    // SAFETY: an int option of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        )
    };
    let dst = SocketAddr::V4(SocketAddrV4::new(tb.host_addr, PORT));
    let mut bufs = vec![[0u8; 2048]; BATCH];
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(names.iter_mut())
        .map(|(v, n)| {
            // SAFETY: msghdr is plain data; all-zero is valid.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_iov = v;
            h.msg_iovlen = 1;
            h.msg_name = (n as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect();
    // With --napi-cpu the socket path gets the same NAPI placement: GRO on
    // makes veth receive through NAPI (as XDP does), then the NAPI thread is pinned.
    let gro = if args.napi_cpu.is_some() { "on" } else { "off" };
    Command::new("ethtool")
        .args(["-K", &tb.host_if, "gro", gro])
        .output()
        .map_err(|e| Error::io("ethtool -K gro", e))?;
    let napi = place_napi(&tb.host_if, args.napi_cpu)?;
    let drops0 = rcvbuf_errors();
    let shared = Arc::new(GenShared {
        done: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        nanos: AtomicU64::new(0),
        cpu: AtomicU64::new(0),
        cpu_ns: AtomicU64::new(0),
    });
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(PORT),
        ..HandlerConfig::default()
    });
    let (cpu0, sleeps0, soft0) = (thread_cpu_ns(), thread_sleeps(), softirq_ms());
    let gen = start_generator(tb, args, Arc::clone(&shared))?;
    // Spinning: non-blocking calls in a loop, so the socket never has a sleeper to wake.
    let flags = if spin {
        libc::MSG_DONTWAIT
    } else {
        libc::MSG_WAITFORONE
    };
    drain(&shared, &mut h, |h| {
        for m in msgs.iter_mut() {
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        }
        // SAFETY: msgs point to live buffers and names of the sizes given.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return Ok(0);
        }
        let now = monotonic_ns();
        for i in 0..n as usize {
            let sin = &names[i];
            let src = SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(sin.sin_addr.s_addr).into(),
                u16::from_be(sin.sin_port),
            ));
            let d = Datagram {
                payload: &bufs[i][..msgs[i].msg_len as usize],
                src,
                dst,
                rx_timestamp: None,
            };
            h.on_datagram(&d, now);
        }
        Ok(n as usize)
    })?;
    let (cpu1, sleeps1, soft1) = (thread_cpu_ns(), thread_sleeps(), softirq_ms());
    gen.join()
        .map_err(|_| Error::config("generator panicked"))??;
    Ok(RunResult {
        sent: shared.sent.load(Ordering::Relaxed),
        received: h.report().messages,
        gen_secs: shared.nanos.load(Ordering::Relaxed) as f64 / 1e9,
        rx_cpu_ns: cpu1 - cpu0,
        rx_sleeps: sleeps1 - sleeps0,
        softirq_ms: soft1.iter().zip(&soft0).map(|(a, b)| a - b).collect(),
        kernel_drops: rcvbuf_errors() - drops0,
        mode: format!(
            "recvmmsg (copy, batch 64, 8 MiB SO_RCVBUF, gro {gro}, {}); {napi}",
            if spin { "spinning" } else { "blocking" }
        ),
        gen_cpu: shared.cpu.load(Ordering::Relaxed),
        gen_cpu_ns: shared.cpu_ns.load(Ordering::Relaxed),
        // SAFETY: no arguments.
        rx_cpu: unsafe { libc::sched_getcpu() },
    })
}

fn run_afxdp(tb: &Testbed, args: &Args, variant: &str) -> Result<RunResult> {
    let mut cfg = AfXdpConfig::new(&tb.host_if, PORT);
    cfg.batch = BATCH;
    match variant {
        "afxdp" => {}
        "afxdp-busy" => {
            cfg.busy_poll = Some(BusyPoll {
                usecs: 50,
                budget: 64,
            })
        }
        "afxdp-generic" => cfg.xdp_mode = XdpMode::Generic,
        "afxdp-nowakeup" => cfg.need_wakeup = false,
        "afxdp-spin" => cfg.spin = true,
        "afxdp-generic-spin" => {
            cfg.xdp_mode = XdpMode::Generic;
            cfg.spin = true;
        }
        other => return Err(Error::config(format!("unknown backend {other}"))),
    }
    cfg.frames_per_queue = args.frames;
    cfg.rx_ring = args.rx_ring;
    // Busy polling only takes the NAPI poll away from the softirq when the
    // device defers its "interrupts" (for veth: the napi_schedule of the
    // sending side): without these two the softirq keeps polling on the
    // generator's CPU and the busy-poller mostly finds the NAPI taken.
    let busy = cfg.busy_poll.is_some();
    set_napi_defer(&tb.host_if, if busy { (2, 200_000) } else { (0, 0) })?;
    let mut rxs = open_receivers(&cfg)?;
    let napi = place_napi(&tb.host_if, args.napi_cpu)?;
    let rx = &mut rxs[0];
    let shared = Arc::new(GenShared {
        done: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        nanos: AtomicU64::new(0),
        cpu: AtomicU64::new(0),
        cpu_ns: AtomicU64::new(0),
    });
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(PORT),
        ..HandlerConfig::default()
    });
    let (cpu0, sleeps0, soft0) = (thread_cpu_ns(), thread_sleeps(), softirq_ms());
    let gen = start_generator(tb, args, Arc::clone(&shared))?;
    drain(&shared, &mut h, |h| {
        let burst = rx.recv_burst(Some(Duration::from_millis(20)))?;
        let now = monotonic_ns();
        for d in burst.iter() {
            h.on_datagram(&d, now);
        }
        Ok(burst.len())
    })?;
    let (cpu1, sleeps1, soft1) = (thread_cpu_ns(), thread_sleeps(), softirq_ms());
    gen.join()
        .map_err(|_| Error::config("generator panicked"))??;
    let stats = rx.stats();
    Ok(RunResult {
        sent: shared.sent.load(Ordering::Relaxed),
        received: h.report().messages,
        gen_secs: shared.nanos.load(Ordering::Relaxed) as f64 / 1e9,
        rx_cpu_ns: cpu1 - cpu0,
        rx_sleeps: sleeps1 - sleeps0,
        softirq_ms: soft1.iter().zip(&soft0).map(|(a, b)| a - b).collect(),
        kernel_drops: stats.kernel_drops.unwrap_or(0),
        mode: format!("{}; {napi}", rx.mode()),
        gen_cpu: shared.cpu.load(Ordering::Relaxed),
        gen_cpu_ns: shared.cpu_ns.load(Ordering::Relaxed),
        // SAFETY: no arguments.
        rx_cpu: unsafe { libc::sched_getcpu() },
    })
}

/// The XDP attachment of `ifname` as `ip link show` prints it (`xdp`,
/// `xdpgeneric`, … and the program id), or `None` when nothing is attached.
fn xdp_attachment(ifname: &str) -> Result<Option<String>> {
    let out = Command::new("ip")
        .args(["link", "show", "dev", ifname])
        .output()
        .map_err(|e| Error::io("ip link show", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    Ok(words.by_ref().find(|w| w.starts_with("prog/xdp")).map(|w| {
        let id = words
            .find(|w| w.starts_with("id"))
            .and_then(|_| words.next())
            .unwrap_or("?");
        format!("{w} id {id}")
    }))
}

/// A number field of the peer's one-line JSON (flat, no strings with commas).
fn json_u64(line: &str, key: &str) -> Result<u64> {
    let pat = format!("\"{key}\":");
    line.split(&pat)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| Error::config(format!("xsk-rs peer: no {key} in {line:?}")))
}

/// One run of the `xsk-rs` peer binary on the host end, same settings as the
/// `afxdp` variant of the same suffix; it stops when its stdin is closed.
fn run_xsk_rs(tb: &Testbed, args: &Args, variant: &str) -> Result<RunResult> {
    let mut cmd = Command::new(&args.xsk_rs_peer);
    cmd.args([
        "--interface",
        &tb.host_if,
        "--queue",
        "0",
        "--port",
        &PORT.to_string(),
    ])
    .args([
        "--frames",
        &args.frames.to_string(),
        "--rx-ring",
        &args.rx_ring.to_string(),
    ])
    .args([
        "--batch",
        &BATCH.to_string(),
        "--cpu",
        &args.rx_cpu.to_string(),
    ])
    .args(["--secs", &(args.secs + 30.0).to_string()]);
    match variant {
        "xsk-rs" => {}
        "xsk-rs-spin" => {
            cmd.arg("--spin");
        }
        "xsk-rs-generic" => {
            cmd.args(["--xdp", "generic"]);
        }
        "xsk-rs-generic-spin" => {
            cmd.args(["--spin", "--xdp", "generic"]);
        }
        other => return Err(Error::config(format!("unknown backend {other}"))),
    }
    set_napi_defer(&tb.host_if, (0, 0))?;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().map_err(|e| {
        Error::io(format!("start {}", args.xsk_rs_peer.display()), e)
            .with_fix("build it first: `cargo build --release --manifest-path benches/xsk-rs-peer/Cargo.toml` (build/bench-xsk-rs.sh does)")
    })?;
    let mut out = BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| Error::config("xsk-rs peer: no stdout"))?,
    );
    let mut ready = String::new();
    out.read_line(&mut ready)
        .map_err(|e| Error::io("read the xsk-rs peer", e))?;
    if !ready.contains("\"ready\":true") {
        let status = child
            .wait()
            .map_err(|e| Error::io("wait for the xsk-rs peer", e))?;
        return Err(Error::config(format!(
            "xsk-rs peer did not start ({status}): {ready:?}"
        )));
    }
    let attached = xdp_attachment(&tb.host_if)?.unwrap_or_else(|| "no XDP program?".into());
    let peer_mode = ready
        .split("\"mode\":\"")
        .nth(1)
        .and_then(|m| m.split('"').next())
        .unwrap_or("?")
        .to_owned();
    let napi = place_napi(&tb.host_if, args.napi_cpu)?;
    let shared = Arc::new(GenShared {
        done: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        nanos: AtomicU64::new(0),
        cpu: AtomicU64::new(0),
        cpu_ns: AtomicU64::new(0),
    });
    let soft0 = softirq_ms();
    let gen = start_generator(tb, args, Arc::clone(&shared))?;
    let gen_result = gen.join().map_err(|_| Error::config("generator panicked"));
    // Closing its stdin ends the peer's run (after 100 ms without a datagram).
    drop(child.stdin.take());
    let mut last = String::new();
    out.read_line(&mut last)
        .map_err(|e| Error::io("read the xsk-rs peer", e))?;
    let status = child
        .wait()
        .map_err(|e| Error::io("wait for the xsk-rs peer", e))?;
    let soft1 = softirq_ms();
    // libxdp attached its program through netlink: it outlives a peer that
    // died before deleting its socket, and would block the next run.
    if let Some(left) = xdp_attachment(&tb.host_if)? {
        Command::new("ip")
            .args(["link", "set", "dev", &tb.host_if, "xdp", "off"])
            .output()
            .map_err(|e| Error::io("ip link set xdp off", e))?;
        return Err(Error::config(format!(
            "the xsk-rs peer ({status}) left {left} attached to {} (removed)",
            tb.host_if
        )));
    }
    gen_result??;
    if !status.success() {
        return Err(Error::config(format!(
            "xsk-rs peer failed ({status}): {last:?}"
        )));
    }
    Ok(RunResult {
        sent: shared.sent.load(Ordering::Relaxed),
        received: json_u64(&last, "received")?,
        gen_secs: shared.nanos.load(Ordering::Relaxed) as f64 / 1e9,
        rx_cpu_ns: json_u64(&last, "rx_cpu_ns")?,
        rx_sleeps: json_u64(&last, "rx_sleeps")?,
        softirq_ms: soft1.iter().zip(&soft0).map(|(a, b)| a - b).collect(),
        kernel_drops: json_u64(&last, "rx_dropped")? + json_u64(&last, "rx_ring_full")?,
        mode: format!(
            "{peer_mode}; ip link: {attached}; {} non-IPv4/UDP frames; {napi}",
            json_u64(&last, "other")?
        ),
        gen_cpu: shared.cpu.load(Ordering::Relaxed),
        gen_cpu_ns: shared.cpu_ns.load(Ordering::Relaxed),
        rx_cpu: args.rx_cpu as i32,
    })
}

/// With `cpu`, switches `ifname` to threaded NAPI and pins its NAPI threads
/// to `cpu`; without, switches threaded NAPI off (softirq on the CPU that
/// scheduled it: the generator's, on veth). Returns a description.
fn place_napi(ifname: &str, cpu: Option<usize>) -> Result<String> {
    let path = format!("/sys/class/net/{ifname}/threaded");
    let Some(cpu) = cpu else {
        // A device without NAPI (veth with neither XDP nor GRO) refuses the write: nothing to undo.
        let _ = std::fs::write(&path, "0");
        return Ok("napi in softirq".into());
    };
    std::fs::write(&path, "1").map_err(|e| Error::io(format!("write {path}"), e))?;
    let prefix = format!("napi/{ifname}-");
    let mut pinned = 0;
    for entry in std::fs::read_dir("/proc")
        .map_err(|e| Error::io("read /proc", e))?
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with(&prefix) {
            // SAFETY: cpu_set_t is a plain bit mask; all-zero is valid.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: set is a valid cpu_set_t; pid is a kernel thread that may be gone (then ESRCH).
            unsafe {
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
            }
            pinned += 1;
        }
    }
    Ok(format!("threaded napi ({pinned} thread(s)) on CPU {cpu}"))
}

/// Sets `napi_defer_hard_irqs` and `gro_flush_timeout` (ns) of `ifname`.
fn set_napi_defer(ifname: &str, (defer, timeout_ns): (u32, u64)) -> Result<()> {
    for (knob, value) in [
        ("napi_defer_hard_irqs", u64::from(defer)),
        ("gro_flush_timeout", timeout_ns),
    ] {
        let path = format!("/sys/class/net/{ifname}/{knob}");
        std::fs::write(&path, value.to_string())
            .map_err(|e| Error::io(format!("write {path}"), e))?;
    }
    Ok(())
}

fn median(v: &mut [f64]) -> (f64, f64, f64) {
    Spread::of(v.iter().copied()).parts()
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("afxdp_bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("afxdp_bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let tb = Testbed::create(&TestbedConfig::new(&args.testbed, args.subnet))?;
    pin_current_thread(args.rx_cpu)?;
    let mut results: Vec<(String, Vec<RunResult>)> = args
        .backends
        .iter()
        .map(|b| (b.clone(), Vec::new()))
        .collect();
    for run in 0..args.runs {
        for (backend, rs) in results.iter_mut() {
            let r = match backend.as_str() {
                "recvmmsg" => run_recvmmsg(&tb, args, false)?,
                "recvmmsg-spin" => run_recvmmsg(&tb, args, true)?,
                b if b.starts_with("xsk-rs") => run_xsk_rs(&tb, args, b)?,
                _ => run_afxdp(&tb, args, backend)?,
            };
            println!(
                "run {run} {backend:14} sent {:>9} recv {:>9} ({:.3} Mpps) loss {:>5.2}% drops {:>8} rx-cpu {:>6.0} gen-cpu {:>6.0} ns/dgram rx sleeps {:>5.1}/1k dgrams softirq ms/cpu {:?}",
                r.sent,
                r.received,
                r.received as f64 / r.gen_secs / 1e6,
                100.0 * (1.0 - r.received as f64 / r.sent.max(1) as f64),
                r.kernel_drops,
                r.rx_cpu_ns as f64 / r.received.max(1) as f64,
                r.gen_cpu_ns as f64 / r.sent.max(1) as f64,
                1000.0 * r.rx_sleeps as f64 / r.received.max(1) as f64,
                r.softirq_ms,
            );
            if run == 0 {
                println!(
                    "      mode: {}; generator on CPU {}, receiver on CPU {}",
                    r.mode, r.gen_cpu, r.rx_cpu
                );
            }
            rs.push(r);
        }
    }
    println!("\n| backend | receive rate Mpps, median (min–max) | sent Mpps | loss % | rx thread CPU ns/datagram | rx thread sleeps per 1000 datagrams | generator thread CPU ns/datagram (tx + veth rx softirq) | ratio to recvmmsg | ratio to xsk-rs, same mode |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let rate_of = |name: &str| {
        results.iter().find(|(b, _)| b == name).map(|(_, rs)| {
            median(
                &mut rs
                    .iter()
                    .map(|r| r.received as f64 / r.gen_secs / 1e6)
                    .collect::<Vec<_>>(),
            )
            .0
        })
    };
    let base = rate_of("recvmmsg");
    for (backend, rs) in &results {
        let (rate, lo, hi) = median(
            &mut rs
                .iter()
                .map(|r| r.received as f64 / r.gen_secs / 1e6)
                .collect::<Vec<_>>(),
        );
        let (sent, _, _) = median(
            &mut rs
                .iter()
                .map(|r| r.sent as f64 / r.gen_secs / 1e6)
                .collect::<Vec<_>>(),
        );
        let (loss, _, _) = median(
            &mut rs
                .iter()
                .map(|r| 100.0 * (1.0 - r.received as f64 / r.sent.max(1) as f64))
                .collect::<Vec<_>>(),
        );
        let (cpu, _, _) = median(
            &mut rs
                .iter()
                .map(|r| r.rx_cpu_ns as f64 / r.received.max(1) as f64)
                .collect::<Vec<_>>(),
        );
        let (sleeps, _, _) = median(
            &mut rs
                .iter()
                .map(|r| 1000.0 * r.rx_sleeps as f64 / r.received.max(1) as f64)
                .collect::<Vec<_>>(),
        );
        let (gcpu, _, _) = median(
            &mut rs
                .iter()
                .map(|r| r.gen_cpu_ns as f64 / r.sent.max(1) as f64)
                .collect::<Vec<_>>(),
        );
        let ratio = base.map_or("-".to_owned(), |b| format!("{:.2}×", rate / b));
        // afxdp-spin is compared with xsk-rs-spin, afxdp with xsk-rs, …
        let peer = backend
            .strip_prefix("afxdp")
            .and_then(|mode| rate_of(&format!("xsk-rs{mode}")));
        let vs_peer = peer.map_or("-".to_owned(), |p| format!("{:.2}×", rate / p));
        println!("| {backend} | {rate:.3} ({lo:.3}–{hi:.3}) | {sent:.3} | {loss:.2} | {cpu:.0} | {sleeps:.1} | {gcpu:.0} | {ratio} | {vs_peer} |");
    }
    Ok(())
}

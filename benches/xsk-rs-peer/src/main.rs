//! The `xsk-rs` peer of `zc-afxdp`'s benchmark: receives the testbed's feed
//! with the [`xsk_rs`] crate (libxdp 1.6 and libbpf 1.5 compiled from the
//! crates' bundled sources) in the mode `zc-afxdp` uses, and feeds every
//! datagram to the same `zc_core` market-data handler.
//!
//! A separate package with its own `[workspace]`: xsk-rs links its own static
//! libxdp and libbpf, which must not meet `xdp-sys`'s system libxdp/libbpf in
//! one binary. `crates/zc-afxdp/examples/afxdp_bench.rs` (backend `xsk-rs`,
//! `xsk-rs-spin`, …) runs it as a child process on the receiver's CPU;
//! `build/bench-xsk-rs.sh` does everything in one command.
//!
//! ```text
//! xsk-rs-peer --interface IF --port P [--queue 0] [--frames 16384] [--rx-ring 8192]
//!             [--batch 64] [--cpu 0] [--spin] [--xdp native|generic] [--secs 30]
//! ```
//!
//! Protocol: after the socket is bound it prints one JSON line
//! `{"ready":true,"mode":"…"}`; it then receives until its standard input
//! reaches end of file (or `--secs` have passed), then until nothing has
//! arrived for 100 ms, and prints one JSON line with the counts, the rate
//! between the first and the last datagram, the receive thread's CPU time
//! and voluntary context switches (`getrusage`), and the socket's
//! `XDP_STATISTICS`.
//!
//! The XDP program is libxdp's default one (`xsk_def_xdp_prog`), attached by
//! libxdp: it redirects *every* packet of the queue to the socket, so frames
//! that are not IPv4/UDP are counted as `other`, datagrams to another port
//! are counted by the handler as not ours (as with `zc-afxdp`'s receiver),
//! and both go back to the fill ring. libxdp detaches it when the socket
//! is deleted; on this kernel it is attached through netlink, so a killed
//! peer leaves it behind (the driver script removes it).

use std::io::Read;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::{FrameDesc, Socket, Umem};
use zc_core::backend::Datagram;
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::sys::monotonic_ns;
use zc_core::wire::parse_udp_frame;

/// Frame size of `zc-afxdp`'s UMEM (`AfXdpConfig` default).
const FRAME_SIZE: u32 = 2048;
/// Completion and tx rings: this peer never transmits.
const TX_RING: u32 = 64;

struct Args {
    interface: String,
    queue: u32,
    port: u16,
    frames: u32,
    rx_ring: u32,
    batch: usize,
    cpu: usize,
    spin: bool,
    generic: bool,
    secs: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        interface: String::new(),
        queue: 0,
        port: 0,
        frames: 16384,
        rx_ring: 8192,
        batch: 64,
        cpu: 0,
        spin: false,
        generic: false,
        secs: 30.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--spin" {
            a.spin = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--interface" => a.interface = value,
            "--queue" => a.queue = value.parse().map_err(|e| bad(&e))?,
            "--port" => a.port = value.parse().map_err(|e| bad(&e))?,
            "--frames" => a.frames = value.parse().map_err(|e| bad(&e))?,
            "--rx-ring" => a.rx_ring = value.parse().map_err(|e| bad(&e))?,
            "--batch" => a.batch = value.parse().map_err(|e| bad(&e))?,
            "--cpu" => a.cpu = value.parse().map_err(|e| bad(&e))?,
            "--secs" => a.secs = value.parse().map_err(|e| bad(&e))?,
            "--xdp" => {
                a.generic = match value.as_str() {
                    "native" => false,
                    "generic" => true,
                    _ => return Err(bad(&"must be native or generic")),
                }
            }
            _ => return Err(format!(
                "unknown argument {flag}; see the doc comment of benches/xsk-rs-peer/src/main.rs"
            )),
        }
    }
    if a.interface.is_empty() || a.port == 0 {
        return Err("--interface and --port are required".into());
    }
    if a.batch == 0 || a.batch > a.rx_ring as usize {
        return Err(format!("--batch {} must be 1..=--rx-ring", a.batch));
    }
    Ok(a)
}

/// CPU time (ns) and voluntary context switches (times it slept) of this thread.
fn thread_usage() -> (u64, u64) {
    // SAFETY: rusage is plain integers; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer for the call.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_nvcsw as u64)
}

/// The OS error under a libxdp failure, if any.
fn errno(e: &dyn std::error::Error) -> Option<i32> {
    e.source()?.downcast_ref::<std::io::Error>()?.raw_os_error()
}

fn pin_to(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is a plain bit mask; all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid cpu_set_t of the size passed; pid 0 is this thread.
    let rc = unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("xsk-rs-peer: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("xsk-rs-peer: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    pin_to(args.cpu)?;
    let size = |n: u32, what: &str| QueueSize::new(n).map_err(|e| format!("{what} {n}: {e}"));
    let umem_cfg = UmemConfig::builder()
        .frame_size(FrameSize::new(FRAME_SIZE).map_err(|e| format!("frame size: {e}"))?)
        // As zc-afxdp: the fill ring holds every frame and starts full.
        .fill_queue_size(size(args.frames, "--frames")?)
        .comp_queue_size(size(TX_RING, "completion ring")?)
        .build()
        .map_err(|e| format!("UMEM config: {e}"))?;
    let frames = NonZeroU32::new(args.frames).ok_or("--frames must be > 0")?;
    let (umem, descs) = Umem::new(umem_cfg, frames, false).map_err(|e| format!("UMEM: {e}"))?;
    let xdp_flags = if args.generic {
        XdpFlags::XDP_FLAGS_SKB_MODE
    } else {
        XdpFlags::XDP_FLAGS_DRV_MODE
    };
    let sock_cfg = SocketConfig::builder()
        .rx_queue_size(size(args.rx_ring, "--rx-ring")?)
        .tx_queue_size(size(TX_RING, "tx ring")?)
        .xdp_flags(xdp_flags)
        // zc-afxdp on veth: zero-copy is refused (EOPNOTSUPP), so copy mode; need_wakeup on.
        .bind_flags(BindFlags::XDP_COPY | BindFlags::XDP_USE_NEED_WAKEUP)
        .build();
    let ifname: Interface = args
        .interface
        .parse()
        .map_err(|e| format!("--interface: {e}"))?;
    // The kernel frees an (interface, queue) slot in a work item after the
    // previous socket's close returns, so a socket bound right after another
    // run's briefly gets EBUSY: retried for up to a second, as zc-afxdp does.
    let tried = Instant::now();
    let (_tx, mut rx, fq_cq) = loop {
        // SAFETY: the UMEM is not shared with another socket, so the
        // INHIBIT_PROG_LOAD requirement of a shared (interface, queue) does not apply.
        match unsafe { Socket::new(sock_cfg, &umem, &ifname, args.queue) } {
            Ok(queues) => break queues,
            Err(e)
                if tried.elapsed() < Duration::from_secs(1) && errno(&e) == Some(libc::EBUSY) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                let cause =
                    std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
                return Err(format!(
                    "AF_XDP socket on {} queue {}: {e}{cause}",
                    args.interface, args.queue
                ));
            }
        }
    };
    let (mut fq, _cq) = fq_cq.ok_or("libxdp returned no fill/completion ring for a fresh UMEM")?;
    // SAFETY: every descriptor comes from this UMEM's Umem::new and none is in a ring yet.
    let filled = unsafe { fq.produce(&descs) };
    if filled != descs.len() {
        return Err(format!("fill ring took {filled} of {} frames", descs.len()));
    }
    let mode = format!(
        "xsk-rs 0.11 (libxdp 1.6 default program, copy, batch {}, {}, xdp {}, need_wakeup on, umem {} frames x {FRAME_SIZE} B, rx ring {}, fill ring {}, queue {})",
        args.batch,
        if args.spin { "spins on the rx ring (no poll)" } else { "poll when the rx ring is empty" },
        if args.generic { "generic" } else { "native" },
        args.frames,
        args.rx_ring,
        args.frames,
        args.queue,
    );
    println!("{{\"ready\":true,\"mode\":\"{mode}\"}}");

    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = Arc::clone(&stop);
    std::thread::spawn(move || {
        // End of standard input (the driver closes it) ends the run.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop_w.store(true, Ordering::Release);
    });

    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(args.port),
        ..HandlerConfig::default()
    });
    let mut burst = vec![FrameDesc::default(); args.batch];
    let mut pending: Vec<FrameDesc> = Vec::with_capacity(args.frames as usize);
    let (mut other, mut first_ns, mut last_ns) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let max = Duration::from_secs_f64(args.secs);
    let mut idle_since: Option<Instant> = None;
    let (cpu0, sleeps0) = thread_usage();
    loop {
        if !pending.is_empty() {
            // SAFETY: the frames were consumed from this UMEM's rx ring and are no longer read.
            let back = unsafe { fq.produce(&pending) };
            pending.drain(..back);
            if fq.needs_wakeup() {
                fq.wakeup(rx.fd_mut(), 0)
                    .map_err(|e| format!("fill ring wakeup: {e}"))?;
            }
        }
        // SAFETY: the descriptors are filled in from this socket's rx ring, whose frames belong to `umem`.
        let mut n = unsafe { rx.consume(&mut burst) };
        if n == 0 && !args.spin {
            // As zc-afxdp: a syscall only when the ring is empty, 20 ms slices.
            let ready = rx.poll(20).map_err(|e| format!("poll: {e}"))?;
            if ready {
                // SAFETY: as above.
                n = unsafe { rx.consume(&mut burst) };
            }
        }
        if n > 0 {
            let now = monotonic_ns();
            for d in &burst[..n] {
                // SAFETY: `d` was just consumed from the rx ring of a socket on
                // `umem`; the kernel does not write the frame until it is back
                // in the fill ring (through `pending`, after this loop).
                let frame = unsafe { umem.data(d) };
                match parse_udp_frame(frame.contents()) {
                    Ok(f) => {
                        let dg = Datagram {
                            payload: f.payload(),
                            src: SocketAddr::V4(f.src()),
                            dst: SocketAddr::V4(f.dst()),
                            rx_timestamp: None,
                        };
                        h.on_datagram(&dg, now);
                    }
                    Err(_) => other += 1,
                }
            }
            if first_ns == 0 {
                first_ns = now;
            }
            last_ns = now;
            // The fill ring holds every frame, yet it can look full for a
            // moment: the kernel publishes its fill-ring consumer index after
            // the rx producer index (xsk_flush). Frames it refuses wait in
            // `pending` (as in zc-afxdp's receiver).
            pending.extend_from_slice(&burst[..n]);
            idle_since = None;
        } else if stop.load(Ordering::Acquire) || started.elapsed() >= max {
            if idle_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(100) {
                break;
            }
        } else {
            std::hint::spin_loop();
        }
    }
    let (cpu1, sleeps1) = thread_usage();
    let (cpu_ns, sleeps) = (cpu1 - cpu0, sleeps1 - sleeps0);
    let st = rx
        .fd()
        .xdp_statistics()
        .map_err(|e| format!("XDP_STATISTICS: {e}"))?;
    let received = h.report().messages;
    let span = (last_ns.saturating_sub(first_ns)) as f64 / 1e9;
    let rate = if span > 0.0 {
        received as f64 / span / 1e6
    } else {
        0.0
    };
    println!(
        "{{\"received\":{received},\"other\":{other},\"rate_mpps\":{rate:.6},\"span_secs\":{span:.6},\"rx_cpu_ns\":{cpu_ns},\"rx_sleeps\":{sleeps},\"rx_dropped\":{},\"rx_ring_full\":{},\"fill_ring_empty\":{},\"rx_invalid_descs\":{}}}",
        st.rx_dropped(),
        st.rx_ring_full(),
        st.rx_fill_ring_empty_descs(),
        st.rx_invalid_descs(),
    );
    Ok(())
}

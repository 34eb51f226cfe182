//! Side-by-side harness for zc-linux: each zero-copy path against its plain
//! twin, in the same run, interleaved, over loopback TCP.
//!
//! ```text
//! cargo bench -p zc-benches --bench linux_zero_copy -- [sendfile] [proxy] [zerocopy] [--runs N] [--sizes B,B,..] [--methods M,M] [--sink-splice]
//! ```
//!
//! `--sizes` replaces the file sizes (sendfile) or send sizes (zerocopy), in bytes;
//! `--methods` (sendfile, read-write, mmap; splice, read-write) limits the file and
//! proxy sections to those paths, for profiling one of them;
//! `--sink-splice` makes the receivers splice to /dev/null instead of `read`, so
//! the sending side is the bottleneck.
//!
//! Not criterion: what matters here is CPU time (getrusage per thread) next to
//! throughput, and ratios measured in the same run on a shared, noisy machine.
//! Every figure printed is the median of N runs (default 5) with min–max.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::{Duration, Instant};
use zc_core::measure::Spread;
use zc_linux::{
    relay, send_plain, send_with, FileMethod, ProxyMethod, RelayOptions, ZeroCopySender,
};
use zc_os::CpuTime;

const MB: u64 = 1 << 20;

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// How the receiving end consumes bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkKind {
    /// `read` into a 1 MB buffer: a real receiver, one copy.
    Read,
    /// `splice` socket → pipe → /dev/null: no copy, so the sender is the
    /// bottleneck and its differences show in throughput.
    Splice,
}

static SINK: std::sync::OnceLock<SinkKind> = std::sync::OnceLock::new();

/// Reads and discards until EOF; returns bytes and the reader's CPU time.
fn sink(s: TcpStream) -> thread::JoinHandle<(u64, CpuTime)> {
    let kind = *SINK.get().unwrap_or(&SinkKind::Read);
    let t = thread::Builder::new()
        .name("zc-sink".into())
        .spawn(move || {
            let t0 = CpuTime::thread();
            let n = match kind {
                SinkKind::Read => read_sink(s),
                SinkKind::Splice => splice_sink(s),
            };
            (n, CpuTime::thread().since(t0))
        });
    t.unwrap()
}

fn read_sink(mut s: TcpStream) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return n,
            Ok(k) => n += k as u64,
        }
    }
}

fn splice_sink(s: TcpStream) -> u64 {
    use std::os::fd::AsRawFd;
    let null = File::options().write(true).open("/dev/null").unwrap();
    let mut p = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fcntl on the fresh pipe; failure keeps the default size.
    unsafe { libc::fcntl(p[1], libc::F_SETPIPE_SZ, 1 << 20) };
    let mut n = 0u64;
    loop {
        // SAFETY: live descriptors, null offsets (socket and pipe have none).
        let r = unsafe {
            libc::splice(
                s.as_raw_fd(),
                std::ptr::null_mut(),
                p[1],
                std::ptr::null_mut(),
                1 << 20,
                libc::SPLICE_F_MOVE,
            )
        };
        if r <= 0 {
            break;
        }
        let mut left = r as usize;
        while left > 0 {
            // SAFETY: as above; /dev/null accepts everything.
            let w = unsafe {
                libc::splice(
                    p[0],
                    std::ptr::null_mut(),
                    null.as_raw_fd(),
                    std::ptr::null_mut(),
                    left,
                    libc::SPLICE_F_MOVE,
                )
            };
            assert!(w > 0, "splice to /dev/null");
            left -= w as usize;
        }
        n += r as u64;
    }
    // SAFETY: closing the two pipe ends this function created.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
    n
}

#[derive(Clone, Copy, Default)]
struct Sample {
    /// Bytes per second.
    rate: f64,
    /// Sender (or relay) CPU seconds per GB moved.
    cpu_per_gb: f64,
    /// Receiver CPU seconds per GB.
    rx_cpu_per_gb: f64,
}

fn median(v: Vec<f64>) -> (f64, f64, f64) {
    Spread::of(v).parts()
}

fn fmt_rate(b: f64) -> String {
    format!("{:.2}", b / 1e9)
}

fn human(size: u64) -> String {
    if size >= 1 << 30 {
        format!("{} GB", size >> 30)
    } else if size >= MB {
        format!("{} MB", size >> 20)
    } else {
        format!("{} KB", size >> 10)
    }
}

// ---------------------------------------------------------------- sendfile

fn make_file(dir: &std::path::Path, size: u64) -> std::path::PathBuf {
    let p = dir.join(format!("f{size}"));
    let mut f = File::create(&p).unwrap();
    let chunk = vec![0x5au8; MB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MB) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    // Read it once so it sits in the page cache.
    let mut r = File::open(&p).unwrap();
    let mut buf = vec![0u8; MB as usize];
    while r.read(&mut buf).unwrap() > 0 {}
    p
}

/// Sends the whole file `reps` times on one connection.
fn file_run(method: FileMethod, path: &std::path::Path, size: u64, reps: u64) -> Sample {
    let (tx, rx) = tcp_pair();
    let rxh = sink(rx);
    let file = File::open(path).unwrap();
    let mut buf = vec![0u8; 128 * 1024];
    let mapped = (method == FileMethod::Mmap)
        .then(|| zc_linux::MappedFile::new(file.try_clone().unwrap()).unwrap());
    let c0 = CpuTime::thread();
    let t0 = Instant::now();
    for _ in 0..reps {
        match &mapped {
            Some(m) => m.send_range(tx.as_fd(), 0, size, None).unwrap(),
            None => send_with(method, tx.as_fd(), &file, 0, size, &mut buf, None).unwrap(),
        };
    }
    drop(tx);
    let (got, rx_cpu) = rxh.join().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = CpuTime::thread().since(c0).total().as_secs_f64();
    assert_eq!(got, size * reps);
    let gb = got as f64 / 1e9;
    Sample {
        rate: got as f64 / wall,
        cpu_per_gb: cpu / gb,
        rx_cpu_per_gb: rx_cpu.total().as_secs_f64() / gb,
    }
}

fn bench_sendfile(runs: usize, sizes: Option<&[u64]>, only: Option<&[String]>) {
    println!(
        "\n## sendfile vs read+write vs mmap+write (file in page cache → loopback TCP → reader)\n"
    );
    println!("Sender CPU = user+sys of the sending thread (getrusage RUSAGE_THREAD), per GB sent.");
    println!("ratio columns: sendfile ÷ read+write, per run, median.\n");
    let dir = tempfile::tempdir().unwrap();
    let sizes = sizes.unwrap_or(&[4 * 1024, 64 * 1024, MB, 16 * MB, 256 * MB, 1024 * MB]);
    let methods = [
        FileMethod::Sendfile,
        FileMethod::ReadWrite,
        FileMethod::Mmap,
    ];
    println!("| file | method | GB/s median (min–max) | sender CPU s/GB median (min–max) | reader CPU s/GB | throughput ratio | CPU ratio |");
    println!("|---|---|---|---|---|---|---|");
    for &size in sizes {
        let path = make_file(dir.path(), size);
        // At least 512 MB per sample so small files are timed over many sends.
        let reps = (512 * MB).div_ceil(size).max(1);
        let mut samples = vec![Vec::new(); methods.len()];
        for _ in 0..runs {
            for (i, m) in methods.iter().enumerate() {
                if only.is_none_or(|o| o.iter().any(|x| x.parse::<FileMethod>().ok() == Some(*m))) {
                    samples[i].push(file_run(*m, &path, size, reps));
                }
            }
        }
        for (i, m) in methods.iter().enumerate() {
            if samples[i].is_empty() {
                continue;
            }
            let (r, rmin, rmax) = median(samples[i].iter().map(|s| s.rate).collect());
            let (c, cmin, cmax) = median(samples[i].iter().map(|s| s.cpu_per_gb).collect());
            let (rc, _, _) = median(samples[i].iter().map(|s| s.rx_cpu_per_gb).collect());
            let (tr, cr) = if i == 0 && !samples[1].is_empty() {
                let tr = median(
                    samples[0]
                        .iter()
                        .zip(&samples[1])
                        .map(|(a, b)| a.rate / b.rate)
                        .collect(),
                )
                .0;
                let cr = median(
                    samples[0]
                        .iter()
                        .zip(&samples[1])
                        .map(|(a, b)| a.cpu_per_gb / b.cpu_per_gb)
                        .collect(),
                )
                .0;
                (format!("{tr:.2}×"), format!("{cr:.2}×"))
            } else {
                (String::new(), String::new())
            };
            println!(
                "| {} | {:?} | {} ({}–{}) | {:.3} ({:.3}–{:.3}) | {:.3} | {tr} | {cr} |",
                human(size),
                m,
                fmt_rate(r),
                fmt_rate(rmin),
                fmt_rate(rmax),
                c,
                cmin,
                cmax,
                rc
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
}

// ---------------------------------------------------------------- proxy

/// source → relay → sink with `total` bytes; the source paced at `rate`
/// bytes/s (None = as fast as it can). Returns relay CPU and throughput.
fn proxy_run(method: ProxyMethod, total: u64, rate: Option<f64>) -> Sample {
    let (mut src, a) = tcp_pair();
    let (b, dst) = tcp_pair();
    let sinkh = sink(dst);
    let relayh = thread::Builder::new()
        .name("zc-relay".into())
        .spawn(move || {
            let c0 = CpuTime::thread();
            let opts = RelayOptions {
                method,
                buffer: 256 * 1024,
                idle_timeout: Some(Duration::from_secs(30)),
            };
            let stats = relay(a, b, &opts).unwrap();
            (stats.a_to_b, CpuTime::thread().since(c0))
        });
    let relayh = relayh.unwrap();
    let chunk = vec![0xa5u8; 256 * 1024];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(chunk.len() as u64) as usize;
        src.write_all(&chunk[..n]).unwrap();
        sent += n as u64;
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(sent as f64 / r);
            if let Some(ahead) = due.checked_sub(t0.elapsed()) {
                thread::sleep(ahead);
            }
        }
    }
    src.shutdown(std::net::Shutdown::Write).unwrap();
    let (moved, cpu) = relayh.join().unwrap();
    let (got, rx_cpu) = sinkh.join().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    assert_eq!((moved, got), (total, total));
    let gb = total as f64 / 1e9;
    Sample {
        rate: total as f64 / wall,
        cpu_per_gb: cpu.total().as_secs_f64() / gb,
        rx_cpu_per_gb: rx_cpu.total().as_secs_f64() / gb,
    }
}

fn bench_proxy(runs: usize, only: Option<&[String]>) {
    println!("\n## splice proxy vs read/write proxy (source → relay → sink, loopback TCP)\n");
    println!("Relay CPU = user+sys of the relay thread per GB forwarded. ratio: splice ÷ read/write, per run, median.\n");
    let methods = [ProxyMethod::Splice, ProxyMethod::ReadWrite];
    println!("| offered rate | method | GB/s median (min–max) | relay CPU s/GB median (min–max) | CPU ratio |");
    println!("|---|---|---|---|---|");
    let total = 1024 * MB;
    for rate in [None, Some(1.0e9), Some(0.5e9)] {
        let total = if rate.is_some() { total / 2 } else { total };
        let mut samples = vec![Vec::new(); 2];
        for _ in 0..runs {
            for (i, m) in methods.iter().enumerate() {
                if only.is_none_or(|o| o.iter().any(|x| x.parse::<ProxyMethod>().ok() == Some(*m)))
                {
                    samples[i].push(proxy_run(*m, total, rate));
                }
            }
        }
        let label = rate.map_or("max".to_string(), |r| format!("{} GB/s", r / 1e9));
        for (i, m) in methods.iter().enumerate() {
            if samples[i].is_empty() {
                continue;
            }
            let (r, rmin, rmax) = median(samples[i].iter().map(|s| s.rate).collect());
            let (c, cmin, cmax) = median(samples[i].iter().map(|s| s.cpu_per_gb).collect());
            let cr = if i == 0 && !samples[1].is_empty() {
                format!(
                    "{:.2}×",
                    median(
                        samples[0]
                            .iter()
                            .zip(&samples[1])
                            .map(|(a, b)| a.cpu_per_gb / b.cpu_per_gb)
                            .collect()
                    )
                    .0
                )
            } else {
                String::new()
            };
            println!(
                "| {label} | {m:?} | {} ({}–{}) | {c:.3} ({cmin:.3}–{cmax:.3}) | {cr} |",
                fmt_rate(r),
                fmt_rate(rmin),
                fmt_rate(rmax)
            );
        }
    }
}

// ---------------------------------------------------------------- MSG_ZEROCOPY

/// Sends `total` bytes in `size`-byte sends; returns the sample and, for
/// zerocopy, the fraction of ids the kernel reported as copied.
fn zc_run(zero_copy: bool, size: usize, total: u64) -> (Sample, Option<f64>) {
    let (tx, rx) = tcp_pair();
    let rxh = sink(rx);
    let count = total.div_ceil(size as u64);
    let c0 = CpuTime::thread();
    let t0 = Instant::now();
    let copied = if zero_copy {
        let mut zc = ZeroCopySender::tcp(tx).unwrap();
        // A fixed pool: buffers are recycled through completions, so the
        // steady state allocates nothing.
        let pool = ((8 * MB) as usize / size).clamp(4, 4096);
        let mut free: Vec<Vec<u8>> = (0..pool).map(|_| vec![0x3cu8; size]).collect();
        for _ in 0..count {
            let buf = loop {
                if let Some(b) = free.pop() {
                    break b;
                }
                zc.poll_completions().unwrap();
                while let Some(c) = zc.pop_completed() {
                    free.push(c.buf);
                }
                if free.is_empty() {
                    if let Err(e) = zc.wait_completion(Some(Duration::from_secs(10))) {
                        panic!("{e}: {:?}, {} held", zc.stats(), zc.in_flight());
                    }
                    while let Some(c) = zc.pop_completed() {
                        free.push(c.buf);
                    }
                }
            };
            zc.send(buf).map_err(|e| e.error).unwrap();
        }
        zc.flush().unwrap();
        let s = zc.stats();
        Some(s.ids_copied as f64 / s.ids_completed.max(1) as f64)
    } else {
        let buf = vec![0x3cu8; size];
        for _ in 0..count {
            send_plain(tx.as_fd(), &buf, None).unwrap();
        }
        drop(tx);
        None
    };
    let wall = t0.elapsed().as_secs_f64();
    let cpu = CpuTime::thread().since(c0).total().as_secs_f64();
    let (got, rx_cpu) = rxh.join().unwrap();
    assert_eq!(got, count * size as u64);
    let gb = got as f64 / 1e9;
    (
        Sample {
            rate: got as f64 / wall,
            cpu_per_gb: cpu / gb,
            rx_cpu_per_gb: rx_cpu.total().as_secs_f64() / gb,
        },
        copied,
    )
}

fn bench_zerocopy(runs: usize, sizes: Option<&[u64]>) {
    println!("\n## MSG_ZEROCOPY vs plain send (loopback TCP, one connection per sample)\n");
    println!("Sender CPU = user+sys of the sending thread per GB, including reading completions.");
    println!("copied = share of notification ids with SO_EE_CODE_ZEROCOPY_COPIED. ratio: zerocopy ÷ send, per run, median.\n");
    println!("| send size | path | GB/s median (min–max) | sender CPU s/GB median (min–max) | copied | throughput ratio | CPU ratio |");
    println!("|---|---|---|---|---|---|---|");
    let sizes = sizes.unwrap_or(&[1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024, 1 << 20]);
    for size in sizes.iter().map(|s| *s as usize) {
        let total = 512 * MB;
        let mut zc = Vec::new();
        let mut plain = Vec::new();
        let mut copied = Vec::new();
        for _ in 0..runs {
            let (s, c) = zc_run(true, size, total);
            zc.push(s);
            copied.push(c.unwrap_or(0.0));
            plain.push(zc_run(false, size, total).0);
        }
        let tr = median(
            zc.iter()
                .zip(&plain)
                .map(|(a, b)| a.rate / b.rate)
                .collect(),
        )
        .0;
        let cr = median(
            zc.iter()
                .zip(&plain)
                .map(|(a, b)| a.cpu_per_gb / b.cpu_per_gb)
                .collect(),
        )
        .0;
        let (cmed, cmin, _) = median(copied);
        for (name, s, extra) in [
            (
                "MSG_ZEROCOPY",
                &zc,
                (
                    format!("{:.0}% (min {:.0}%)", cmed * 100.0, cmin * 100.0),
                    format!("{tr:.2}×"),
                    format!("{cr:.2}×"),
                ),
            ),
            ("send", &plain, ("–".into(), String::new(), String::new())),
        ] {
            let (r, rmin, rmax) = median(s.iter().map(|x| x.rate).collect());
            let (c, cmin, cmax) = median(s.iter().map(|x| x.cpu_per_gb).collect());
            println!(
                "| {} | {name} | {} ({}–{}) | {c:.3} ({cmin:.3}–{cmax:.3}) | {} | {} | {} |",
                human(size as u64),
                fmt_rate(r),
                fmt_rate(rmin),
                fmt_rate(rmax),
                extra.0,
                extra.1,
                extra.2
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--methods")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_owned).collect());
    let sizes: Option<Vec<u64>> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.split(',')
                .map(|x| x.parse().expect("--sizes takes bytes, comma-separated"))
                .collect()
        });
    let want = |name: &str| {
        let named: Vec<_> = args
            .iter()
            .filter(|a| ["sendfile", "proxy", "zerocopy"].contains(&a.as_str()))
            .collect();
        named.is_empty() || named.iter().any(|a| *a == name)
    };
    let sink = if args.iter().any(|a| a == "--sink-splice") {
        SinkKind::Splice
    } else {
        SinkKind::Read
    };
    SINK.set(sink).unwrap();
    println!("# zc-linux side-by-side, {runs} runs per point, receiver: {sink:?}");
    if want("sendfile") {
        bench_sendfile(runs, sizes.as_deref(), only.as_deref());
    }
    if want("proxy") {
        bench_proxy(runs, only.as_deref());
    }
    if want("zerocopy") {
        bench_zerocopy(runs, sizes.as_deref());
    }
}

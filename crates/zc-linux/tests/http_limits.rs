//! The file server against clients that try to hold it or trick it, on real
//! loopback sockets and real files: slow clients are cut off on time while a
//! normal client is served, over-capacity clients get 503, malformed header
//! lines get 400, dotfiles and anything but regular files are not served.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use zc_linux::{FileServer, RunningService, ServeConfig};

fn config(root: &Path) -> ServeConfig {
    let mut cfg = ServeConfig::new(root, "127.0.0.1:0".parse().unwrap());
    cfg.idle_timeout = Duration::from_millis(300);
    cfg.head_timeout = Duration::from_millis(500);
    cfg.min_send_rate = 8_000_000;
    cfg
}

fn start(cfg: ServeConfig) -> RunningService {
    FileServer::bind(cfg).unwrap().spawn().unwrap()
}

/// Sends `req` and reads the whole answer (the request should close).
fn ask(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    ask(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// True once the server has closed or reset `s` (a read sees EOF or an
/// error); what it sent is added to `got`.
fn closed_by_server(s: &mut TcpStream, got: &mut Vec<u8>) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64 * 1024];
    let r = loop {
        match s.read(&mut b) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    r
}

/// A client that sends a request head one byte every `every`, up to `limit`;
/// returns how long the server let it go on, and what the server said.
fn slowloris(addr: SocketAddr, every: Duration, limit: Duration) -> (Duration, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let t0 = Instant::now();
    s.write_all(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let header = b"X-Slow: ".iter().chain(std::iter::repeat(&b'a'));
    let mut got = Vec::new();
    for b in header {
        if t0.elapsed() > limit {
            break;
        }
        std::thread::sleep(every);
        // A byte that reaches the server after its deadline but before its
        // close makes the close a RST, and the write after it fails: what the
        // server sent before (the 408) is still in the receive queue, so it
        // is read either way (a full test run once saw an empty answer otherwise).
        let write_failed = s.write_all(&[*b]).is_err();
        if closed_by_server(&mut s, &mut got) || write_failed {
            break;
        }
    }
    (t0.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

/// A client that asks for a large file and then reads `chunk` bytes every
/// `every`; returns how many body bytes it got and when the server cut it off.
fn slow_reader(
    addr: SocketAddr,
    chunk: usize,
    every: Duration,
    limit: Duration,
) -> (u64, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    set_buf(&s, libc::SO_RCVBUF, 16 * 1024);
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let t0 = Instant::now();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = 0u64;
    let mut buf = vec![0u8; chunk];
    while t0.elapsed() < limit {
        std::thread::sleep(every);
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    (got, t0.elapsed())
}

#[test]
fn slow_clients_are_cut_off_on_time_while_a_normal_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.txt"), b"small\n").unwrap();
    let big = 32 * MB;
    make_file(dir.path(), "big.bin", big, 7);
    let mut cfg = config(dir.path());
    cfg.max_connections = Some(3);
    let srv = start(cfg);
    let addr = srv.local_addr();

    let lazy_head = std::thread::spawn(move || {
        slowloris(addr, Duration::from_millis(100), Duration::from_secs(6))
    });
    let lazy_body = std::thread::spawn(move || {
        slow_reader(
            addr,
            2000,
            Duration::from_millis(50),
            Duration::from_secs(6),
        )
    });
    // While both hold a connection, a normal client is served at once.
    std::thread::sleep(Duration::from_millis(150));
    let t = Instant::now();
    let r = get(addr, "/small.txt");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("small\n"),
        "{r}"
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    let (held, told) = lazy_head.join().unwrap();
    eprintln!("a client trickling its head was cut off after {held:?}");
    assert!(
        told.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{told:?}"
    );
    assert!(
        held >= Duration::from_millis(450) && held < Duration::from_secs(3),
        "a client trickling its head kept its connection for {held:?}"
    );
    let (got, held) = lazy_body.join().unwrap();
    eprintln!("a slow reader was cut off after {got} bytes and {held:?}");
    assert!(
        held >= Duration::from_millis(300) && held < Duration::from_secs(3) && got < big as u64,
        "a client reading {got} bytes slowly kept its connection for {held:?}"
    );
    // And after them, the server still answers.
    assert!(get(addr, "/small.txt").starts_with("HTTP/1.1 200"));
    srv.stop().unwrap();
}

#[test]
fn clients_over_the_connection_cap_get_503_and_a_freed_slot_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.txt"), b"small\n").unwrap();
    let mut cfg = config(dir.path());
    cfg.idle_timeout = Duration::from_secs(10);
    cfg.max_connections = Some(2);
    let srv = start(cfg);
    let addr = srv.local_addr();
    let holders: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200)); // both accepted
    for _ in 0..3 {
        let r = get(addr, "/small.txt");
        assert!(
            r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{r:?}"
        );
        assert!(
            r.contains("Retry-After: ") && r.contains("Connection: close"),
            "{r}"
        );
    }
    drop(holders);
    let t = Instant::now();
    loop {
        let r = get(addr, "/small.txt");
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(3), "{r}");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.stop().unwrap();
}

#[test]
fn header_lines_that_rfc_9112_forbids_get_400() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.txt"), b"small\n").unwrap();
    let srv = start(config(dir.path()));
    let addr = srv.local_addr();
    for (what, req) in [
        (
            "space before the colon",
            &b"GET /small.txt HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"[..],
        ),
        (
            "tab in a name",
            b"GET /small.txt HTTP/1.1\r\nHost: x\r\nX\tY: z\r\n\r\n",
        ),
        (
            "bare CR in a value",
            b"GET /small.txt HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        ),
        (
            "bare CR in the request line",
            b"GET /small.txt\r HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "two Host lines",
            b"GET /small.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        ),
        (
            "an empty name",
            b"GET /small.txt HTTP/1.1\r\nHost: x\r\n: z\r\n\r\n",
        ),
    ] {
        let r = ask(addr, req);
        assert!(r.starts_with("HTTP/1.1 400"), "{what}: {r:?}");
    }
    // Optional whitespace around a value is still fine.
    let r = ask(
        addr,
        b"GET /small.txt HTTP/1.1\r\nHost:x\r\nX-A:\t b \t\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    srv.stop().unwrap();
}

#[test]
fn dotfiles_are_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), b"SECRET=1\n").unwrap();
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".git/config"), b"[core]\n").unwrap();
    std::fs::create_dir_all(dir.path().join(".well-known")).unwrap();
    std::fs::write(dir.path().join(".well-known/x.txt"), b"known\n").unwrap();
    std::fs::write(dir.path().join("a.txt"), b"a\n").unwrap();
    let srv = start(config(dir.path()));
    let addr = srv.local_addr();
    for path in ["/.env", "/.git/config", "/.git/", "/.well-known/x.txt"] {
        let r = get(addr, path);
        assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
        assert!(
            !r.contains("SECRET") && !r.contains("[core]"),
            "{path}: {r}"
        );
    }
    assert!(get(addr, "/a.txt").ends_with("\r\n\r\na\n"));
    srv.stop().unwrap();

    let mut cfg = config(dir.path());
    cfg.dotfiles = true;
    let srv = start(cfg);
    let r = get(srv.local_addr(), "/.well-known/x.txt");
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("known\n"),
        "{r}"
    );
    srv.stop().unwrap();
}

#[test]
fn only_regular_files_are_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let srv = start(config(dir.path()));
    let addr = srv.local_addr();

    // A writer blocks in open until someone opens the FIFO for reading: if
    // the server opens it, the writer gets through.
    let (tx, rx) = std::sync::mpsc::channel();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new().write(true).open(&writer_path);
        tx.send(()).unwrap();
        f
    });
    let r = get(addr, "/fifo");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let opened = rx.recv_timeout(Duration::from_millis(300)).is_ok();
    // Release the writer if it still waits.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    writer.join().unwrap().unwrap();
    assert!(!opened, "the server opened the FIFO");

    // A character device node: the test makes one with a major number kept
    // for local experiments (no driver behind it, so nothing real is touched;
    // opening it fails with ENXIO, which the server answered with 500).
    if zc_core::sys::privileged_or_skip("only_regular_files_are_opened (device node)") {
        let node = dir.path().join("dev");
        let c = std::ffi::CString::new(node.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mknod only creates a directory entry.
        let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(63, 0)) };
        assert_eq!(made, 0, "mknod: {}", std::io::Error::last_os_error());
        let r = get(addr, "/dev");
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    }
    srv.stop().unwrap();
}

use std::os::unix::fs::OpenOptionsExt;

#[test]
fn a_folders_index_page_is_served_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/index.html"), b"<p>i</p>\n").unwrap();
    std::fs::write(dir.path().join("index.html"), b"<p>top</p>\n").unwrap();
    let srv = start(config(dir.path()));
    let addr = srv.local_addr();
    for path in ["/", "/sub/", "/sub", "/sub/?q=1"] {
        let r = get(addr, path);
        assert!(
            r.starts_with("HTTP/1.1 200")
                && r.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"),
            "{path}: {r}"
        );
    }
    srv.stop().unwrap();
}

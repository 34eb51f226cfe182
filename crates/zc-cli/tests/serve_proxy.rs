//! `zc serve` and `zc proxy` as real processes: curl fetches a file from the
//! server through the proxy; the proxy's connection cap follows the
//! descriptor limit it is started with; `zc serve` needs `--root`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn zc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zc"))
}

/// A child process killed when the test ends, also when it fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `zc args..` and returns it with the first line it prints.
fn start(args: &[&str]) -> (Running, String) {
    let mut child = zc()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    (running, line)
}

#[test]
fn curl_gets_a_file_from_zc_serve_through_zc_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("data.bin"), &body).unwrap();

    let (_server, line) = start(&[
        "serve",
        "--root",
        dir.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let server_addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));
    let (_proxy, line) = start(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        server_addr,
    ]);
    let proxy_addr = line
        .strip_prefix("zc proxy: ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));

    let out_file = dir.path().join("got");
    let o = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "20",
            "-o",
            out_file.to_str().unwrap(),
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://{proxy_addr}/data.bin"))
        .output()
        .expect("curl must be installed (build/install-deps.sh)");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&out_file).unwrap(), body);
}

#[test]
fn an_unknown_method_is_a_usage_error_that_lists_the_methods() {
    let o = zc()
        .args([
            "serve",
            "--root",
            ".",
            "--listen",
            "127.0.0.1:0",
            "--method",
            "carrier-pigeon",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = String::from_utf8_lossy(&o.stderr);
    assert!(
        t.contains("invalid value 'carrier-pigeon' for '--method <METHOD>'")
            && t.contains("[possible values: sendfile, read-write, mmap]"),
        "{t}"
    );
    let o = zc()
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            "--method",
            "teleport",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("[possible values: splice, read-write]"));
}

#[test]
fn serve_without_root_is_refused() {
    let o = zc()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let t = String::from_utf8_lossy(&o.stderr);
    assert!(t.contains("--root"), "{t}");
}

#[test]
fn the_proxy_sizes_its_connection_cap_from_the_descriptor_limit() {
    // An echo upstream for every connection the proxy makes.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in upstream.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    // The proxy starts with a soft limit of 200 descriptors: (200 - 64) / 7 = 19.
    let mut cmd = zc();
    cmd.args(["proxy", "--listen", "127.0.0.1:0", "--upstream", &up_addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls setrlimit, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 200,
                rlim_max: 200,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let _proxy = Running(child);
    assert!(
        line.contains("up to 19 connections, idle timeout 60s"),
        "{line}"
    );
    let addr = line
        .strip_prefix("zc proxy: ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();

    // 19 connections are relayed, each its own bytes back.
    let mut held = Vec::new();
    for i in 0..19u32 {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&i.to_be_bytes()).unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(u32::from_be_bytes(b), i);
        held.push(c);
    }
    // More are reset at once, and the log says so once, not once per client.
    for _ in 0..5 {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = Instant::now();
        let r = c.read(&mut [0u8; 4]);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{r:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    // A slot freed is a slot served again.
    let first = held.remove(0);
    first.shutdown(Shutdown::Both).unwrap();
    drop(first);
    let t = Instant::now();
    loop {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 4];
        if c.write_all(b"ping").is_ok() && c.read_exact(&mut b).is_ok() {
            assert_eq!(&b, b"ping");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "no slot came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    drop(_proxy);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert_eq!(log.matches("slots busy").count(), 1, "{log}");
    assert!(!log.contains("accept:"), "{log}");
}

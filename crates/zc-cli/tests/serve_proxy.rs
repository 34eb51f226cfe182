//! `zc serve` and `zc proxy` as real processes: curl fetches a file from the
//! server through the proxy.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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
fn an_unknown_method_is_a_clear_error() {
    let o = zc()
        .args([
            "serve",
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
        t.contains("unknown file method `carrier-pigeon`") && t.contains("sendfile"),
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
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown proxy method `teleport`"));
}

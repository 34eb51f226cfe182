//! The file server against real curl: bodies byte-identical, ranges, HEAD,
//! 404/416, keep-alive, and every path-traversal trick refused.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use zc_linux::{FileMethod, FileServer, RunningService, ServeConfig};

const SECRET: &[u8] = b"top secret, outside the served folder\n";

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let out = dir.path().join("out");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    make_file(&root, "a.bin", 100 * 1024, 1);
    make_file(&root, "big.bin", 8 * MB + 3, 2);
    make_file(&root, "empty", 0, 3);
    std::fs::write(root.join("sub/b.txt"), b"bee\n").unwrap();
    std::fs::write(root.join("sub/index.html"), b"<p>index</p>\n").unwrap();
    std::fs::write(root.join("my file.txt"), b"spaced\n").unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("..", root.join("updir")).unwrap();
    std::os::unix::fs::symlink("a.bin", root.join("inner-link")).unwrap();
    Site {
        _dir: dir,
        root,
        out,
    }
}

fn start(root: &Path, method: FileMethod, listen: &str) -> RunningService {
    let mut cfg = ServeConfig::new(root, listen.parse::<SocketAddr>().unwrap());
    cfg.method = method;
    cfg.idle_timeout = Duration::from_secs(5);
    FileServer::bind(cfg).unwrap().spawn().unwrap()
}

fn url(addr: SocketAddr, path: &str) -> String {
    match addr {
        SocketAddr::V4(a) => format!("http://{a}{path}"),
        SocketAddr::V6(a) => format!("http://[{}]:{}{path}", a.ip(), a.port()),
    }
}

/// Runs curl; returns stdout (the -w output).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-S", "--path-as-is", "-g", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl must be installed (build/install-deps.sh)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// GET `path` into a file; returns (status, body).
fn get(addr: SocketAddr, path: &str, out: &Path, extra: &[&str]) -> (u16, Vec<u8>) {
    let body = out.join("body");
    let u = url(addr, path);
    let mut args = vec!["-o", body.to_str().unwrap(), "-w", "%{http_code}"];
    args.extend_from_slice(extra);
    args.push(&u);
    let code = curl(&args).trim().parse().unwrap();
    (code, std::fs::read(&body).unwrap_or_default())
}

fn check_site(method: FileMethod, listen: &str) {
    let s = site();
    let srv = start(&s.root, method, listen);
    let addr = srv.local_addr();

    // Whole files, byte-identical.
    for name in ["a.bin", "big.bin", "empty"] {
        let (code, body) = get(addr, &format!("/{name}"), &s.out, &[]);
        assert_eq!(code, 200, "{method:?} {name}");
        let want = std::fs::read(s.root.join(name)).unwrap();
        assert_eq!(
            digest_bytes(&body),
            digest_bytes(&want),
            "{method:?} {name}"
        );
    }
    assert_eq!(
        get(addr, "/sub/b.txt", &s.out, &[]),
        (200, b"bee\n".to_vec())
    );
    assert_eq!(
        get(addr, "/sub/", &s.out, &[]),
        (200, b"<p>index</p>\n".to_vec())
    );
    assert_eq!(
        get(addr, "/my%20file.txt?x=1", &s.out, &[]),
        (200, b"spaced\n".to_vec())
    );

    // Ranges.
    let a = std::fs::read(s.root.join("a.bin")).unwrap();
    assert_eq!(
        get(addr, "/a.bin", &s.out, &["-r", "0-99"]),
        (206, a[..100].to_vec())
    );
    assert_eq!(
        get(addr, "/a.bin", &s.out, &["-r", "4095-4097"]),
        (206, a[4095..4098].to_vec())
    );
    assert_eq!(
        get(addr, "/a.bin", &s.out, &["-r", "100000-"]),
        (206, a[100000..].to_vec())
    );
    assert_eq!(
        get(addr, "/a.bin", &s.out, &["-H", "Range: bytes=-10"]),
        (206, a[a.len() - 10..].to_vec())
    );
    assert_eq!(
        get(addr, "/a.bin", &s.out, &["-r", "0-1,5-6"]),
        (200, a.clone())
    );
    let big = std::fs::read(s.root.join("big.bin")).unwrap();
    let (code, body) = get(addr, "/big.bin", &s.out, &["-r", "1000000-5000000"]);
    assert_eq!(
        (code, digest_bytes(&body)),
        (206, digest_bytes(&big[1_000_000..=5_000_000]))
    );

    // 416 with the size, 404.
    let hdrs = s.out.join("h");
    let (code, _) = get(
        addr,
        "/a.bin",
        &s.out,
        &["-r", "102400-", "-D", hdrs.to_str().unwrap()],
    );
    assert_eq!(code, 416);
    let h = std::fs::read_to_string(&hdrs).unwrap().to_ascii_lowercase();
    assert!(h.contains("content-range: bytes */102400"), "{h}");
    assert_eq!(get(addr, "/empty", &s.out, &["-r", "0-0"]).0, 416);
    assert_eq!(get(addr, "/nope", &s.out, &[]).0, 404);
    assert_eq!(get(addr, "/sub/nope/deeper", &s.out, &[]).0, 404);
    assert_eq!(get(addr, "/a.bin/x", &s.out, &[]).0, 404);

    // HEAD: the length of the body, and no body.
    let head = curl(&["-I", &url(addr, "/big.bin")]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", 8 * MB + 3)),
        "{head}"
    );
    let head = curl(&["-I", "-r", "10-19", &url(addr, "/a.bin")]).to_ascii_lowercase();
    assert!(
        head.contains("content-range: bytes 10-19/102400") && head.contains("content-length: 10"),
        "{head}"
    );

    // Keep-alive: three requests, one connection.
    let (o1, o2, o3) = (s.out.join("k1"), s.out.join("k2"), s.out.join("k3"));
    let w = curl(&[
        "-w",
        "%{http_code} %{num_connects}\n",
        "-o",
        o1.to_str().unwrap(),
        &url(addr, "/a.bin"),
        "-o",
        o2.to_str().unwrap(),
        &url(addr, "/nope"),
        "-o",
        o3.to_str().unwrap(),
        &url(addr, "/sub/b.txt"),
    ]);
    assert_eq!(w, "200 1\n404 0\n200 0\n", "{method:?}");
    assert_eq!(std::fs::read(&o1).unwrap(), a);
    assert_eq!(std::fs::read(&o3).unwrap(), b"bee\n");

    // Traversal: refused, and the secret never shows up.
    for path in [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/sub/../a.bin",
        "/./a.bin",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/link",
        "/updir/secret.txt",
        "/inner-link",
    ] {
        let (code, body) = get(addr, path, &s.out, &[]);
        assert_eq!(code, 403, "{method:?} {path}");
        assert!(
            !body.windows(SECRET.len()).any(|w| w == SECRET),
            "{path} leaked the secret"
        );
    }
    srv.stop().unwrap();
}

#[test]
fn curl_sees_a_correct_server_with_sendfile() {
    check_site(FileMethod::Sendfile, "127.0.0.1:0");
}

#[test]
fn curl_sees_a_correct_server_with_read_write() {
    check_site(FileMethod::ReadWrite, "127.0.0.1:0");
}

#[test]
fn curl_sees_a_correct_server_with_mmap() {
    check_site(FileMethod::Mmap, "127.0.0.1:0");
}

#[test]
fn curl_sees_a_correct_server_on_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    check_site(FileMethod::Sendfile, "[::1]:0");
}

fn raw(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn raw_clients_get_strict_answers_and_cannot_hurt_the_server() {
    let s = site();
    let srv = start(&s.root, FileMethod::Sendfile, "127.0.0.1:0");
    let addr = srv.local_addr();

    // Two pipelined requests in one write, the second closing.
    let r = raw(addr, b"GET /sub/b.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /sub/b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 2, "{r}");
    assert_eq!(r.matches("bee\n").count(), 2, "{r}");

    assert!(raw(addr, b"POST /a.bin HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(raw(addr, b"GET /a.bin HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(raw(addr, b"GET a.bin HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(raw(addr, b"GET /a.bin HTTP/3\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 505"));
    assert!(raw(addr, b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 400"));
    let mut huge = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    huge.resize(20_000, b'a');
    let mut c = TcpStream::connect(addr).unwrap();
    let _ = c.write_all(&huge);
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");

    // A client that leaves in the middle of a big body.
    for _ in 0..3 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1000];
        c.read_exact(&mut buf).unwrap();
    }
    // HTTP/1.0 closes by default; the server is still fine.
    let r = raw(addr, b"GET /sub/b.txt HTTP/1.0\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK") && r.contains("Connection: close") && r.ends_with("bee\n"),
        "{r}"
    );
    srv.stop().unwrap();
}

#[test]
fn binding_a_missing_folder_is_a_clear_error() {
    let cfg = ServeConfig::new("/definitely/not/here", "127.0.0.1:0".parse().unwrap());
    let e = FileServer::bind(cfg).err().expect("must fail");
    assert_eq!(e.kind(), zc_core::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("/definitely/not/here"), "{e}");
}

//! Helpers shared by the integration tests: real files, real loopback sockets.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs::File;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const MB: usize = 1 << 20;

/// Writes `size` pseudo-random bytes (seeded by `seed`) to `dir/name`.
pub fn make_file(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut chunk = vec![0u8; MB];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        rng.fill(&mut chunk[..n]);
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.sync_data().ok();
    path
}

/// Streaming SipHash of a byte stream, fed chunk by chunk.
#[derive(Default)]
pub struct Digest {
    h: std::collections::hash_map::DefaultHasher,
    pub len: u64,
}

impl Digest {
    pub fn update(&mut self, b: &[u8]) {
        self.h.write(b);
        self.len += b.len() as u64;
    }
    pub fn finish(&self) -> (u64, u64) {
        (self.h.finish(), self.len)
    }
}

pub fn digest_bytes(b: &[u8]) -> (u64, u64) {
    let mut d = Digest::default();
    d.update(b);
    d.finish()
}

pub fn digest_file_range(path: &Path, offset: u64, len: u64) -> (u64, u64) {
    let mut f = File::open(path).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).unwrap();
    let mut d = Digest::default();
    let mut buf = vec![0u8; MB];
    let mut left = len;
    while left > 0 {
        let n = f.read(&mut buf[..(left as usize).min(MB)]).unwrap();
        assert!(n > 0, "file shorter than expected");
        d.update(&buf[..n]);
        left -= n as u64;
    }
    d.finish()
}

/// A connected TCP pair on 127.0.0.1: (client, server side).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

pub fn set_buf(sock: &TcpStream, opt: libc::c_int, bytes: libc::c_int) {
    // SAFETY: setsockopt with a valid int option value on a live socket.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt {opt}");
}

/// How a test receiver reads.
#[derive(Clone, Copy)]
pub enum Pace {
    Fast,
    /// Small reads with a pause every few reads, for the first `slow_bytes`:
    /// the sender's socket buffer fills and its writes come back short.
    Slow {
        slow_bytes: u64,
    },
}

/// Reads until EOF, hashing everything.
pub fn drain(mut s: TcpStream, pace: Pace) -> (u64, u64) {
    let mut d = Digest::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut reads = 0u64;
    loop {
        let limit = match pace {
            Pace::Slow { slow_bytes } if d.len < slow_bytes => {
                reads += 1;
                if reads % 8 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                1000
            }
            _ => buf.len(),
        };
        match s.read(&mut buf[..limit]) {
            Ok(0) => return d.finish(),
            Ok(n) => d.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return d.finish(),
            Err(e) => panic!("receiver: {e}"),
        }
    }
}

//! The proxy, with splice and with read/write, against peers that send 100 MB
//! both ways in random chunk sizes and half-close mid-way: every byte arrives
//! in order. Resets are passed on and the proxy lives on.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;
use zc_linux::{relay, Proxy, ProxyConfig, ProxyMethod, RelayOptions, RunningService};

const TOTAL: u64 = 100 * MB as u64;

/// Writes `len` bytes of the stream seeded `seed` in random chunk sizes,
/// pausing at `pause_at` until `gate` opens. Returns the stream's digest.
fn write_stream(
    s: &mut TcpStream,
    seed: u64,
    len: u64,
    pause_at: u64,
    gate: Option<mpsc::Receiver<()>>,
) -> (u64, u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut chunk_rng = fastrand::Rng::with_seed(seed ^ 0xabcdef);
    let mut d = Digest::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut gate = gate;
    while d.len < len {
        if d.len >= pause_at {
            if let Some(g) = gate.take() {
                g.recv().unwrap();
            }
        }
        let limit = if d.len < pause_at { pause_at } else { len };
        let n = (chunk_rng.usize(1..=buf.len()) as u64).min(limit - d.len) as usize;
        rng.fill(&mut buf[..n]);
        s.write_all(&buf[..n]).unwrap();
        d.update(&buf[..n]);
    }
    d.finish()
}

/// Reads to EOF in random chunk sizes.
fn read_stream(s: &mut TcpStream, seed: u64) -> (u64, u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut d = Digest::default();
    let mut buf = vec![0u8; 300 * 1024];
    loop {
        let n = rng.usize(1..=buf.len());
        match s.read(&mut buf[..n]).unwrap() {
            0 => return d.finish(),
            n => d.update(&buf[..n]),
        }
    }
}

fn start_proxy(upstream: SocketAddr, method: ProxyMethod, buffer: usize) -> RunningService {
    let mut cfg = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), upstream);
    cfg.relay = RelayOptions {
        method,
        buffer,
        idle_timeout: Some(Duration::from_secs(30)),
    };
    Proxy::bind(cfg).unwrap().spawn().unwrap()
}

fn both_ways_with_half_close(method: ProxyMethod, buffer: usize) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start_proxy(upstream.local_addr().unwrap(), method, buffer);

    // Upstream: sends half of its stream, waits until the client's half-close
    // has come through the proxy, then sends the rest and closes.
    let server = std::thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        let mut r = s.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let got = read_stream(&mut r, 3);
            tx.send(()).unwrap();
            got
        });
        let sent = write_stream(&mut s, 2, TOTAL, TOTAL / 2, Some(rx));
        s.shutdown(Shutdown::Write).unwrap();
        (sent, reader.join().unwrap())
    });

    let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
    let mut r = c.try_clone().unwrap();
    let reader = std::thread::spawn(move || read_stream(&mut r, 4));
    let sent_up = write_stream(&mut c, 1, TOTAL, TOTAL, None);
    c.shutdown(Shutdown::Write).unwrap(); // half-close: the download goes on
    let got_down = reader.join().unwrap();
    let (sent_down, got_up) = server.join().unwrap();
    assert_eq!(got_up, sent_up, "{method:?}: client → upstream");
    assert_eq!(got_down, sent_down, "{method:?}: upstream → client");
    assert_eq!(got_up.1, TOTAL);
    proxy.stop().unwrap();
}

#[test]
fn splice_moves_100_mb_each_way_in_order_across_a_half_close() {
    both_ways_with_half_close(ProxyMethod::Splice, 256 * 1024);
}

#[test]
fn splice_with_the_smallest_pipe_still_moves_every_byte() {
    // One page: the pipe fills on nearly every read, so draining before
    // reading again is exercised constantly.
    both_ways_with_half_close(ProxyMethod::Splice, 1);
}

#[test]
fn read_write_moves_100_mb_each_way_in_order_across_a_half_close() {
    both_ways_with_half_close(ProxyMethod::ReadWrite, 64 * 1024);
}

#[test]
fn a_reset_upstream_resets_the_client_and_the_proxy_lives_on() {
    for method in [ProxyMethod::Splice, ProxyMethod::ReadWrite] {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = start_proxy(upstream.local_addr().unwrap(), method, 64 * 1024);
        let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
        c.write_all(b"hello").unwrap();
        let (mut s, _) = upstream.accept().unwrap();
        let mut five = [0u8; 5];
        s.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"hello");
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt with a valid linger on a live socket.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        drop(s); // RST
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        let r = c.read(&mut buf);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{method:?}: the client must see the reset, got {r:?}"
        );
        // The proxy still forwards new connections.
        let mut c2 = TcpStream::connect(proxy.local_addr()).unwrap();
        c2.write_all(b"again").unwrap();
        let (mut s2, _) = upstream.accept().unwrap();
        s2.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"again");
        proxy.stop().unwrap();
    }
}

#[test]
fn no_upstream_resets_the_client() {
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let proxy = start_proxy(addr, ProxyMethod::Splice, 64 * 1024);
    let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4];
    let r = c.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    proxy.stop().unwrap();
}

#[test]
fn relay_reports_bytes_each_way() {
    let (a_peer, a) = tcp_pair();
    let (b, b_peer) = tcp_pair();
    let h = std::thread::spawn(move || relay(a, b, &RelayOptions::default()));
    let (mut a_peer, mut b_peer) = (a_peer, b_peer);
    a_peer.write_all(&[7u8; 1000]).unwrap();
    a_peer.shutdown(Shutdown::Write).unwrap();
    b_peer.write_all(&[9u8; 10]).unwrap();
    b_peer.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    b_peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, vec![7u8; 1000]);
    got.clear();
    a_peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, vec![9u8; 10]);
    let stats = h.join().unwrap().unwrap();
    assert_eq!((stats.a_to_b, stats.b_to_a), (1000, 10));
}

/// An echo upstream: every accepted connection gets its bytes back, then EOF.
fn echo_upstream(l: TcpListener, conns: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut handles = Vec::new();
        for _ in 0..conns {
            let (mut s, _) = l.accept().unwrap();
            handles.push(std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                std::io::copy(&mut r, &mut s).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
    })
}

#[test]
fn twenty_concurrent_connections_over_ipv6_each_get_their_own_bytes_back() {
    let Ok(upstream) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    let mut cfg = ProxyConfig::new("[::1]:0".parse().unwrap(), upstream.local_addr().unwrap());
    cfg.relay.idle_timeout = Some(Duration::from_secs(30));
    let proxy = Proxy::bind(cfg).unwrap().spawn().unwrap();
    let echo = echo_upstream(upstream, 20);
    let clients: Vec<_> = (0..20u64)
        .map(|i| {
            let addr = proxy.local_addr();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let mut r = c.try_clone().unwrap();
                let reader = std::thread::spawn(move || read_stream(&mut r, 100 + i));
                let sent = write_stream(&mut c, 200 + i, 5 * MB as u64, 5 * MB as u64, None);
                c.shutdown(Shutdown::Write).unwrap();
                assert_eq!(reader.join().unwrap(), sent, "connection {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    echo.join().unwrap();
    proxy.stop().unwrap();
}

#[test]
fn silent_connections_are_dropped_by_default_and_busy_ones_are_not() {
    let default = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:1".parse().unwrap(),
    );
    let t = default.relay.idle_timeout;
    assert!(
        t.is_some_and(|t| t <= Duration::from_secs(300)),
        "default idle timeout {t:?}"
    );

    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        upstream.local_addr().unwrap(),
    );
    cfg.relay.idle_timeout = Some(Duration::from_millis(300));
    let proxy = Proxy::bind(cfg).unwrap().spawn().unwrap();
    // Echoes each connection; the silent one ends in a reset, which is fine.
    let echo = std::thread::spawn(move || {
        let conns: Vec<_> = (0..2)
            .map(|_| {
                let (mut s, _) = upstream.accept().unwrap();
                std::thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    let _ = std::io::copy(&mut r, &mut s);
                })
            })
            .collect();
        conns.into_iter().for_each(|c| c.join().unwrap());
    });

    // A busy connection: a message every 100 ms for a second, echoed back.
    let addr = proxy.local_addr();
    let busy = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 4];
        for i in 0..10u32 {
            c.write_all(&i.to_be_bytes()).unwrap();
            c.read_exact(&mut b).unwrap();
            assert_eq!(u32::from_be_bytes(b), i);
            std::thread::sleep(Duration::from_millis(100));
        }
        c.shutdown(Shutdown::Write).unwrap();
    });
    // A silent one: cut off (reset) soon after 300 ms.
    let t0 = std::time::Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    let r = silent.read(&mut b);
    let held = t0.elapsed();
    assert!(
        matches!(&r, Ok(0)) || r.is_err(),
        "the silent connection got {r:?}"
    );
    assert!(
        held >= Duration::from_millis(250) && held < Duration::from_secs(2),
        "silent connection held {held:?}"
    );
    busy.join().unwrap();
    echo.join().unwrap();
    proxy.stop().unwrap();
}

//! MSG_ZEROCOPY over TCP and UDP, IPv4 and IPv6 loopback: every buffer comes
//! back exactly once, only through its completion, and the copied status is
//! reported (loopback always copies).

mod common;

use common::*;
use std::collections::HashSet;
use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;
use zc_linux::{send_plain, ZeroCopySender, ZeroCopyStats};

/// Buffer `i`: its index in the first 8 bytes, then seeded random bytes.
fn buffer(i: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len.max(8)];
    fastrand::Rng::with_seed(i).fill(&mut b[8..]);
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

fn check_exactly_once(stats: ZeroCopyStats, returned: &[u64], sent: u64) {
    assert_eq!(returned.len() as u64, sent, "every buffer comes back");
    let unique: HashSet<_> = returned.iter().collect();
    assert_eq!(unique.len(), returned.len(), "no buffer comes back twice");
    assert_eq!(stats.ids_completed, stats.ids_issued, "{stats:?}");
    assert_eq!(stats.ids_unexpected, 0, "{stats:?}");
    assert!(
        stats.notifications >= 1 && stats.notifications <= stats.ids_issued,
        "{stats:?}"
    );
}

fn tcp(bind: &str) -> Option<(TcpStream, TcpStream)> {
    let l = TcpListener::bind(bind).ok()?;
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    Some((c, s))
}

fn tcp_round(bind: &str) {
    let Some((tx, mut rx)) = tcp(bind) else {
        eprintln!("skipped: cannot bind {bind}");
        return;
    };
    const N: u64 = 3000;
    let sizes: Vec<usize> = {
        let mut r = fastrand::Rng::with_seed(5);
        (0..N).map(|_| r.usize(8..=256 * 1024)).collect()
    };
    let mut want = Digest::default();
    for (i, &len) in sizes.iter().enumerate() {
        want.update(&buffer(i as u64, len));
    }
    let reader = std::thread::spawn(move || {
        let mut d = Digest::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match rx.read(&mut buf).unwrap() {
                0 => return d.finish(),
                n => d.update(&buf[..n]),
            }
        }
    });
    let mut zc = ZeroCopySender::tcp(tx).unwrap();
    let mut returned = Vec::new();
    let mut copied = 0;
    for (i, &len) in sizes.iter().enumerate() {
        zc.send(buffer(i as u64, len)).unwrap();
        while let Some(c) = zc.pop_completed() {
            returned.push(u64::from_le_bytes(c.buf[..8].try_into().unwrap()));
            copied += c.copied as u64;
        }
    }
    zc.flush().unwrap();
    while let Some(c) = zc.pop_completed() {
        returned.push(u64::from_le_bytes(c.buf[..8].try_into().unwrap()));
        copied += c.copied as u64;
    }
    assert_eq!(zc.in_flight(), 0);
    let stats = zc.stats();
    check_exactly_once(stats, &returned, N);
    assert_eq!(
        returned,
        (0..N).collect::<Vec<_>>(),
        "buffers come back in send order"
    );
    // Loopback: the receive path copies, and the kernel says so.
    assert_eq!(stats.ids_copied, stats.ids_completed, "{stats:?}");
    assert_eq!(copied, N);
    eprintln!("{bind}: {stats:?}");
    drop(zc);
    assert_eq!(
        reader.join().unwrap(),
        want.finish(),
        "the receiver got every byte in order"
    );
}

#[test]
fn tcp_ipv4_every_buffer_completes_exactly_once_and_is_reported_copied() {
    tcp_round("127.0.0.1:0");
}

#[test]
fn tcp_ipv6_every_buffer_completes_exactly_once_and_is_reported_copied() {
    tcp_round("[::1]:0");
}

fn udp_round(bind: &str) {
    let Ok(rx) = UdpSocket::bind(bind) else {
        eprintln!("skipped: cannot bind {bind}");
        return;
    };
    let tx = UdpSocket::bind(bind).unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    const N: u64 = 4000;
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut seen = 0u64;
        while let Ok(n) = rx.recv(&mut buf) {
            let i = u64::from_le_bytes(buf[..8].try_into().unwrap());
            let len = 64 + (i as usize * 37) % 8000;
            assert_eq!(
                &buf[..n],
                &buffer(i, len)[..],
                "datagram {i} arrived intact"
            );
            seen += 1;
        }
        seen
    });
    let mut zc = ZeroCopySender::udp(tx).unwrap();
    let mut returned = Vec::new();
    for i in 0..N {
        // Boxed slices: any StableBuf works.
        zc.send(buffer(i, 64 + (i as usize * 37) % 8000).into_boxed_slice())
            .unwrap();
        if i % 64 == 0 {
            zc.poll_completions().unwrap();
        }
        while let Some(c) = zc.pop_completed() {
            assert!(c.copied, "loopback copies");
            returned.push(u64::from_le_bytes(c.buf[..8].try_into().unwrap()));
        }
    }
    zc.flush().unwrap();
    while let Some(c) = zc.pop_completed() {
        returned.push(u64::from_le_bytes(c.buf[..8].try_into().unwrap()));
    }
    let stats = zc.stats();
    eprintln!("{bind}: {stats:?}");
    check_exactly_once(stats, &returned, N);
    assert_eq!(stats.ids_copied, stats.ids_completed);
    let seen = reader.join().unwrap();
    assert!(seen > 0 && seen <= N, "received {seen} of {N}");
}

#[test]
fn a_buffer_sent_in_many_pieces_is_found_by_completions_that_arrive_between_them() {
    // A small send buffer and a fast reader: every 1 MB buffer takes several
    // sends, and the completions of its first pieces arrive while the later
    // pieces wait for socket space.
    let (tx, rx) = tcp("127.0.0.1:0").unwrap();
    set_buf(&tx, libc::SO_SNDBUF, 128 * 1024);
    let reader = std::thread::spawn(move || drain(rx, Pace::Fast));
    let mut zc = ZeroCopySender::tcp(tx).unwrap();
    let mut want = Digest::default();
    let mut returned = Vec::new();
    const N: u64 = 300;
    for i in 0..N {
        let b = buffer(i, MB);
        want.update(&b);
        zc.send(b).unwrap();
        while let Some(c) = zc.pop_completed() {
            returned.push(u64::from_le_bytes(c.buf[..8].try_into().unwrap()));
        }
    }
    zc.flush().unwrap();
    while let Some(c) = zc.pop_completed() {
        returned.push(u64::from_le_bytes(c.buf[..8].try_into().unwrap()));
    }
    let stats = zc.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.ids_issued > 2 * N,
        "buffers must have needed several sends: {stats:?}"
    );
    check_exactly_once(stats, &returned, N);
    drop(zc);
    assert_eq!(reader.join().unwrap(), want.finish());
}

#[test]
fn udp_ipv4_every_buffer_completes_exactly_once() {
    udp_round("127.0.0.1:0");
}

#[test]
fn udp_ipv6_every_buffer_completes_exactly_once() {
    udp_round("[::1]:0");
}

#[test]
fn an_unconnected_udp_socket_is_refused_with_a_fix() {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = ZeroCopySender::<Vec<u8>>::udp(s).err().expect("must fail");
    assert!(e.to_string().contains("UdpSocket::connect"), "{e}");
}

#[test]
fn a_clone_of_a_socket_in_use_is_refused_so_two_ledgers_never_share_ids() {
    let dst = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(dst.local_addr().unwrap()).unwrap();
    let clone = tx.try_clone().unwrap();
    let mut first = ZeroCopySender::udp(tx).unwrap();
    let e = ZeroCopySender::<Vec<u8>>::udp(clone)
        .err()
        .expect("a clone in use must be refused");
    assert!(e.to_string().contains("SO_ZEROCOPY on"), "{e}");
    // The first sender still owns the ids and gets its buffer back.
    first.send(vec![7u8; 1000]).unwrap();
    first.flush().unwrap();
    assert_eq!(first.pop_completed().map(|c| c.buf.len()), Some(1000));
}

#[test]
fn a_failed_send_hands_the_buffer_back() {
    let dst = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(dst.local_addr().unwrap()).unwrap();
    let mut zc = ZeroCopySender::udp(tx).unwrap();
    // Larger than any UDP datagram: EMSGSIZE before the kernel takes it.
    let err = zc.send(vec![0u8; 70_000]).unwrap_err();
    assert_eq!(err.buf.as_ref().map(Vec::len), Some(70_000), "{err}");
    assert_eq!(zc.stats().ids_issued, 0);
    // Empty buffers come straight back, in order.
    zc.send(Vec::new()).unwrap();
    assert!(zc.pop_completed().is_some());
}

#[test]
fn a_peer_that_goes_away_is_an_error_and_the_buffers_still_come_back() {
    let (tx, rx) = tcp("127.0.0.1:0").unwrap();
    let mut zc = ZeroCopySender::tcp(tx).unwrap();
    zc.set_timeout(Some(Duration::from_secs(5)));
    zc.send(vec![1u8; 1000]).unwrap();
    drop(rx);
    let mut err = None;
    for _ in 0..1000 {
        if let Err(e) = zc.send(vec![2u8; 64 * 1024]) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("sending to a closed peer must fail");
    assert_eq!(err.error.kind(), zc_core::ErrorKind::PeerGone, "{err}");
    zc.flush().unwrap();
    let mut n = 0;
    while zc.pop_completed().is_some() {
        n += 1;
    }
    assert!(
        n >= 1 && zc.in_flight() == 0,
        "{n} came back, {} held",
        zc.in_flight()
    );
}

#[test]
fn the_plain_twin_sends_everything() {
    let (tx, rx) = tcp("127.0.0.1:0").unwrap();
    let reader = std::thread::spawn(move || {
        drain(
            rx,
            Pace::Slow {
                slow_bytes: 64 * 1024,
            },
        )
    });
    tx.set_nonblocking(true).unwrap();
    let data = buffer(1, 3 * MB);
    send_plain(tx.as_fd(), &data, Some(Duration::from_secs(10))).unwrap();
    drop(tx);
    assert_eq!(reader.join().unwrap(), digest_bytes(&data));
}

/// Runs `f` on a thread of its own in a fresh network namespace (gone when
/// the thread ends) whose `net.core.optmem_max` is `optmem`; None when this
/// kernel or process cannot do that.
fn in_netns_with_optmem<T: Send + 'static>(
    optmem: u32,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) moves only this thread into a new
        // network namespace; no memory is involved.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "skipped: unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        // A child started from this thread inherits its namespace.
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        if !up.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("skipped: `ip link set lo up` failed in the new namespace: {up:?}");
            return None;
        }
        // optmem_max is per network namespace since Linux 6.9.
        if let Err(e) = std::fs::write("/proc/sys/net/core/optmem_max", optmem.to_string()) {
            eprintln!("skipped: optmem_max is not per-namespace on this kernel: {e}");
            return None;
        }
        Some(f())
    })
    .join()
    .unwrap()
}

fn udp_burst_without_reaping(n: u64) -> (ZeroCopyStats, Vec<u64>) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let mut zc = ZeroCopySender::udp(tx).unwrap();
    for i in 0..n {
        // No reaping between sends: pending notifications pile up in optmem.
        zc.send(buffer(i, 1000)).unwrap();
    }
    zc.flush().unwrap();
    let returned = std::iter::from_fn(|| zc.pop_completed())
        .map(|c| u64::from_le_bytes(c.buf[..8].try_into().unwrap()))
        .collect();
    (zc.stats(), returned)
}

#[test]
fn enobufs_from_a_full_optmem_is_waited_out_and_every_buffer_still_completes_once() {
    if !zc_core::sys::privileged_or_skip("enobufs (network namespace, sysctl)") {
        return;
    }
    // Room for one notification: the second send finds optmem full until
    // the first notification is read off the error queue.
    let Some((stats, returned)) = in_netns_with_optmem(1000, || udp_burst_without_reaping(2000))
    else {
        return;
    };
    eprintln!("{stats:?}");
    assert!(
        stats.enobufs > 0,
        "optmem_max 1000 must produce ENOBUFS: {stats:?}"
    );
    assert_eq!(
        stats.copy_fallbacks, 0,
        "reading the queue frees optmem, no copy needed: {stats:?}"
    );
    check_exactly_once(stats, &returned, 2000);
    assert_eq!(returned, (0..2000).collect::<Vec<_>>());
}

#[test]
fn enobufs_with_nothing_pending_falls_back_to_a_counted_plain_copy() {
    if !zc_core::sys::privileged_or_skip("enobufs fallback (network namespace, sysctl)") {
        return;
    }
    // Too small for even one notification: every send is refused.
    let Some((stats, returned)) = in_netns_with_optmem(0, || udp_burst_without_reaping(100)) else {
        return;
    };
    eprintln!("{stats:?}");
    assert_eq!(stats.ids_issued, 0, "{stats:?}");
    assert_eq!(stats.copy_fallbacks, 100, "{stats:?}");
    assert_eq!(returned, (0..100).collect::<Vec<_>>());
}

//! net_ring with --no-huge: frames sent come back byte-identical; an exhausted
//! mempool is counted and recovers; every mbuf is back after teardown; a
//! missing vdev and a second EAL start are clear errors.
//!
//! One test function: the EAL starts once per process.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst, Sender};
use zc_core::sys::privileged_or_skip;
use zc_core::wire::UdpFrameSpec;
use zc_core::ErrorKind;
use zc_dpdk::{Eal, EalConfig, Mempool, MempoolConfig, Port, PortConfig, RxConfig, TxConfig, Vdev};

fn spec() -> UdpFrameSpec {
    UdpFrameSpec {
        src_mac: [0x02, 0, 0, 0, 0, 1],
        dst_mac: [0x02, 0, 0, 0, 0, 2],
        vlan: None,
        src: SocketAddrV4::new([198, 18, 7, 1].into(), 40000),
        dst: SocketAddrV4::new([198, 18, 7, 2].into(), 9000),
        ttl: 64,
        udp_checksum: true,
    }
}

/// Payload of frame `i`: its index, then a pattern, of a length that varies.
fn payload(i: usize, out: &mut [u8]) -> usize {
    let len = 18 + (i * 37) % 1400;
    out[..8].copy_from_slice(&(i as u64).to_le_bytes());
    for (k, b) in out[8..len].iter_mut().enumerate() {
        *b = (i + k) as u8;
    }
    len
}

fn expected_frame(i: usize) -> Vec<u8> {
    let s = spec();
    let mut buf = vec![0u8; 2048];
    let len = payload(i, s.payload_mut(&mut buf));
    let n = s.finish(&mut buf, len).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn ring_round_trip_exhaustion_teardown_and_errors() {
    if !privileged_or_skip("ring_round_trip_exhaustion_teardown_and_errors") {
        return;
    }
    let cpus = || {
        let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
        (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap())
            .collect::<Vec<_>>()
    };
    let before = cpus();
    let eal = Eal::start(&EalConfig::no_huge(0).vdev("net_ring0", "")).unwrap();
    assert_eq!(
        cpus(),
        before,
        "the EAL leaves the caller's affinity alone unless pin_main"
    );

    // A missing driver is an error naming the device; the EAL stays up.
    let e = eal
        .add_vdev(&Vdev::new("net_nosuchdriver0", ""))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("net_nosuchdriver0"), "{e}");
    // A second start is refused before DPDK sees it.
    let e = Eal::start(&EalConfig::no_huge(0)).unwrap_err();
    assert!(e.to_string().contains("once per process"), "{e}");
    // A port that does not exist.
    let pool = Mempool::new(
        &eal,
        MempoolConfig {
            mbufs: 1023,
            cache: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let e = Port::open("net_ring9", &pool, PortConfig::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

    let port = Port::open("net_ring0", &pool, PortConfig::default()).unwrap();
    assert_eq!(port.driver(), "net_ring");
    let mut tx = port.sender(0, TxConfig::new(spec())).unwrap();
    let mut rx = port.receiver(0, RxConfig::default()).unwrap();
    assert!(
        port.receiver(0, RxConfig::default()).is_err(),
        "a queue has one owner"
    );

    // Round trip: N frames come back byte-identical, in order.
    const N: usize = 1000;
    let mut next = 0;
    let mut received = 0;
    while received < N {
        if next < N {
            let base = next;
            next += tx
                .send_burst((N - next).min(32), &mut |i, buf| payload(base + i, buf))
                .unwrap();
        }
        let burst = rx.recv_burst(Some(Duration::from_millis(100))).unwrap();
        for i in 0..burst.len() {
            let want = expected_frame(received);
            assert_eq!(burst.frame(i).unwrap(), &want[..], "frame {received}");
            let d = burst.get(i).unwrap();
            assert_eq!(d.payload, &want[42..], "payload {received}");
            assert_eq!(d.src, SocketAddr::V4(spec().src));
            assert_eq!(d.dst, SocketAddr::V4(spec().dst));
            received += 1;
        }
    }
    let s = rx.stats();
    assert_eq!((s.datagrams, s.malformed), (N as u64, 0));
    assert_eq!(tx.stats().datagrams, N as u64);

    // The Sender contract, with the receiver draining the ring.
    let mut got = 0u64;
    zc_core::contract::check_sender(&mut tx, &mut |want| {
        let end = Instant::now() + Duration::from_secs(2);
        while got < want && Instant::now() < end {
            got += rx
                .recv_burst(Some(Duration::from_millis(50)))
                .unwrap()
                .len() as u64;
        }
        got
    });

    // Exhaustion: fill the ring until the pool runs dry; sends then report
    // back-pressure and count failed allocations instead of failing.
    let total = pool.config().mbufs;
    let mut queued = 0u32;
    loop {
        let sent = tx.send_burst(32, &mut |i, buf| payload(i, buf)).unwrap();
        queued += sent as u32;
        if sent < 32 {
            break;
        }
    }
    assert_eq!(pool.available(), 0, "{queued} frames queued");
    assert_eq!(tx.send_burst(8, &mut |i, buf| payload(i, buf)).unwrap(), 0);
    let alloc_failures = tx
        .stats()
        .extra
        .iter()
        .find(|(k, _)| *k == "mbuf_alloc_failures")
        .unwrap()
        .1;
    assert!(alloc_failures >= 1, "{:?}", tx.stats());
    assert!(tx.stats().backpressure >= 1);
    // Recovery: receiving frees mbufs, and sending works again.
    {
        let burst = rx.recv_burst(Some(Duration::ZERO)).unwrap();
        assert_eq!(burst.len(), 32);
        assert_eq!(pool.available(), 0, "mbufs are held while the burst lives");
    }
    assert_eq!(pool.available(), 32, "dropping the burst returns its mbufs");
    assert_eq!(tx.send_burst(8, &mut |i, buf| payload(i, buf)).unwrap(), 8);

    // Drain, tear down, and count: every mbuf is back in the pool.
    let mut drained = 0;
    loop {
        let burst = rx.recv_burst(Some(Duration::from_millis(20))).unwrap();
        if burst.is_empty() {
            break;
        }
        drained += burst.len();
    }
    assert_eq!(drained as u32, queued - 32 + 8);

    // A destination filter: datagrams to another port are freed and counted.
    drop(rx);
    let other = RxConfig {
        accept: Some("0.0.0.0:9001".parse().unwrap()),
        group: None,
        ..RxConfig::default()
    };
    let mut rx = port.receiver(0, other).unwrap();
    assert_eq!(tx.send_burst(8, &mut |i, buf| payload(i, buf)).unwrap(), 8);
    assert!(rx
        .recv_burst(Some(Duration::from_millis(50)))
        .unwrap()
        .is_empty());
    assert_eq!(rx.stats().not_ours, 8);
    drop(rx);
    let ours = RxConfig {
        accept: Some(spec().dst),
        group: None,
        ..RxConfig::default()
    };
    let mut rx = port.receiver(0, ours).unwrap();
    assert_eq!(tx.send_burst(8, &mut |i, buf| payload(i, buf)).unwrap(), 8);
    assert_eq!(
        rx.recv_burst(Some(Duration::from_millis(50)))
            .unwrap()
            .len(),
        8
    );
    // A burst leaked with mem::forget: its mbufs go back at the next receive
    // (the pool count after teardown below would show them missing).
    assert_eq!(tx.send_burst(8, &mut |i, buf| payload(i, buf)).unwrap(), 8);
    std::mem::forget(rx.recv_burst(Some(Duration::from_millis(50))).unwrap());
    assert!(rx
        .recv_burst(Some(Duration::from_millis(20)))
        .unwrap()
        .is_empty());
    // And one leaked just before the receiver drops: the drop frees them.
    assert_eq!(tx.send_burst(8, &mut |i, buf| payload(i, buf)).unwrap(), 8);
    std::mem::forget(rx.recv_burst(Some(Duration::from_millis(50))).unwrap());

    drop(tx);
    drop(rx);
    drop(port);
    assert_eq!(pool.available(), total);
    assert_eq!(pool.in_use(), 0);
}

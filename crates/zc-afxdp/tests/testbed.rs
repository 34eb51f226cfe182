//! AF_XDP on the veth testbed: exact delivery, coexistence with the kernel
//! stack, fill-ring starvation and recovery, the sender, and clear errors.
//! Each test has its own testbed name and subnet (221–230).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use zc_afxdp::{
    open_receivers, AfXdpConfig, AfXdpQueues, AfXdpReceiver, AfXdpSender, AfXdpSenderConfig,
    XdpMode,
};
use zc_core::contract::{check_sender, UdpSink};
use zc_core::error::{Error, ErrorKind, Result};
use zc_core::handler::{HandlerConfig, HandlerReport};
use zc_core::md::MarketData;
use zc_core::sys::{monotonic_ns, privileged_or_skip};
use zc_core::{MarketDataHandler, Receiver, RxBurst, Sender};
use zc_testbed::{Testbed, TestbedConfig};

/// Counts allocations per thread, so that a receive loop can check it makes none.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // try_with: the slot may be gone while a thread is being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call unchanged to the system allocator; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from System.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: `ptr` came from System with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn message(seq: u32) -> [u8; 32] {
    let mut buf = [0u8; 32];
    MarketData {
        seq,
        symbol: seq % 7,
        price: 100.0 + f64::from(seq),
        volume: 1,
        timestamp_ns: monotonic_ns(),
    }
    .encode(&mut buf)
    .expect("32-byte buffer");
    buf
}

/// Sends `seqs` as market-data messages from a plain UDP socket in the peer
/// namespace to `dst`, pausing now and then so that a veth queue never overflows.
fn send_from_peer(tb: &Testbed, dst: SocketAddrV4, seqs: Vec<u32>) -> Result<()> {
    let src = tb.peer_addr;
    tb.spawn_in_peer(move || {
        let s = UdpSocket::bind((src, 0)).map_err(|e| Error::io("bind the generator socket", e))?;
        for (i, seq) in seqs.into_iter().enumerate() {
            s.send_to(&message(seq), dst)
                .map_err(|e| Error::io("send", e))?;
            if i % 64 == 63 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(())
    })?
    .join()
    .map_err(|_| Error::new(ErrorKind::Io, "generator thread panicked"))?
}

/// Receives on every receiver until the handler saw `messages` or `limit` passed.
fn receive(
    rxs: &mut [AfXdpReceiver],
    h: &mut MarketDataHandler,
    messages: u64,
    limit: Duration,
) -> HandlerReport {
    let end = Instant::now() + limit;
    while h.report().messages < messages && Instant::now() < end {
        for rx in rxs.iter_mut() {
            let burst = rx
                .recv_burst(Some(Duration::from_millis(2)))
                .expect("recv_burst");
            for d in burst.iter() {
                h.on_datagram(&d, monotonic_ns());
            }
        }
    }
    h.report()
}

fn stat(rx: &AfXdpReceiver, name: &str) -> u64 {
    rx.stats()
        .extra
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v)
}

#[test]
fn exact_delivery_with_gaps_and_duplicates_on_two_queues() {
    if !privileged_or_skip("exact_delivery_with_gaps_and_duplicates_on_two_queues") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zcxdp1", 221)
    })
    .unwrap();
    let port = 9100;
    let mut cfg = AfXdpConfig::new(&tb.host_if, port);
    cfg.queues = vec![0, 1];
    cfg.frames_per_queue = 2048;
    let mut rxs = open_receivers(&cfg).unwrap();
    assert_eq!(rxs.len(), 2);
    eprintln!("mode: {}", zc_core::Receiver::mode(&rxs[0]));

    // 1..=2000 without 100..=104 and 1500, with 10 and 20 sent twice.
    let mut seqs: Vec<u32> = (1..=2000)
        .filter(|s| !(100..=104).contains(s) && *s != 1500)
        .collect();
    seqs.insert(50, 10);
    seqs.insert(300, 20);
    let sent = seqs.len() as u64;
    send_from_peer(&tb, SocketAddrV4::new(tb.host_addr, port), seqs).unwrap();

    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(port),
        ..HandlerConfig::default()
    });
    let r = receive(&mut rxs, &mut h, sent, Duration::from_secs(10));
    assert_eq!(r.messages, sent, "every datagram sent arrived: {r:?}");
    assert_eq!(r.seq.received, 1994);
    assert_eq!(r.seq.duplicates, 2);
    assert_eq!(r.seq.gaps, 2);
    assert_eq!(r.seq.missing, 6);
    assert_eq!(
        r.drops.malformed + r.drops.not_ours + r.drops.not_market_data,
        0
    );
    let datagrams: u64 = rxs.iter().map(|rx| rx.stats().datagrams).sum();
    assert_eq!(datagrams, sent);
    for rx in &rxs {
        let s = rx.stats();
        assert_eq!(s.kernel_drops, Some(0), "{s:?}");
        assert_eq!(s.malformed, 0);
        assert_eq!(
            rx.fill_level(),
            2048,
            "every frame went back to the fill ring"
        );
    }
    drop(rxs);

    // The same through one handle over both queues, with 8 flows (8 source
    // ports) so that the peer spreads them over its transmit queues.
    let mut all = AfXdpQueues::open(&cfg).unwrap();
    let dst = SocketAddrV4::new(tb.host_addr, port);
    let peer = tb.peer_addr;
    tb.spawn_in_peer(move || {
        let socks: Vec<UdpSocket> = (0..8)
            .map(|_| UdpSocket::bind((peer, 0)).map_err(|e| Error::io("bind", e)))
            .collect::<Result<_>>()?;
        for seq in 1..=2000u32 {
            socks[seq as usize % 8]
                .send_to(&message(seq), dst)
                .map_err(|e| Error::io("send", e))?;
            if seq % 64 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(())
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap();
    // Queues are drained in turn, so datagrams of different flows interleave
    // differently than sent: count each sequence number instead of tracking order.
    let mut seen = vec![0u32; 2001];
    let mut got = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while got < 2000 && Instant::now() < end {
        let burst = all.recv_burst(Some(Duration::from_millis(5))).unwrap();
        for d in burst.iter() {
            let seq = MarketData::decode(d.payload).unwrap().seq as usize;
            seen[seq] += 1;
            got += 1;
        }
    }
    assert_eq!(got, 2000);
    assert!(
        seen[1..].iter().all(|&n| n == 1),
        "every sequence number exactly once"
    );
    let per_queue: Vec<u64> = all.queues().iter().map(|q| q.stats().datagrams).collect();
    eprintln!("datagrams per queue: {per_queue:?}");
    assert_eq!(all.stats().datagrams, 2000);
    assert_eq!(zc_core::Receiver::mode(&all).queue, None);
}

#[test]
fn other_ports_still_reach_kernel_sockets() {
    if !privileged_or_skip("other_ports_still_reach_kernel_sockets") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp2", 222)).unwrap();
    let feed = 9200;
    let other = UdpSocket::bind((tb.host_addr, 9201)).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rxs = open_receivers(&AfXdpConfig::new(&tb.host_if, feed)).unwrap();

    send_from_peer(
        &tb,
        SocketAddrV4::new(tb.host_addr, feed),
        (1..=100).collect(),
    )
    .unwrap();
    send_from_peer(
        &tb,
        SocketAddrV4::new(tb.host_addr, 9201),
        (1..=10).collect(),
    )
    .unwrap();

    let mut buf = [0u8; 64];
    for want in 1..=10u32 {
        let (n, _) = other
            .recv_from(&mut buf)
            .expect("the kernel socket on the other port receives");
        assert_eq!(MarketData::decode(&buf[..n]).unwrap().seq, want);
    }
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(feed),
        ..HandlerConfig::default()
    });
    let r = receive(&mut rxs, &mut h, 100, Duration::from_secs(5));
    assert_eq!(r.messages, 100);
    assert_eq!(r.seq.received, 100);
    let (matched, passed) = rxs[0].program().counters();
    assert_eq!(matched, 100);
    assert!(
        passed >= 10,
        "the 10 datagrams to the other port were passed to the kernel ({passed})"
    );

    // Warm now: receiving and handling 1000 more allocates nothing on this thread.
    let generator = {
        let (peer, dst) = (tb.peer_addr, SocketAddrV4::new(tb.host_addr, feed));
        tb.spawn_in_peer(move || {
            let s = UdpSocket::bind((peer, 0)).map_err(|e| Error::io("bind", e))?;
            for seq in 101..=1100u32 {
                s.send_to(&message(seq), dst)
                    .map_err(|e| Error::io("send", e))?;
                if seq % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Ok(())
        })
        .unwrap()
    };
    let before = ALLOCATIONS.with(Cell::get);
    let (mut got, end) = (0u64, Instant::now() + Duration::from_secs(10));
    while got < 1000 && Instant::now() < end {
        let burst = rxs[0]
            .recv_burst(Some(Duration::from_millis(5)))
            .expect("recv_burst");
        for d in burst.iter() {
            h.on_datagram(&d, monotonic_ns());
            got += 1;
        }
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    generator.join().unwrap().unwrap();
    assert_eq!(got, 1000);
    assert_eq!(
        allocations, 0,
        "the receive path allocated {allocations} times for 1000 datagrams"
    );
}

#[test]
fn a_starved_fill_ring_drops_counts_and_recovers() {
    if !privileged_or_skip("a_starved_fill_ring_drops_counts_and_recovers") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp3", 223)).unwrap();
    let port = 9300;
    let mut cfg = AfXdpConfig::new(&tb.host_if, port);
    cfg.frames_per_queue = 64;
    cfg.rx_ring = 256;
    cfg.batch = 32;
    let mut rxs = open_receivers(&cfg).unwrap();

    // Nobody receives while 500 datagrams arrive: only 64 frames to put them in.
    send_from_peer(
        &tb,
        SocketAddrV4::new(tb.host_addr, port),
        (1..=500).collect(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: Some(port),
        ..HandlerConfig::default()
    });
    let r = receive(&mut rxs, &mut h, 64, Duration::from_secs(5));
    assert_eq!(r.messages, 64, "{r:?}");
    let s = rxs[0].stats();
    assert_eq!(s.kernel_drops, Some(500 - 64), "{s:?}");
    assert!(stat(&rxs[0], "xdp_fill_ring_empty") > 0, "{s:?}");
    assert_eq!(
        rxs[0].fill_level(),
        64,
        "the frames are back in the fill ring"
    );

    // Recovery: with frames back, the next datagrams all arrive.
    send_from_peer(
        &tb,
        SocketAddrV4::new(tb.host_addr, port),
        (501..=540).collect(),
    )
    .unwrap();
    let r = receive(&mut rxs, &mut h, 64 + 40, Duration::from_secs(5));
    assert_eq!(r.messages, 104, "{r:?}");
    assert_eq!(rxs[0].stats().kernel_drops, Some(500 - 64), "no new drops");

    // A burst leaked with mem::forget: its frames return at the next receive,
    // and its datagrams are not handed out a second time.
    send_from_peer(
        &tb,
        SocketAddrV4::new(tb.host_addr, port),
        (541..=548).collect(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let leaked = rxs[0].recv_burst(Some(Duration::from_secs(2))).unwrap();
    assert!(!leaked.is_empty());
    std::mem::forget(leaked);
    assert!(
        rxs[0].recv_burst(Some(Duration::ZERO)).unwrap().is_empty(),
        "a leaked burst's datagrams are not handed out again"
    );
    assert_eq!(
        rxs[0].fill_level(),
        64,
        "the leaked burst's frames are back in the fill ring"
    );
}

#[test]
fn the_sender_reaches_a_kernel_socket_with_valid_checksums() {
    if !privileged_or_skip("the_sender_reaches_a_kernel_socket_with_valid_checksums") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp4", 224)).unwrap();
    let sink = UdpSocket::bind((tb.host_addr, 9400)).unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cfg = AfXdpSenderConfig::new(&tb.peer_if, SocketAddrV4::new(tb.host_addr, 9400));
    let n = 1000u32;
    let generator = tb
        .spawn_in_peer(move || {
            let mut tx = AfXdpSender::open(&cfg)?;
            let mut next = 1u32;
            let end = Instant::now() + Duration::from_secs(10);
            while next <= n && Instant::now() < end {
                let want = (n + 1 - next).min(16) as usize;
                let sent = tx.send_burst(want, &mut |i, buf| {
                    buf[..32].copy_from_slice(&message(next + i as u32));
                    32
                })?;
                next += sent as u32;
                // Pace to the kernel socket's receive buffer.
                std::thread::sleep(Duration::from_micros(200));
            }
            let flushed = tx.flush(Duration::from_secs(5))?;
            // A payload longer than a frame is refused, and nothing from that slot on is sent.
            let max = tx.max_payload();
            let over = tx.send_burst(2, &mut |i, _| if i == 0 { max + 1 } else { 32 });
            assert!(
                over.is_err_and(|e| e.to_string().contains("exceeds")),
                "over-long payload refused"
            );
            Ok((next - 1, flushed, tx.stats(), tx.mode().to_string()))
        })
        .unwrap();
    let mut buf = [0u8; 64];
    for want in 1..=n {
        let (len, from) = sink
            .recv_from(&mut buf)
            .expect("datagram from the AF_XDP sender");
        assert_eq!(len, 32);
        assert_eq!(MarketData::decode(&buf[..len]).unwrap().seq, want);
        assert_eq!(from, std::net::SocketAddr::from((tb.peer_addr, 40000)));
    }
    let (sent, flushed, stats, mode) = generator.join().unwrap().unwrap();
    eprintln!("sender: {mode} {stats:?}");
    assert_eq!(sent, n);
    assert!(flushed, "every frame completed");
    assert_eq!(stats.datagrams, u64::from(n));
}

#[test]
fn errors_name_what_is_missing() {
    if !privileged_or_skip("errors_name_what_is_missing") {
        return;
    }
    let e = open_receivers(&AfXdpConfig::new("zcnosuch9", 9000))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("zcnosuch9"), "{e}");

    let tb = Testbed::create(&TestbedConfig {
        queues: 2,
        ..TestbedConfig::new("zcxdp5", 225)
    })
    .unwrap();
    let mut cfg = AfXdpConfig::new(&tb.host_if, 9500);
    cfg.queues = vec![2];
    let e = open_receivers(&cfg).err().unwrap();
    assert!(e.to_string().contains("queue 2 is out of range"), "{e}");
    assert!(e.fix().is_some_and(|f| f.contains("ethtool")), "{e}");

    cfg.queues = vec![0];
    cfg.ports = vec![];
    let e = open_receivers(&cfg).err().unwrap();
    assert!(e.to_string().contains("UDP destination ports"), "{e}");

    // A second receiver set on the same interface: the first owns its XDP hook.
    cfg.ports = vec![9500];
    let mut first = open_receivers(&cfg).unwrap();
    let e = open_receivers(&cfg).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");

    // The interface disappears under a waiting receiver: an error, not a hang.
    let host_if = tb.host_if.clone();
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        std::process::Command::new("ip")
            .args(["link", "del", &host_if])
            .status()
    });
    let started = Instant::now();
    let e = loop {
        match first[0].recv_burst(None) {
            Err(e) => break e,
            Ok(b) => assert!(
                b.is_empty() && started.elapsed() < Duration::from_secs(5),
                "no traffic expected"
            ),
        }
    };
    assert!(remover.join().unwrap().unwrap().success());
    assert_eq!(e.kind(), ErrorKind::PeerGone, "{e}");
    assert!(e.to_string().contains("AF_XDP socket failed"), "{e}");
}

#[test]
fn the_sender_keeps_the_send_contract() {
    if !privileged_or_skip("the_sender_keeps_the_send_contract") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp9", 229)).unwrap();
    let mut sink = UdpSink::bind((tb.host_addr, 9401).into()).unwrap();
    let cfg = AfXdpSenderConfig::new(&tb.peer_if, SocketAddrV4::new(tb.host_addr, 9401));
    let (to_check, checked) = std::sync::mpsc::channel::<u64>();
    let (to_sender, counted) = std::sync::mpsc::channel::<u64>();
    let generator = tb
        .spawn_in_peer(move || {
            let mut tx = AfXdpSender::open(&cfg)?;
            check_sender(&mut tx, &mut |want| {
                to_check.send(want).unwrap();
                counted.recv().unwrap()
            });
            Ok(())
        })
        .unwrap();
    // The sink lives in the host namespace: it counts for the sender's check.
    while let Ok(want) = checked.recv() {
        to_sender.send(sink.received(want)).unwrap();
    }
    generator.join().unwrap().unwrap();
}

/// With `rx_timestamps`, every frame carries the XDP program's
/// CLOCK_MONOTONIC stamp in its metadata, in native and in generic mode:
/// each stamp lies between the sender's clock reading (in the message) and
/// the receiver's after the burst. In native mode the program is the
/// device-bound one that also asks the driver for the NIC's stamp (veth
/// answers with the packet's hardware stamp, which a software sender never
/// sets, so every stamp here is still the hook's). Without the option, no
/// frame has one.
#[test]
fn every_frame_carries_the_xdp_programs_receive_stamp() {
    if !privileged_or_skip("every_frame_carries_the_xdp_programs_receive_stamp") {
        return;
    }
    let tb = Testbed::create(&TestbedConfig::new("zcxdp10", 230)).unwrap();
    let port = 9650;
    let dst = SocketAddrV4::new(tb.host_addr, port);
    for (mode, stamps) in [
        (XdpMode::Native, true),
        (XdpMode::Generic, true),
        (XdpMode::Native, false),
    ] {
        let mut cfg = AfXdpConfig::new(&tb.host_if, port);
        cfg.addrs = vec![tb.host_addr];
        cfg.xdp_mode = mode;
        cfg.rx_timestamps = stamps;
        let mut rx = open_receivers(&cfg).unwrap().pop().unwrap();
        let said = |words: &str| rx.mode().details.iter().any(|d| d.contains(words));
        let expected = match (stamps, mode) {
            (false, _) => None,
            (true, XdpMode::Native) => Some("bpf_xdp_metadata_rx_timestamp, device-bound program"),
            (true, _) => Some("no NIC stamp: generic mode"),
        };
        assert_eq!(said("rx timestamps:"), stamps, "{:?}", rx.mode().details);
        if let Some(words) = expected {
            assert!(said(words), "{mode:?}: {:?}", rx.mode().details);
        }
        send_from_peer(&tb, dst, (0..500).collect()).unwrap();
        let (mut got, mut stamped) = (0, 0);
        let end = Instant::now() + Duration::from_secs(5);
        while got < 500 && Instant::now() < end {
            let burst = rx.recv_burst(Some(Duration::from_millis(50))).unwrap();
            let now = monotonic_ns();
            for d in burst.iter() {
                got += 1;
                let sent = MarketData::decode(d.payload).unwrap().timestamp_ns;
                if let Some(ts) = d.rx_timestamp {
                    stamped += 1;
                    assert_eq!(ts.clock, zc_core::Clock::Monotonic);
                    assert!(
                        sent <= ts.ns && ts.ns <= now,
                        "{mode:?}: sent {sent} stamped {} received by {now}",
                        ts.ns
                    );
                }
            }
        }
        assert_eq!(got, 500, "{mode:?}");
        assert_eq!(stamped, if stamps { 500 } else { 0 }, "{mode:?}");
        assert_eq!(stat(&rx, "xdp_unstamped_all_queues"), 0, "{mode:?}");
        assert_eq!(stat(&rx, "xdp_nic_stamped_all_queues"), 0, "{mode:?}");
    }
}

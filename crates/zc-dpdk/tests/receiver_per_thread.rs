//! One port for the process, a new receiver on a new thread for each run: what
//! `zc bench` does with the ports the `zc` umbrella keeps. Every run must get
//! every datagram, also after the receive path has cycled through the whole
//! mempool.
//!
//! This failed with pools from `rte_pktmbuf_pool_create` under `--no-huge`:
//! their mbufs sit one per 4 KiB page, net_af_xdp registers a UMEM covering
//! only the first 58 % of them, and the kernel drops the frames meant for the
//! rest. A receiver on the EAL's main thread hid it (its per-lcore cache keeps
//! reusing the same few mbufs); receivers on other threads allocate from the
//! pool's ring in order and reached the bad mbufs in the third run:
//! 2000, 2000, 734, 0, 0 received.

#[path = "common/subnet.rs"]
mod subnet;

use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use zc_core::backend::{Receiver, RxBurst};
use zc_core::Error;
use zc_dpdk::{
    open_interface, Eal, EalConfig, IfaceDriver, Mempool, MempoolConfig, Port, PortConfig, RxConfig,
};
use zc_testbed::{Testbed, TestbedConfig};

/// Datagrams per run.
const N: u64 = 2000;
/// Runs: together they pass more mbufs through the receive path than the pool holds.
const RUNS: u64 = 6;

/// One run: a receiver on a new thread takes exactly `N` datagrams sent from
/// the peer namespace, then is dropped with its thread. Returns how many it got.
fn run(tb: &Testbed, port: &Port, dst: SocketAddrV4) -> u64 {
    let port = port.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let rx_thread = std::thread::spawn(move || {
        let mut rx = port
            .receiver(
                0,
                RxConfig {
                    batch: 64,
                    accept: Some(dst),
                    ..RxConfig::default()
                },
            )
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got = 0u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < N && Instant::now() < deadline {
            got += rx
                .recv_burst(Some(Duration::from_millis(20)))
                .unwrap()
                .len() as u64;
        }
        // Anything beyond N (a datagram delivered twice) would show up now.
        for _ in 0..5 {
            got += rx
                .recv_burst(Some(Duration::from_millis(10)))
                .unwrap()
                .len() as u64;
        }
        got
    });
    ready_rx.recv().unwrap();
    let peer = tb.peer_addr;
    let generator = tb
        .spawn_in_peer(move || {
            let s = UdpSocket::bind((peer, 0)).map_err(|e| Error::io("bind the generator", e))?;
            for i in 0..N {
                s.send_to(&i.to_le_bytes(), dst)
                    .map_err(|e| Error::io("send a datagram", e))?;
                // At most 16 kpps, so that a receiver descheduled on a busy
                // machine for up to ~100 ms overflows no ring: exact counts.
                if i % 16 == 15 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(())
        })
        .unwrap();
    generator.join().unwrap().unwrap();
    rx_thread.join().unwrap()
}

/// Opens `driver` on a new testbed the way the `zc` command does (shared EAL
/// started from a thread that then ends, default pool) and checks every run.
fn every_run_gets_everything(name: &str, subnet: u8, driver: IfaceDriver) {
    let tb = Testbed::create(&TestbedConfig::new(name, subnet)).unwrap();
    // A port of its own: other tests on this machine may hold 0.0.0.0:9000.
    let port_no = 41_000 + u16::from(subnet);
    // A socket on the host end keeps the kernel from answering with ICMP.
    let _absorb = UdpSocket::bind((tb.host_addr, port_no)).unwrap();
    let dst = SocketAddrV4::new(tb.host_addr, port_no);
    let iface = tb.host_if.clone();
    let port = std::thread::spawn(move || {
        let eal = Eal::shared(&EalConfig::no_huge(0)).unwrap();
        let pool = Mempool::new(&eal, MempoolConfig::default()).unwrap();
        open_interface(&eal, &iface, driver, &pool, PortConfig::default()).unwrap()
    })
    .join()
    .unwrap();
    let pool = port.mempool().clone();
    assert!(
        RUNS * N > u64::from(pool.config().mbufs),
        "the runs must cycle through the whole pool"
    );
    assert!(
        pool.packed(),
        "--no-huge gives one IOVA-contiguous zone for the pool"
    );
    assert_eq!(pool.outside_af_xdp_umem(), 0);
    let in_use = pool.in_use();

    let got: Vec<u64> = (0..RUNS).map(|_| run(&tb, &port, dst)).collect();
    let stats = port.stats().unwrap();
    eprintln!("{}: received per run {got:?}; {stats:?}", driver.driver());
    assert!(
        got.iter().all(|&g| g == N),
        "{}: every run gets all {N}: {got:?}",
        driver.driver()
    );
    assert_eq!(stats.imissed, 0, "{}: no frame dropped", driver.driver());
    assert_eq!(
        pool.in_use(),
        in_use,
        "{}: receivers gave back every mbuf",
        driver.driver()
    );
}

#[test]
fn receivers_on_new_threads_each_get_every_datagram() {
    if !zc_core::sys::privileged_or_skip("receivers_on_new_threads_each_get_every_datagram") {
        return;
    }
    // In turn: one EAL for both, and less load on a shared machine.
    every_run_gets_everything("zcdr1", subnet::free_subnet(231), IfaceDriver::AfXdp);
    every_run_gets_everything("zcdr2", subnet::free_subnet(232), IfaceDriver::AfPacket);
}

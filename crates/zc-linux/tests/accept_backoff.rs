//! The accept loop out of descriptors: it backs off and logs a summary now
//! and then instead of a warning every few milliseconds, and serves again once
//! descriptors are free. Its own test binary, because it lowers the process's
//! descriptor limit.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zc_linux::{Proxy, ProxyConfig};

/// Counts warnings; nothing else about tracing matters here.
struct CountWarnings(Arc<AtomicU64>);

impl tracing::Subscriber for CountWarnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if *e.metadata().level() <= tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_nofile(r: libc::rlimit) {
    // SAFETY: a valid rlimit value.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_quietly_and_recovers() {
    let warnings = Arc::new(AtomicU64::new(0));
    tracing::subscriber::set_global_default(CountWarnings(warnings.clone())).unwrap();

    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        upstream.local_addr().unwrap(),
    );
    let proxy = Proxy::bind(cfg).unwrap().spawn().unwrap();
    let addr = proxy.local_addr();

    // Leave the process no descriptor but the one the client takes.
    let saved = nofile();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    set_nofile(libc::rlimit {
        rlim_cur: open + 8,
        rlim_max: saved.rlim_max,
    });
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    filler.pop();
    // Read before connecting: the proxy's first warning can come before
    // `connect` returns here.
    let before = warnings.load(Ordering::Relaxed);
    let mut client = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let logged = warnings.load(Ordering::Relaxed) - before;

    drop(filler);
    set_nofile(saved);
    client.write_all(b"hello").unwrap();
    let (mut up, _) = upstream.accept().unwrap();
    let mut b = [0u8; 5];
    up.read_exact(&mut b).unwrap();
    assert_eq!(
        &b, b"hello",
        "the proxy serves again once descriptors are free"
    );
    assert!(
        (1..=2).contains(&logged),
        "{logged} warnings in 1.5 s without descriptors"
    );
    proxy.stop().unwrap();
}

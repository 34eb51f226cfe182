//! `--metrics ADDR`: the receive counters in the Prometheus text exposition
//! format (version 0.0.4) over plain HTTP, for long runs watched by a scraper.
//!
//! The receive loop renders the page once a second (when it prints its status
//! line); a scrape gets the latest page, so it never touches the hot path.
//! One small thread serves it, one connection at a time: a scraper is a
//! single client that asks every few seconds.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use zc_core::backend::RxStats;
use zc_core::handler::HandlerReport;
use zc_core::{Error, Result};

/// The endpoint: a listener thread and the page it serves.
pub struct MetricsServer {
    page: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` (port 0 picks one; see [`Self::local_addr`]).
    pub fn start(addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| Error::io(format!("listen for --metrics on {addr}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("getsockname", e))?;
        // Non-blocking accept, so the thread notices `stop` within a tick.
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("set the metrics listener non-blocking", e))?;
        let page = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (page, stop) = (Arc::clone(&page), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("zc-metrics".into())
                .spawn(move || serve(&listener, &page, &stop))
                .map_err(|e| Error::io("spawn the metrics thread", e))?
        };
        Ok(Self {
            page,
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the page with these counters.
    pub fn update(&self, backend: &str, elapsed_s: f64, r: &HandlerReport, s: &RxStats) {
        let text = render(backend, elapsed_s, r, s);
        *self.page.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, page: &Mutex<String>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, peer)) => {
                if let Err(e) = answer(conn, page) {
                    tracing::debug!("metrics: {peer}: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!("metrics: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Reads one request head (at most 8 KiB, 2 s) and answers it.
fn answer(mut conn: TcpStream, page: &Mutex<String>) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 || head.len() + n > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics" | b"/")) => (
            "200 OK",
            page.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        ),
        (Some(b"GET"), _) => ("404 Not Found", "only /metrics is served\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET is served\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes())
}

/// The exposition text: counters end in `_total`, times are in seconds.
fn render(backend: &str, elapsed_s: f64, r: &HandlerReport, s: &RxStats) -> String {
    let mut out = String::with_capacity(2048);
    let label = format!("backend=\"{backend}\"");
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (extra, v) in samples {
            let sep = if extra.is_empty() { "" } else { "," };
            let _ = writeln!(out, "{name}{{{label}{sep}{extra}}} {v}");
        }
    };
    let one = |v: u64| [("", v as f64)];
    metric(
        "zc_recv_elapsed_seconds",
        "gauge",
        "Seconds since the receive loop started.",
        &[("", elapsed_s)],
    );
    metric(
        "zc_recv_messages_total",
        "counter",
        "Market-data messages handled (duplicates included).",
        &one(r.messages.max(s.datagrams)),
    );
    metric(
        "zc_recv_datagrams_total",
        "counter",
        "Datagrams the backend handed out.",
        &one(s.datagrams),
    );
    metric(
        "zc_recv_bytes_total",
        "counter",
        "Payload bytes the backend handed out.",
        &one(s.bytes),
    );
    metric(
        "zc_recv_gaps_total",
        "counter",
        "Jumps ahead in the sequence that opened a gap.",
        &one(r.seq.gaps),
    );
    metric(
        "zc_recv_missing",
        "gauge",
        "Sequence numbers skipped and not (yet) arrived.",
        &one(r.seq.missing),
    );
    metric(
        "zc_recv_duplicates_total",
        "counter",
        "Arrivals of a sequence number already received.",
        &one(r.seq.duplicates),
    );
    metric(
        "zc_recv_late_total",
        "counter",
        "Sequence numbers that arrived after a later one, filling a gap.",
        &one(r.seq.late),
    );
    if let Some(d) = s.kernel_drops {
        metric(
            "zc_recv_kernel_drops_total",
            "counter",
            "Datagrams the kernel or NIC dropped before the backend saw them.",
            &one(d),
        );
    }
    metric(
        "zc_recv_handler_drops_total",
        "counter",
        "Datagrams the handler dropped, by reason.",
        &[
            ("reason=\"malformed\"", r.drops.malformed as f64),
            ("reason=\"not_ours\"", r.drops.not_ours as f64),
            ("reason=\"not_market_data\"", r.drops.not_market_data as f64),
        ],
    );
    let secs = |ns: u64| ns as f64 / 1e9;
    metric(
        "zc_recv_latency_seconds",
        "gauge",
        "One-way latency from the sender's timestamp, percentiles since the start.",
        &[
            ("quantile=\"0.5\"", secs(r.latency.p50)),
            ("quantile=\"0.99\"", secs(r.latency.p99)),
            ("quantile=\"0.999\"", secs(r.latency.p999)),
            ("quantile=\"1\"", secs(r.latency.max)),
        ],
    );
    out
}

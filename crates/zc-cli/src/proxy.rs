//! `zc proxy`: a TCP proxy on splice (or its read/write twin).

use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;
use zc_core::Result;
use zc_linux::{Proxy, ProxyConfig, ProxyMethod};

/// Forward TCP connections through splice, without copying through user space.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Each accepted connection is forwarded to --upstream, both directions, through
one long-lived pipe per direction; half-close and resets are passed on.
Prints the address it listens on, then forwards until Ctrl-C.

Examples:
  zc proxy --listen 127.0.0.1:9000 --upstream 127.0.0.1:8080
  zc proxy --listen 127.0.0.1:9000 --upstream 127.0.0.1:8080 --method read-write")]
pub struct ProxyArgs {
    /// Address and port clients connect to (port 0 picks a free one).
    #[arg(long)]
    listen: SocketAddr,
    /// Where connections are forwarded.
    #[arg(long)]
    upstream: SocketAddr,
    /// splice or read-write.
    #[arg(long, default_value = "splice")]
    method: String,
    /// Pipe (or buffer) size per direction, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    buffer: usize,
    /// Connections open at once; more are closed on accept.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Seconds without traffic after which a connection is dropped (default: never).
    #[arg(long)]
    idle_timeout: Option<f64>,
}

pub fn run(a: ProxyArgs) -> Result<ExitCode> {
    let mut cfg = ProxyConfig::new(a.listen, a.upstream);
    cfg.relay.method = a.method.parse::<ProxyMethod>()?;
    cfg.relay.buffer = a.buffer;
    cfg.relay.idle_timeout = a
        .idle_timeout
        .map(|s| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                zc_core::Error::config(format!("--idle-timeout {s} is not a duration"))
            })
        })
        .transpose()?;
    cfg.max_connections = a.max_connections;
    let method = cfg.relay.method;
    let proxy = Proxy::bind(cfg)?.spawn()?;
    println!(
        "zc proxy: {} -> {} with {method:?}",
        proxy.local_addr(),
        a.upstream
    );
    let _ = std::io::stdout().flush();
    let stop = crate::stop_flag();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    proxy.stop()?;
    Ok(ExitCode::SUCCESS)
}

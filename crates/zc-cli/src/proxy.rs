//! `zc proxy`: a TCP proxy on splice (or its read/write twin).

use crate::names::RelayMethod;
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

A connection with no traffic either way for --idle-timeout is reset. Each
connection takes 7 descriptors with splice (3 with read-write), so the
connection cap is sized from the descriptor limit (ulimit -n) unless given;
clients beyond it are reset at once. Limits: docs/SECURITY.md.

Prints the address it listens on and the connection cap, then forwards until
Ctrl-C.

Examples:
  zc proxy --listen 127.0.0.1:9000 --upstream 127.0.0.1:8080
  zc proxy --listen 127.0.0.1:9000 --upstream 127.0.0.1:8080 --method read-write
  zc proxy --listen 127.0.0.1:9000 --upstream 127.0.0.1:8080 --idle-timeout never")]
pub struct ProxyArgs {
    /// Address and port clients connect to (port 0 picks a free one).
    #[arg(long)]
    listen: SocketAddr,
    /// Where connections are forwarded.
    #[arg(long)]
    upstream: SocketAddr,
    /// How bytes move between the two sockets.
    #[arg(long, value_enum, default_value_t = RelayMethod::Splice)]
    method: RelayMethod,
    /// Pipe (or buffer) size per direction, in bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    buffer: usize,
    /// Connections relayed at once; more are reset. Default: as many as the
    /// descriptor limit allows, at most 256.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds without traffic either way after which a connection is reset,
    /// or `never`.
    #[arg(long, default_value = "60", value_parser = idle)]
    idle_timeout: Idle,
}

/// `--idle-timeout`: seconds, or never.
#[derive(Clone, Copy, Debug)]
struct Idle(Option<Duration>);

fn idle(s: &str) -> std::result::Result<Idle, String> {
    if s == "never" {
        return Ok(Idle(None));
    }
    crate::serve::seconds(s).map(|d| Idle(Some(d)))
}

pub fn run(a: ProxyArgs) -> Result<ExitCode> {
    let mut cfg = ProxyConfig::new(a.listen, a.upstream);
    cfg.relay.method = ProxyMethod::from(a.method);
    cfg.relay.buffer = a.buffer;
    cfg.relay.idle_timeout = a.idle_timeout.0;
    cfg.max_connections = a.max_connections;
    let method = cfg.relay.method;
    let proxy = Proxy::bind(cfg)?;
    let cap = proxy.max_connections();
    let proxy = proxy.spawn()?;
    let idle = a
        .idle_timeout
        .0
        .map_or("never".to_string(), |d| format!("{d:?}"));
    println!(
        "zc proxy: {} -> {} with {method:?}, up to {cap} connections, idle timeout {idle}",
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

//! `zc serve`: a static HTTP/1.1 file server on sendfile (or its twins).

use crate::names::ServeMethod;
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;
use zc_core::Result;
use zc_linux::{FileMethod, FileServer, ServeConfig};

/// Serve a folder over HTTP/1.1 with sendfile.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
GET and HEAD, single byte ranges, 404/416, keep-alive. Nothing outside the
folder is reachable: `..`, encoded dots and symbolic links are refused (403).
Only regular files are opened (their type is checked first); names starting
with a dot (.git, .env) are 404 unless --dotfiles.

Slow or greedy clients cannot hold the server: a request must start within
--idle-timeout and its head must be whole within --head-timeout of its first
byte (else 408); each MiB of a response must be taken within --idle-timeout
plus its time at --min-send-rate (else reset); clients beyond the connection
cap get 503. Limits and what is refused: docs/SECURITY.md.

Prints the address it listens on and the connection cap, then serves until
Ctrl-C.

Examples:
  zc serve --root ./www --listen 0.0.0.0:8080
  zc serve --root ./www --method read-write   # the plain twin, to compare")]
pub struct ServeArgs {
    /// Folder to serve (required: there is no default, so that a server is
    /// never started on whatever folder the shell happens to be in).
    #[arg(long)]
    root: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How file bodies are sent.
    #[arg(long, value_enum, default_value_t = ServeMethod::Sendfile)]
    method: ServeMethod,
    /// Connections served at once; more get 503. Default: as many as the
    /// descriptor limit (ulimit -n) allows at 4 each, at most 256.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds a connection may wait for a request to start, and the grace
    /// each MiB of a response gets.
    #[arg(long, default_value = "30", value_parser = seconds)]
    idle_timeout: Duration,
    /// Seconds a request head may take as a whole, from its first byte.
    #[arg(long, default_value = "10", value_parser = seconds)]
    head_timeout: Duration,
    /// Slowest transfer a client may take a response at, in bytes per second.
    #[arg(long, default_value_t = 16 * 1024)]
    min_send_rate: u64,
    /// Serve names starting with a dot too (e.g. .well-known).
    #[arg(long)]
    dotfiles: bool,
}

/// A positive number of seconds, as a duration (a clap value parser).
pub(crate) fn seconds(s: &str) -> std::result::Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    match Duration::try_from_secs_f64(v) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "`{s}` is not a positive number of seconds a clock can hold"
        )),
    }
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let method = FileMethod::from(a.method);
    let mut cfg = ServeConfig::new(&a.root, a.listen);
    cfg.method = method;
    cfg.max_connections = a.max_connections;
    cfg.idle_timeout = a.idle_timeout;
    cfg.head_timeout = a.head_timeout;
    cfg.min_send_rate = a.min_send_rate;
    cfg.dotfiles = a.dotfiles;
    let server = FileServer::bind(cfg)?;
    let cap = server.max_connections();
    let server = server.spawn()?;
    println!(
        "zc serve: {} on http://{} with {method:?}, up to {cap} connections",
        a.root.display(),
        server.local_addr()
    );
    let _ = std::io::stdout().flush();
    let stop = crate::stop_flag();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop()?;
    Ok(ExitCode::SUCCESS)
}

//! `zc serve`: a static HTTP/1.1 file server on sendfile (or its twins).

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
Prints the address it listens on, then serves until Ctrl-C.

Examples:
  zc serve --root ./www --listen 0.0.0.0:8080
  zc serve --root ./www --method read-write   # the plain twin, to compare")]
pub struct ServeArgs {
    /// Folder to serve.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How file bodies are sent: sendfile, read-write or mmap.
    #[arg(long, default_value = "sendfile")]
    method: String,
    /// Connections open at once; more are closed on accept.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Seconds a client may stay silent before its connection is closed.
    #[arg(long, default_value_t = 30.0)]
    idle_timeout: f64,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let method: FileMethod = a.method.parse()?;
    let idle = Duration::try_from_secs_f64(a.idle_timeout).map_err(|_| {
        zc_core::Error::config(format!(
            "--idle-timeout {} is not a duration",
            a.idle_timeout
        ))
    })?;
    let mut cfg = ServeConfig::new(&a.root, a.listen);
    cfg.method = method;
    cfg.max_connections = a.max_connections;
    cfg.idle_timeout = idle;
    let server = FileServer::bind(cfg)?.spawn()?;
    println!(
        "zc serve: {} on http://{} with {method:?}",
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

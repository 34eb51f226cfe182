//! `zc`: send and receive market-data feeds with any zc backend, compare the
//! backends side by side on a veth testbed, and check what this machine supports.

mod bench;
mod capture;
mod doctor;
mod feed;
mod offline;
mod proxy;
mod recv;
mod replay;
mod report;
mod send;
mod serve;
mod svg;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Zero-copy and kernel-bypass UDP market-data I/O, measured.
///
/// Every backend receives through the same handler (decode, sequence gaps and
/// duplicates, one-way latency, per-symbol state), so their figures compare.
/// Backends in this build: see `zc doctor` or `zc bench --help`.
#[derive(Parser)]
#[command(name = "zc", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send a feed: open-loop at a fixed rate (or as fast as possible), with
    /// deliberate gaps and duplicates on request.
    Send(send::SendArgs),
    /// Receive a feed with any backend and report rate, gaps, duplicates,
    /// drops and latency once a second; optionally capture it to pcap, or run
    /// the handler over a capture offline (--pcap).
    Recv(recv::RecvArgs),
    /// Send a capture's UDP payloads through any sender backend: original
    /// pace, scaled, fixed rate or as fast as possible.
    Replay(replay::ReplayArgs),
    /// Set up a veth testbed and compare backends side by side on the same traffic.
    Bench(bench::BenchArgs),
    /// Show what this machine and its NICs support, how the host is tuned,
    /// and what each backend will get.
    Doctor(doctor::DoctorArgs),
    /// Serve a folder over HTTP/1.1 with sendfile (or read-write, mmap).
    Serve(serve::ServeArgs),
    /// Forward TCP connections through splice (or read/write).
    Proxy(proxy::ProxyArgs),
    /// NASDAQ TotalView-ITCH 5.0 over MoldUDP64: receive into an order book
    /// (A/B lines, gap recovery, or offline from a file), publish, generate.
    Feed(feed::FeedArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ZC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Command::Send(a) => send::run(a),
        Command::Recv(a) => recv::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Proxy(a) => proxy::run(a),
        Command::Feed(a) => feed::run(a),
    };
    zc::shutdown();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zc: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ctrl-C sets this flag; loops check it and unwind cleanly (testbed removed,
/// programs detached) instead of dying mid-way.
pub(crate) fn stop_flag() -> &'static std::sync::atomic::AtomicBool {
    use std::sync::atomic::AtomicBool;
    use std::sync::OnceLock;
    static STOP: AtomicBool = AtomicBool::new(false);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
                eprintln!("zc: second interrupt, exiting now");
                std::process::exit(130);
            }
            eprintln!("zc: interrupted, cleaning up (Ctrl-C again to force)");
        });
    });
    &STOP
}

//! `zc`: send and receive market-data feeds with any zc backend, compare the
//! backends side by side on a veth testbed, and check what this machine supports.

mod bench;
mod capture;
mod docs;
mod doctor;
mod feed;
mod json;
mod metrics;
mod names;
mod offline;
mod proxy;
mod recv;
mod replay;
mod report;
mod send;
mod serve;
mod svg;

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::OnceLock;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;
use zc_core::ErrorKind;

/// Exit codes, one meaning each (also in `zc --help` and the README).
pub(crate) mod exit {
    /// The run could not be done: a socket, device, file or permission failed.
    pub const RUNTIME_ERROR: u8 = 1;
    /// The command line asked for something impossible (clap uses 2 too).
    pub const USAGE: u8 = 2;
    /// The run finished but its verdict is bad: messages were lost
    /// (`zc recv`, `zc feed recv`), or a backend lacks what it needs (`zc doctor`).
    pub const VERDICT: u8 = 3;
    /// The run finished without receiving a single message (`zc recv`,
    /// unless `--allow-empty`): a feed that never came is not a clean run.
    pub const NOTHING_RECEIVED: u8 = 4;
}

/// Zero-copy and kernel-bypass UDP market-data I/O, measured.
///
/// Every backend receives through the same handler (decode, sequence gaps and
/// duplicates, one-way latency, per-symbol state), so their figures compare.
/// Backends in this build: see `zc doctor` or `zc recv --help`.
#[derive(Parser)]
#[command(
    name = "zc",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "\
Logging: RUST_LOG sets what is logged, as in other Rust tools (e.g.
RUST_LOG=debug, RUST_LOG=zc_afxdp=trace); without it, warnings and errors are
logged, -v adds info, -vv debug, -vvv trace, -q keeps only errors, -qq none.
Logs go to stderr.

Exit codes:
  0  done, and nothing was lost
  1  runtime error: a socket, device, file or permission failed
  2  usage error: the command line asks for something impossible
     (including a backend this build was compiled without)
  3  done, but the verdict is bad: messages lost (zc recv, zc feed recv),
     or a backend lacks what it needs (zc doctor)
  4  done, but no message arrived at all (zc recv; --allow-empty: 0)
  130  interrupted twice (Ctrl-C)"
)]
struct Cli {
    #[command(flatten)]
    verbosity: Verbosity,
    #[command(subcommand)]
    cmd: Command,
}

/// `-v` / `-q`, counted, for every subcommand.
#[derive(Args)]
struct Verbosity {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true, help_heading = "Global options")]
    verbose: u8,
    /// Less output: no status lines, only errors logged (-qq: none).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "verbose", help_heading = "Global options")]
    quiet: u8,
}

impl Verbosity {
    fn level(&self) -> LevelFilter {
        match (self.verbose, self.quiet) {
            (0, 0) => LevelFilter::WARN,
            (0, 1) => LevelFilter::ERROR,
            (0, _) => LevelFilter::OFF,
            (1, _) => LevelFilter::INFO,
            (2, _) => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }
}

#[derive(Subcommand, Debug)]
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
    /// Print a shell completion script for zc.
    Completions(docs::CompletionsArgs),
    /// Print zc's manual page (roff), or write one per subcommand.
    Man(docs::ManArgs),
}

static QUIET: OnceLock<bool> = OnceLock::new();

/// `-q` was given: commands print no status lines.
pub(crate) fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

/// The clap definition, for the completion and man page generators.
pub(crate) fn command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = QUIET.set(cli.verbosity.quiet > 0);
    // RUST_LOG wins when set (and valid); otherwise -v / -q pick the level.
    let filter = EnvFilter::builder()
        .with_default_directive(cli.verbosity.level().into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    tracing::debug!("command line understood as {:?}", cli.cmd);
    // A panic on this thread unwinds through here: close the ports (and so
    // undo what they changed on the host) before it goes on.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cli.cmd {
        Command::Send(a) => send::run(a),
        Command::Recv(a) => recv::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Proxy(a) => proxy::run(a),
        Command::Feed(a) => feed::run(a),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
    }));
    zc::shutdown();
    let result = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zc: error: {e}");
            ExitCode::from(match e.kind() {
                ErrorKind::Config => exit::USAGE,
                _ => exit::RUNTIME_ERROR,
            })
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
                for done in zc::restore_host_state() {
                    eprintln!("zc: restored {done}");
                }
                std::process::exit(130);
            }
            eprintln!("zc: interrupted, cleaning up (Ctrl-C again to force)");
        });
    });
    &STOP
}

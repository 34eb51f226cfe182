//! The arguments of `zc bench`, and what `--quick` and the defaults make of them.

use crate::names::{RxBackend, TxBackend};
use clap::Args;
use std::path::PathBuf;
use zc_core::{Error, Result};

/// Compare backends side by side.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
What it does, per repetition and per backend (backends interleaved, so a
noisy moment hits all of them alike):
  1. max rate: the generator sends --count messages as fast as it can; the
     figure is the rate the receiver handled them at (first to last message).
  2. drain: the receiver opens and holds while the generator sends
     --drain-count messages at full speed into its queue (socket buffer,
     AF_XDP ring, DPDK descriptors), then empties the queue as fast as it
     can; the figure is the rate it read them at, its own cost per message
     without the kernel's receive work (done while it held).
  3. fixed rate: --fixed-rate messages/s for --fixed-count messages: receiver
     CPU time per message (getrusage of the receive thread; also reported for
     the max-rate run, where batches fill); the CPU of every CPU per message
     (/proc/stat busy time less the generator thread's own, so softirq and
     NAPI work on other CPUs counts; any other load on the machine counts
     too); and one-way latency p50/p99/p99.9/max from each message's
     intended send time.
  4. zero-loss search: --search-steps runs bisecting the offered rate between
     0 and 1.2 x the max rate; the figure is the highest rate with no loss.
  5. latency at --latency-at percentages of that zero-loss rate (10,50,90),
     about a second each, from intended send times.
  6. with --itch: a generated NASDAQ TotalView-ITCH 5.0 session in MoldUDP64
     packets (--itch-messages at --itch-rate, --itch-per-packet messages a
     packet), decoded and applied to an order book; one-way latency p50/p99
     from each message's intended send time (its ITCH timestamp) to its book
     update, and the messages lost (not for +capture rows).
Every cell is the median of --reps repetitions with [min-max].

Each backend gets its own, identical testbed: a veth pair with one end in a
network namespace made for the run (198.18.0.0/15 addresses), removed at the
end, on error and on Ctrl-C. (A device backend keeps its XDP program or DPDK
port for the whole run; on a shared pair it would take the others' traffic.)

Examples:
  sudo zc bench                                   # every backend in this build
  sudo zc bench --backends recvfrom,recvmmsg --reps 7 --json out.json
  sudo zc bench --quick                           # a smoke run in seconds
  sudo zc bench --itch --itch-rate 100000         # and the ITCH feed to a book")]
pub struct BenchArgs {
    /// Backends to compare, comma-separated (default: every one in this
    /// build). A name with `+capture` (e.g. `recvmmsg+capture`) is a row of
    /// that backend recording everything it receives to a pcap file (written
    /// to the temporary directory and removed after each run), to compare
    /// against the same backend without capture.
    #[arg(long, value_delimiter = ',', value_parser = row_parser())]
    pub backends: Vec<BenchRow>,
    /// Repetitions (medians need 5 or more).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Messages in each max-rate run.
    #[arg(long, default_value_t = 300_000)]
    pub count: u64,
    /// Messages in each drain run (the receiver holds while they queue up,
    /// then empties its queue). dpdk's net_af_xdp port holds 2048 of the
    /// default 4000 (DPDK 22.11 posts 2048 buffers to its AF_XDP fill ring):
    /// its drain rate is over those, the rest counted as drops.
    #[arg(long, default_value_t = 4000)]
    pub drain_count: u64,
    /// Offered rate of the CPU and latency run, messages/s.
    #[arg(long, default_value_t = 50_000.0)]
    pub fixed_rate: f64,
    /// Messages in each fixed-rate run.
    #[arg(long, default_value_t = 100_000)]
    pub fixed_count: u64,
    /// Bisection steps of the zero-loss search (0 skips it).
    #[arg(long, default_value_t = 5)]
    pub search_steps: usize,
    /// Messages in each zero-loss search run.
    #[arg(long, default_value_t = 100_000)]
    pub search_count: u64,
    /// UDP payload bytes (32 = the market-data message alone: 74-byte frames).
    #[arg(long, default_value_t = 32)]
    pub payload: usize,
    /// Datagrams per burst, receiver and generator.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// What generates the traffic, from the peer namespace: `xdp` (the XDP
    /// live-frames generator, zc-xdpgen: BPF_PROG_RUN transmits straight into
    /// the receiving end's ring, no socket on the sending side; needs Linux
    /// 5.18+ and the afxdp feature; the receiving end then runs threaded NAPI,
    /// pinned to --napi-cpu under SCHED_FIFO) or a backend's sender. The
    /// default is the fastest this build and kernel allow: xdp, else the
    /// AF_XDP sender, else sendmmsg (recvmmsg). xdp drives the max-rate runs
    /// only, 1024 messages per system call: paced, it sends the few messages
    /// due per call and falls behind its schedule (measured: 16-25 kpps
    /// offered of 50 kpps), so paced runs (fixed rate, zero-loss search,
    /// latency) use the AF_XDP sender, else sendmmsg. See docs/generator.md.
    #[arg(long, value_parser = generator_parser(), default_value_t = default_generator())]
    pub generator: Generator,
    /// CPU of the receiving end's NAPI thread with the xdp generator
    /// [default: --tx-cpu, where the kernel's receive work runs with any
    /// other generator].
    #[arg(long)]
    pub napi_cpu: Option<usize>,
    /// CPU for the receive thread.
    #[arg(long, default_value_t = 1)]
    pub rx_cpu: usize,
    /// CPU for the generator thread.
    #[arg(long, default_value_t = 0)]
    pub tx_cpu: usize,
    /// Busy-poll in every receiver that can.
    #[arg(long)]
    pub busy_poll: bool,
    /// Kernel busy polling for US microseconds per receive call in the
    /// receivers that have it (recvmmsg: SO_BUSY_POLL + SO_PREFER_BUSY_POLL;
    /// uring: registered NAPI busy poll; afxdp: SO_PREFER_BUSY_POLL and a
    /// budget of one batch); the other rows run as without it. The receiving
    /// thread then runs the veth's NAPI poll itself (the testbed turns GRO
    /// on, which gives veth NAPI). recvmmsg takes this or --busy-poll, not both.
    #[arg(long, value_name = "US")]
    pub kernel_busy_poll: Option<u32>,
    /// Start DPDK's EAL on ordinary pages (`--no-huge`) even when hugepages
    /// are free (by default the dpdk rows run on hugepages when at least
    /// 128 MB are free; their mode says which). The EAL starts once per
    /// process: compare the two with one run each, alternated (see
    /// docs/BENCHMARKS.md).
    #[arg(long)]
    pub no_huge: bool,
    /// Ask the backends that give receive timestamps (recvmmsg, uring: the
    /// kernel's; afxdp: the XDP program's) for them, and report the stack
    /// latency at the fixed rate (receive timestamp to the application: the
    /// stack and wake-up cost) beside the
    /// one-way figure; n/a for the others. Timestamping costs those backends
    /// a little, so their other figures move too.
    #[arg(long)]
    pub stack_latency: bool,
    /// Queues on each end of the veth pair.
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Also measure latency at these percentages of each backend's zero-loss
    /// rate (about one second of traffic each), each above 0 and at most
    /// 100; `--latency-at` with no value skips them.
    #[arg(long, value_delimiter = ',', default_value = "10,50,90", num_args = 0..,
          value_parser = parse_percent)]
    pub latency_at: Vec<f64>,
    /// Also carry an ITCH feed to an order book on each backend and report
    /// its send-to-book latency (step 6 above).
    #[arg(long)]
    pub itch: bool,
    /// ITCH messages per second (open loop).
    #[arg(long, default_value_t = 50_000.0)]
    pub itch_rate: f64,
    /// ITCH messages in each run (3 closing messages are added).
    #[arg(long, default_value_t = 100_000)]
    pub itch_messages: u64,
    /// ITCH messages per MoldUDP64 packet at most (1: each message sent when
    /// due; more: a message also waits for its packet to fill).
    #[arg(long, default_value_t = 1)]
    pub itch_per_packet: u16,
    /// Write every figure of every repetition to FILE, as JSON (`-`: stdout).
    #[arg(long, value_name = "FILE", value_parser = crate::json::parse_target)]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown here (tables, ratios, modes, machine and
    /// this command line), ready for docs/.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write the chart (latency distribution and rates) here, as SVG.
    #[arg(long, default_value = "bench-out/zc-bench.svg")]
    pub svg: PathBuf,
    /// A short smoke run: 2 repetitions, small counts, 2 search steps.
    #[arg(long)]
    pub quick: bool,
    /// Testbed name prefix: backend i gets namespace `<name><i>-ns` (change it
    /// to run two benches at once; at most 9 characters).
    #[arg(long, default_value = "zcbench")]
    pub testbed: String,
    /// First testbed subnet: backend i gets 198.18.(N+i).0/24.
    #[arg(long, default_value_t = 100)]
    pub subnet: u8,
}

/// Suffix of a row that records what its receiver gets (`recvmmsg+capture`).
const CAPTURE_SUFFIX: &str = "+capture";

/// A row name's backend, and whether the row captures.
pub fn row_backend(row: &str) -> (&str, bool) {
    match row.strip_suffix(CAPTURE_SUFFIX) {
        Some(b) => (b, true),
        None => (row, false),
    }
}

/// A percentage of the zero-loss rate: above 0 (a rate of nothing measures
/// nothing) and at most 100 (beyond it the run is lossy by definition).
fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        Ok(p) => Err(format!("{p} is not a percentage above 0 and at most 100")),
        Err(_) => Err(format!("`{s}` is not a number (a percentage, e.g. 50)")),
    }
}

/// One row of the comparison: a receive backend, capturing or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchRow {
    /// The receiver.
    pub backend: RxBackend,
    /// Records everything it receives (`+capture`).
    pub capture: bool,
}

impl std::fmt::Display for BenchRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let suffix = if self.capture { CAPTURE_SUFFIX } else { "" };
        write!(f, "{}{suffix}", self.backend)
    }
}

/// Every row name `--backends` takes, so that `--help`, completions and
/// errors list them (a unit test keeps it in step with [`RxBackend`]).
const ROWS: &[&str] = &[
    "recvfrom",
    "recvmmsg",
    "uring",
    "afxdp",
    "dpdk",
    "dpdk-packet",
    "recvfrom+capture",
    "recvmmsg+capture",
    "uring+capture",
    "afxdp+capture",
    "dpdk+capture",
    "dpdk-packet+capture",
];

fn row_parser() -> impl clap::builder::TypedValueParser<Value = BenchRow> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    use clap::ValueEnum;
    PossibleValuesParser::new(ROWS).try_map(|row: String| {
        let (name, capture) = row_backend(&row);
        RxBackend::from_str(name, false).map(|backend| BenchRow { backend, capture })
    })
}

/// What generates the traffic: the XDP live-frames generator or a
/// backend's sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generator {
    /// The XDP live-frames generator (zc-xdpgen).
    Xdp,
    /// A backend's sender.
    Sender(TxBackend),
}

impl std::fmt::Display for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Xdp => f.write_str("xdp"),
            Self::Sender(b) => b.fmt(f),
        }
    }
}

/// `xdp` or any sender name, so that `--help`, completions and errors list them.
fn generator_parser() -> impl clap::builder::TypedValueParser<Value = Generator> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    use clap::ValueEnum;
    let names =
        std::iter::once(PossibleValue::new("xdp").help(
            "the XDP live-frames generator (max-rate runs; paced runs use the fastest sender)",
        ))
        .chain(
            TxBackend::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        );
    PossibleValuesParser::new(names).try_map(|name: String| {
        if name == "xdp" {
            Ok(Generator::Xdp)
        } else {
            TxBackend::from_str(&name, false).map(Generator::Sender)
        }
    })
}

/// The first Linux release with `BPF_F_TEST_XDP_LIVE_FRAMES`.
const XDP_LIVE_FRAMES_SINCE: zc_os::kernel::Release = (5, 18);

/// Whether this build and the running kernel can run the xdp generator.
fn xdp_generator_available() -> bool {
    cfg!(feature = "afxdp") && zc_os::kernel::release().is_some_and(|r| r >= XDP_LIVE_FRAMES_SINCE)
}

fn default_generator() -> Generator {
    if xdp_generator_available() {
        Generator::Xdp
    } else {
        Generator::Sender(fastest_sender())
    }
}

/// The fastest backend sender in this build on veth: the AF_XDP sender (it
/// skips the peer's UDP/IP stack), else sendmmsg.
fn fastest_sender() -> TxBackend {
    if TxBackend::Afxdp.name().is_ok() {
        TxBackend::Afxdp
    } else {
        TxBackend::Sendmmsg
    }
}

impl BenchArgs {
    /// The generator of paced runs: `--generator`, except that xdp hands
    /// them to the fastest backend sender (see `--generator`).
    pub fn paced_generator(&self) -> TxBackend {
        match self.generator {
            Generator::Xdp => fastest_sender(),
            Generator::Sender(b) => b,
        }
    }

    /// The DPDK EAL memory every DPDK receiver and sender of the run asks for.
    pub fn dpdk_memory(&self) -> zc::DpdkMemory {
        if self.no_huge {
            zc::DpdkMemory::NoHuge
        } else {
            zc::DpdkMemory::Auto
        }
    }

    /// The generators as the report names them.
    pub fn generators(&self) -> String {
        match self.generator {
            Generator::Xdp => format!("xdp (max rate), {} (paced runs)", self.paced_generator()),
            Generator::Sender(b) => b.to_string(),
        }
    }

    /// Applies `--quick`, fills in the default backends, and checks every
    /// backend name and the repetition count.
    pub fn settle(&mut self) -> Result<()> {
        if self.quick {
            self.reps = self.reps.min(2);
            self.count = self.count.min(50_000);
            self.drain_count = self.drain_count.min(2_000);
            self.fixed_count = self.fixed_count.min(20_000);
            self.search_steps = self.search_steps.min(2);
            self.search_count = self.search_count.min(20_000);
            self.itch_messages = self.itch_messages.min(20_000);
        }
        if !(self.itch_rate > 0.0 && self.itch_rate.is_finite()) {
            return Err(Error::config(
                "--itch-rate must be a positive number of messages per second",
            ));
        }
        if self.itch_per_packet == 0 {
            return Err(Error::config("--itch-per-packet must be 1 or more"));
        }
        if self.backends.is_empty() {
            self.backends = RxBackend::enabled()
                .into_iter()
                .map(|backend| BenchRow {
                    backend,
                    capture: false,
                })
                .collect();
        }
        for row in &self.backends {
            row.backend.name()?;
        }
        match self.generator {
            Generator::Xdp if !xdp_generator_available() => {
                return Err(Error::config(format!(
                    "--generator xdp needs Linux {}.{}+ (BPF_F_TEST_XDP_LIVE_FRAMES) and a zc built with the afxdp feature; this is Linux {}",
                    XDP_LIVE_FRAMES_SINCE.0,
                    XDP_LIVE_FRAMES_SINCE.1,
                    zc_os::kernel::release_string().unwrap_or_else(|| "(unknown)".into())
                ))
                .with_fix("pick a backend's sender: --generator afxdp or --generator sendmmsg"));
            }
            Generator::Xdp => {}
            Generator::Sender(b) => {
                b.name()?;
                if self.napi_cpu.is_some() {
                    return Err(Error::config(
                        "--napi-cpu applies to --generator xdp only (other generators run the receive work in their own softirq)",
                    ));
                }
            }
        }
        if self.drain_count < 2 {
            return Err(Error::config(
                "--drain-count must be 2 or more (a rate needs a first and a last message)",
            ));
        }
        if self.reps == 0 {
            return Err(Error::config("--reps must be 1 or more"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[derive(clap::Parser)]
    struct Bench {
        #[command(flatten)]
        a: BenchArgs,
    }

    fn latency_at(args: &[&str]) -> Result<Vec<f64>, clap::Error> {
        use clap::Parser;
        Bench::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|b| b.a.latency_at)
    }

    #[test]
    fn latency_at_takes_percentages_or_nothing_and_refuses_the_rest() {
        assert_eq!(latency_at(&[]).unwrap(), [10.0, 50.0, 90.0]);
        assert_eq!(
            latency_at(&["--latency-at", "25,100"]).unwrap(),
            [25.0, 100.0]
        );
        assert!(latency_at(&["--latency-at"]).unwrap().is_empty());
        for bad in ["0", "-5", "101", "NaN", "x", ""] {
            let arg = format!("--latency-at={bad}");
            let e = latency_at(&[&arg]).expect_err(bad).to_string();
            assert!(e.contains("percentage"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_backend_has_a_row_and_a_capture_row() {
        let mut want: Vec<String> = RxBackend::value_variants()
            .iter()
            .map(|b| b.to_string())
            .collect();
        want.extend(want.clone().iter().map(|b| format!("{b}{CAPTURE_SUFFIX}")));
        assert_eq!(ROWS, want);
        for row in ROWS {
            let (name, capture) = row_backend(row);
            let b = RxBackend::from_str(name, false).unwrap();
            assert_eq!(
                BenchRow {
                    backend: b,
                    capture
                }
                .to_string(),
                *row
            );
        }
    }
}

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
  2. fixed rate: --fixed-rate messages/s for --fixed-count messages: receiver
     CPU time per message (getrusage of the receive thread; also reported for
     the max-rate run, where batches fill) and one-way latency p50/p99/p99.9/max
     from each message's intended send time.
  3. zero-loss search: --search-steps runs bisecting the offered rate between
     0 and 1.2 x the max rate; the figure is the highest rate with no loss.
  4. latency at --latency-at percentages of that zero-loss rate (10,50,90),
     about a second each, from intended send times.
  5. with --itch: a generated NASDAQ TotalView-ITCH 5.0 session in MoldUDP64
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
    /// Backend that generates the traffic (from the peer namespace). The
    /// default is the fastest in this build on veth: the AF_XDP sender (it
    /// skips the peer's UDP/IP stack), else sendmmsg.
    #[arg(long, value_enum, default_value_t = default_generator())]
    pub generator: TxBackend,
    /// CPU for the receive thread.
    #[arg(long, default_value_t = 1)]
    pub rx_cpu: usize,
    /// CPU for the generator thread.
    #[arg(long, default_value_t = 0)]
    pub tx_cpu: usize,
    /// Busy-poll in every receiver that can.
    #[arg(long)]
    pub busy_poll: bool,
    /// Ask the backends that give kernel receive timestamps (recvmmsg, uring)
    /// for them, and report the stack latency at the fixed rate (kernel
    /// timestamp to the application: the stack and wake-up cost) beside the
    /// one-way figure; n/a for the others. Timestamping costs those backends
    /// a little, so their other figures move too.
    #[arg(long)]
    pub stack_latency: bool,
    /// Queues on each end of the veth pair.
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Also measure latency at these percentages of each backend's zero-loss
    /// rate (about one second of traffic each); empty to skip.
    #[arg(long, value_delimiter = ',', default_value = "10,50,90")]
    pub latency_at: Vec<f64>,
    /// Also carry an ITCH feed to an order book on each backend and report
    /// its send-to-book latency (step 5 above).
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

fn default_generator() -> TxBackend {
    if TxBackend::Afxdp.name().is_ok() {
        TxBackend::Afxdp
    } else {
        TxBackend::Sendmmsg
    }
}

impl BenchArgs {
    /// Applies `--quick`, fills in the default backends, and checks every
    /// backend name and the repetition count.
    pub fn settle(&mut self) -> Result<()> {
        if self.quick {
            self.reps = self.reps.min(2);
            self.count = self.count.min(50_000);
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
        self.generator.name()?;
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

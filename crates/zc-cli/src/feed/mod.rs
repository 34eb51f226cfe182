//! `zc feed`: NASDAQ TotalView-ITCH 5.0 over MoldUDP64 with any backend.
//!
//! A subcommand of its own (rather than a mode of `zc recv`) because the
//! feed has its own shape: one or two lines, a recovery server, a book, an
//! offline file mode, and a publisher that cuts MoldUDP64 packets.

mod recv;
mod send;

use clap::{Args, Subcommand};
use std::process::ExitCode;
use zc_core::Result;

/// Receive, publish or generate an ITCH 5.0 feed.
#[derive(Args, Debug)]
pub struct FeedArgs {
    #[command(subcommand)]
    cmd: FeedCommand,
}

#[derive(Subcommand, Debug)]
enum FeedCommand {
    /// Receive ITCH over MoldUDP64 on one or two lines (any backend each),
    /// with gap recovery, into an order book; or build the book offline
    /// from a NASDAQ-format file (--itch-file).
    Recv(recv::RecvArgs),
    /// Publish a generated ITCH session on line A, B or both (any sender
    /// backend), with deliberate per-line drops and a re-request server.
    Send(send::SendArgs),
    /// Write a generated ITCH session as a NASDAQ-format file.
    Gen(send::GenArgs),
}

pub fn run(a: FeedArgs) -> Result<ExitCode> {
    match a.cmd {
        FeedCommand::Recv(a) => recv::run(a),
        FeedCommand::Send(a) => send::run(a),
        FeedCommand::Gen(a) => send::gen(a),
    }
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

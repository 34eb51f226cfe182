//! An XDP "live frames" traffic generator for the zc testbed, and an XDP sink
//! to measure it with.
//!
//! [`XdpGenerator`] sends market-data frames with `BPF_PROG_RUN` in
//! live-frames mode (`BPF_F_TEST_XDP_LIVE_FRAMES`, Linux 5.18+): one system
//! call runs our XDP program (`bpf/zc_xdpgen.bpf.c`) up to [`RING`] times on
//! pages the kernel fills from one frame template, and each `XDP_TX` goes
//! out of the device. On a veth pair that means straight into the peer's
//! receive ring: no socket, no skb and no qdisc on the sending side. The
//! program writes each frame's 32-byte message (sequence number, symbol,
//! price, volume, timestamp) from a ring user space fills ahead of the call,
//! and completes the UDP checksum, so any `zc_core::feed::FeedPlan` (gaps,
//! duplicates, reordering) and the open-loop schedule of
//! `zc_core::feed::generate` come out exactly as with any other sender.
//!
//! The receiving veth end must have NAPI (an XDP program attached, or GRO
//! on); with threaded NAPI (`zc_testbed::Testbed::enable_threaded_napi`) its
//! receive work runs in a kernel thread that can be pinned, instead of in the
//! sender's softirq. [`XdpSink`] is the least receive work there is: an XDP
//! program that counts and drops the feed's datagrams, to measure the
//! generator's own ceiling.
//!
//! Everything here needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON). See
//! `docs/generator.md` for the measurements.

mod bpf;
mod ethtool;
mod gen;
mod sink;

pub use gen::{GenCounters, XdpGenConfig, XdpGenerator, MAX_KERNEL_BATCH, MAX_PAYLOAD, RING};
pub use sink::XdpSink;

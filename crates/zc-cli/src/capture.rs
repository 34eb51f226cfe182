//! `zc recv --capture FILE`: what the receiver gets, written to pcap or
//! pcapng by a writer thread; `--ring` keeps the last seconds in memory and
//! writes them when a sequence gap or SIGUSR1 fires the trigger.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use zc::DynReceiver;
use zc_capture::{Capture, CaptureConfig, CaptureReport, Format, RingConfig, Rotation};
use zc_core::{Error, Result};

/// Capture options of `zc recv`.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Capture (to pcap/pcapng) and offline runs")]
pub struct CaptureArgs {
    /// Write what the receiver gets to this file: AF_XDP and DPDK frames as
    /// received, socket datagrams as synthesized Ethernet/IPv4/UDP frames.
    /// `.pcapng` gives pcapng, anything else pcap; nanosecond timestamps.
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Capture format, overriding the file extension.
    #[arg(long, value_name = "pcap|pcapng", requires = "capture")]
    pub capture_format: Option<Format>,
    /// Bytes kept of each frame (longer frames are cut; their length is kept).
    #[arg(long, default_value_t = zc_capture::capture::DEFAULT_SNAPLEN, requires = "capture")]
    pub snaplen: u32,
    /// Start a new file after this many MiB (files are numbered: name-00000.pcap, ...).
    #[arg(long, value_name = "MIB", requires = "capture")]
    pub rotate_mib: Option<u64>,
    /// Start a new file after this many seconds of capture time.
    #[arg(long, value_name = "SECS", requires = "capture")]
    pub rotate_secs: Option<f64>,
    /// Keep the last SECS seconds in memory instead of writing everything;
    /// a trigger (a sequence gap, or SIGUSR1) writes them and the SECS seconds
    /// after to a new numbered file.
    #[arg(long, value_name = "SECS", requires = "capture")]
    pub ring: Option<f64>,
    /// Seconds recorded after a trigger (default: the --ring length).
    #[arg(long, value_name = "SECS", requires = "ring")]
    pub ring_after: Option<f64>,
    /// Memory the ring may hold, in MiB (the oldest records go first).
    #[arg(long, value_name = "MIB", default_value_t = 256, requires = "ring")]
    pub ring_mib: usize,
    /// Do not fire the ring on sequence gaps (SIGUSR1 only).
    #[arg(long, requires = "ring")]
    pub no_gap_trigger: bool,
    /// Memory of the queue between the receive thread and the writer, in MiB;
    /// when it is full, records are dropped and counted, the receiver never waits.
    #[arg(long, value_name = "MIB", default_value_t = 32, requires = "capture")]
    pub capture_queue_mib: usize,
    /// Run the handler over this capture instead of receiving (no network):
    /// pcap or pcapng, Ethernet (VLAN tags too), Linux cooked SLL/SLL2, raw
    /// IPv4. The --bind port picks the feed (port 0: every port).
    #[arg(long, value_name = "FILE", conflicts_with = "capture")]
    pub pcap: Option<PathBuf>,
}

/// A running capture and how it is triggered.
pub struct Recording {
    /// The capture itself.
    pub capture: Capture,
    /// Fire the ring on sequence gaps.
    pub on_gap: bool,
}

impl CaptureArgs {
    /// Starts the capture asked for (none without --capture), before receiving.
    pub fn start(
        &self,
        rx: &dyn DynReceiver,
        interface: Option<&str>,
    ) -> Result<Option<Recording>> {
        let Some(path) = &self.capture else {
            return Ok(None);
        };
        let mut cfg = CaptureConfig::new(path);
        if let Some(f) = self.capture_format {
            cfg.format = f;
        }
        cfg.snaplen = self.snaplen;
        cfg.rotation = Rotation {
            bytes: self.rotate_mib.map(|m| m << 20),
            every: self.rotate_secs.map(secs).transpose()?,
        };
        cfg.queue_bytes = self.capture_queue_mib << 20;
        let backend = zc::backend(rx.mode().backend)?;
        cfg.raw_frames = backend.needs_interface;
        cfg.source = rx.mode().to_string();
        cfg.interface = interface.unwrap_or("socket").to_owned();
        if let Some(before) = self.ring {
            let mut r = RingConfig::seconds(0.0);
            r.before = secs(before)?;
            r.after = secs(self.ring_after.unwrap_or(before))?;
            r.max_bytes = self.ring_mib << 20;
            cfg.ring = Some(r);
        }
        let capture = Capture::start(cfg)?;
        if self.ring.is_some() {
            signal_hook::flag::register(signal_hook::consts::SIGUSR1, capture.signal_trigger())
                .map_err(|e| Error::io("install the SIGUSR1 trigger", e))?;
        }
        eprintln!(
            "zc recv: capturing to {}{}",
            path.display(),
            match self.ring {
                Some(s) => format!(
                    " (ring of {s} s: written on {}SIGUSR1 (kill -USR1 {}))",
                    if self.no_gap_trigger {
                        ""
                    } else {
                        "a sequence gap or "
                    },
                    std::process::id()
                ),
                None => String::new(),
            }
        );
        Ok(Some(Recording {
            capture,
            on_gap: self.ring.is_some() && !self.no_gap_trigger,
        }))
    }
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Error::config(format!("{s} is not a number of seconds")))
}

/// The capture lines of the summary.
pub fn print_report(r: &CaptureReport) {
    println!(
        "capture      {} records in {} file(s), {} dropped (queue full), {} synthesized frames{}",
        r.stats.queued,
        r.files.len(),
        r.stats.dropped,
        r.synthesized,
        match &r.ring {
            Some(ring) => format!(
                ", {} trigger(s), {} evicted from the ring",
                ring.triggers, ring.evicted
            ),
            None => String::new(),
        }
    );
    for f in &r.files {
        println!("capture file {} ({} records)", f.path.display(), f.records);
    }
}

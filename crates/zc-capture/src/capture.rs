//! Recording what a receiver gets, off the receive path.
//!
//! The receive thread calls [`Capture::record`] for each datagram of a burst
//! and [`Capture::end_burst`] after it. `record` copies the frame (AF_XDP,
//! DPDK: as received) or the payload and its addresses (sockets: the frame is
//! synthesized later) into a preallocated chunk; full chunks go over a bounded
//! lock-free queue to a writer thread, which writes the files. When every
//! chunk is in use (the disk is slower than the traffic) `record` drops the
//! record and counts it: it never blocks and never allocates. A chunk is
//! handed over when full, or at the end of a burst once it is 10 ms old, so
//! at low rates records reach the file within about a second (the writer
//! flushes every second).
//!
//! Timestamps are the backend's receive timestamp when the datagram has one
//! (CLOCK_REALTIME as is, CLOCK_MONOTONIC shifted by the offset measured at
//! start), otherwise the time of the burst: CLOCK_REALTIME read once per
//! burst, when its first record is taken.

use crate::link::{synthesize, Format, SYNTH_DST_MAC, SYNTH_HEADER_LEN, SYNTH_SRC_MAC};
use crate::read::CLOCK_OFFSET_KEY;
use crate::ring::{self, RingConfig, RingReport, TriggerRing};
use crate::write::{FileHeader, RotatingFile, Rotation, WrittenFile};
use crossbeam_queue::ArrayQueue;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zc_core::backend::{Clock, Datagram};
use zc_core::sys::{monotonic_ns, realtime_ns};
use zc_core::{Error, ErrorKind, Result};

/// Bytes of one queue chunk (more when the snapshot length is larger).
pub const CHUNK_BYTES: usize = 128 << 10;
/// Default memory of the capture queue.
pub const DEFAULT_QUEUE_BYTES: usize = 32 << 20;
/// Default snapshot length: every frame whole.
pub const DEFAULT_SNAPLEN: u32 = 65535;
/// A partly filled chunk is handed to the writer at the end of a burst once
/// it is this old.
const HANDOVER_NS: u64 = 10_000_000;
/// The writer flushes its file this often.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The writer's sleep when the queue is empty.
const IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Capture settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// The file, or the base name of a numbered series (rotation, trigger ring).
    pub path: PathBuf,
    /// pcap or pcapng.
    pub format: Format,
    /// Longest frame kept; longer ones are cut (their length on the wire is kept).
    pub snaplen: u32,
    /// Start a new file by size or time (not with a ring).
    pub rotation: Rotation,
    /// Keep the last seconds in memory and write them only when a trigger
    /// fires, instead of writing everything.
    pub ring: Option<RingConfig>,
    /// Memory of the queue between the receive thread and the writer.
    pub queue_bytes: usize,
    /// Frames come whole from the device (AF_XDP, DPDK); otherwise zc
    /// synthesizes them from datagrams. Said in the pcapng comment.
    pub raw_frames: bool,
    /// What received the traffic (the backend's mode line), for the pcapng comment.
    pub source: String,
    /// Interface name for the pcapng interface block.
    pub interface: String,
}

impl CaptureConfig {
    /// Defaults: whole frames, no rotation, no ring, a 32 MiB queue; the
    /// format from the extension (`.pcapng`, else pcap).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            format: Format::from_path(&path),
            path,
            snaplen: DEFAULT_SNAPLEN,
            rotation: Rotation::default(),
            ring: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            raw_frames: false,
            source: String::new(),
            interface: "zc".into(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.snaplen < SYNTH_HEADER_LEN as u32 {
            return Err(Error::config(format!(
                "snapshot length {} is below the {SYNTH_HEADER_LEN} bytes of Ethernet, IPv4 and UDP headers",
                self.snaplen
            )));
        }
        if let Some(r) = &self.ring {
            ring::validate(r)?;
            // The ring opens its files only when a trigger fires: check the
            // folder now rather than at the incident.
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            if !dir.is_dir() {
                return Err(Error::config(format!(
                    "capture folder {} does not exist",
                    dir.display()
                )));
            }
            if self.rotation.is_on() {
                return Err(Error::config(
                    "a trigger ring writes one file per incident: rotation by size or time does not apply to it",
                ));
            }
        }
        if self.rotation.every.is_some_and(|d| d.is_zero()) || self.rotation.bytes == Some(0) {
            return Err(Error::config(
                "rotation needs a size above 0 bytes and a time above 0 seconds",
            ));
        }
        Ok(())
    }

    /// The pcapng section comment: how frames and timestamps were made.
    fn comment(&self, clock_offset_ns: i64) -> Vec<String> {
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let frames = if self.raw_frames {
            "frames: as received from the device".to_owned()
        } else {
            format!(
                "frames: synthesized by zc from each datagram's payload, addresses and ports \
                 (the backend sees only UDP payloads): Ethernet {} -> {}, IPv4 TTL 64 with DF, \
                 UDP checksum computed",
                mac(SYNTH_SRC_MAC),
                mac(SYNTH_DST_MAC)
            )
        };
        let mut lines = vec!["zc capture".to_owned()];
        if !self.source.is_empty() {
            lines.push(format!("receiver: {}", self.source));
        }
        lines.push(frames);
        lines.push(
            "timestamps: the backend's receive timestamp where it has one, else when the \
             receive loop got the burst (CLOCK_REALTIME, ns)"
                .to_owned(),
        );
        lines.push(format!("{CLOCK_OFFSET_KEY} {clock_offset_ns}"));
        lines
    }
}

/// What one queued record is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A whole frame (cut to the snapshot length).
    Frame,
    /// A socket datagram's payload; the writer synthesizes the frame.
    Datagram {
        src: SocketAddrV4,
        dst: SocketAddrV4,
    },
    /// A trigger for the ring (no bytes).
    Trigger,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    ts_ns: u64,
    len: u32,
    orig_len: u32,
    kind: Kind,
}

/// Records on their way to the writer; allocated once, recycled forever.
#[derive(Debug)]
struct Chunk {
    metas: Vec<Meta>,
    bytes: Vec<u8>,
    /// When its first record came (burst clock), for the handover.
    started_ns: u64,
}

impl Chunk {
    fn new(bytes: usize) -> Self {
        Self {
            metas: Vec::with_capacity(bytes / 48),
            bytes: Vec::with_capacity(bytes),
            started_ns: 0,
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.metas.len() < self.metas.capacity() && self.bytes.len() + len <= self.bytes.capacity()
    }
}

/// Counters the writer thread keeps for the receive thread to read.
#[derive(Debug, Default)]
struct Shared {
    done: AtomicBool,
    signal: Arc<AtomicBool>,
    written: AtomicU64,
    failed: AtomicBool,
}

/// Live counters of a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Records handed to the queue.
    pub queued: u64,
    /// Records dropped because every queue chunk was in use (the writer fell behind).
    pub dropped: u64,
    /// Datagrams not captured because their addresses are not IPv4.
    pub not_ipv4: u64,
    /// Records the writer has taken care of (written, or kept by the ring).
    pub written: u64,
    /// The writer hit an error (it is returned by [`Capture::finish`]).
    pub writer_failed: bool,
}

/// What a finished capture did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureReport {
    /// Final counters.
    pub stats: CaptureStats,
    /// Files written, in order (for a ring: one per incident).
    pub files: Vec<WrittenFile>,
    /// Frames synthesized from socket datagrams.
    pub synthesized: u64,
    /// The ring's triggers and evictions, when a ring was used.
    pub ring: Option<RingReport>,
}

/// A running capture: the receive thread's side of the queue and the writer thread.
pub struct Capture {
    free: Arc<ArrayQueue<Chunk>>,
    full: Arc<ArrayQueue<Chunk>>,
    current: Option<Chunk>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<Result<WriterReport>>>,
    /// CLOCK_REALTIME of the current burst (0 until its first record).
    burst_ns: u64,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC.
    clock_offset_ns: i64,
    snaplen: usize,
    ring: bool,
    stats: CaptureStats,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Capture {
    /// Opens the first file (so a bad path fails here, before receiving) and
    /// starts the writer thread.
    pub fn start(cfg: CaptureConfig) -> Result<Self> {
        cfg.validate()?;
        let chunk_bytes = CHUNK_BYTES.max(cfg.snaplen as usize).max(1 << 16);
        let chunks = (cfg.queue_bytes / chunk_bytes).max(2);
        let free = Arc::new(ArrayQueue::new(chunks));
        for _ in 0..chunks {
            let _ = free.push(Chunk::new(chunk_bytes));
        }
        let full = Arc::new(ArrayQueue::new(chunks));
        let shared = Arc::new(Shared::default());
        let clock_offset_ns = realtime_ns() as i64 - monotonic_ns() as i64;
        let (ready_tx, ready_rx) = sync_channel(1);
        let writer = {
            let (free, full, shared) = (Arc::clone(&free), Arc::clone(&full), Arc::clone(&shared));
            let cfg = cfg.clone();
            std::thread::Builder::new()
                .name("zc-capture".into())
                .spawn(move || {
                    let out = match Output::open(&cfg, clock_offset_ns) {
                        Ok(o) => {
                            let _ = ready_tx.send(Ok(()));
                            o
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(WriterReport::default());
                        }
                    };
                    write_loop(out, &free, &full, &shared)
                })
                .map_err(|e| Error::io("spawn the capture writer thread", e))?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = writer.join();
                return Err(e);
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    "the capture writer thread ended before opening its file",
                ))
            }
        }
        Ok(Self {
            free,
            full,
            current: None,
            shared,
            writer: Some(writer),
            burst_ns: 0,
            clock_offset_ns,
            snaplen: cfg.snaplen as usize,
            ring: cfg.ring.is_some(),
            stats: CaptureStats::default(),
        })
    }

    /// The flag that fires the ring's trigger from anywhere (a signal handler
    /// sets it with one store). Without a ring it does nothing.
    pub fn signal_trigger(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shared.signal)
    }

    #[inline]
    fn burst_clock(&mut self) -> u64 {
        if self.burst_ns == 0 {
            self.burst_ns = realtime_ns();
        }
        self.burst_ns
    }

    #[inline]
    fn timestamp(&mut self, d: &Datagram<'_>) -> u64 {
        match d.rx_timestamp {
            // A NIC's clock is taken as CLOCK_REALTIME (phc2sys keeps them in step).
            Some(t) if matches!(t.clock, Clock::Realtime | Clock::NicHardware) => t.ns,
            Some(t) => t.ns.saturating_add_signed(self.clock_offset_ns),
            None => self.burst_clock(),
        }
    }

    /// Queues one received datagram: its whole `frame` when the backend has
    /// one, else its payload and addresses. Never blocks: with no room, the
    /// record is dropped and counted.
    #[inline]
    pub fn record(&mut self, d: &Datagram<'_>, frame: Option<&[u8]>) {
        let ts_ns = self.timestamp(d);
        match frame {
            Some(f) => {
                let keep = f.len().min(self.snaplen);
                let meta = Meta {
                    ts_ns,
                    len: keep as u32,
                    orig_len: f.len() as u32,
                    kind: Kind::Frame,
                };
                self.push(meta, &f[..keep]);
            }
            None => match (d.src, d.dst) {
                (SocketAddr::V4(src), SocketAddr::V4(dst)) => {
                    let meta = Meta {
                        ts_ns,
                        len: d.payload.len() as u32,
                        orig_len: (d.payload.len() + SYNTH_HEADER_LEN) as u32,
                        kind: Kind::Datagram { src, dst },
                    };
                    self.push(meta, d.payload);
                }
                _ => self.stats.not_ipv4 += 1,
            },
        }
    }

    /// Fires the ring's trigger at the current record (a sequence gap): the
    /// writer sees it in order with the records. Without a ring it does nothing.
    #[inline]
    pub fn trigger(&mut self) {
        if self.ring {
            let ts_ns = self.burst_clock();
            let meta = Meta {
                ts_ns,
                len: 0,
                orig_len: 0,
                kind: Kind::Trigger,
            };
            self.push(meta, &[]);
        }
    }

    #[inline]
    fn push(&mut self, meta: Meta, bytes: &[u8]) {
        if !self.current.as_ref().is_some_and(|c| c.fits(bytes.len())) {
            self.hand_over();
            match self.free.pop() {
                Some(mut c) => {
                    c.started_ns = self.burst_clock();
                    self.current = Some(c);
                }
                None => {
                    self.stats.dropped += 1;
                    return;
                }
            }
        }
        if let Some(c) = &mut self.current {
            c.bytes.extend_from_slice(bytes);
            c.metas.push(meta);
            self.stats.queued += 1;
        }
    }

    /// Gives the current chunk to the writer.
    fn hand_over(&mut self) {
        if let Some(c) = self.current.take() {
            if c.metas.is_empty() {
                let _ = self.free.push(c);
            } else if let Err(c) = self.full.push(c) {
                // Cannot happen (both queues hold every chunk); keep the chunk.
                self.current = Some(c);
            }
        }
    }

    /// Ends a burst (also an empty one): hands the current chunk to the writer
    /// once it is 10 ms old. One clock read at most.
    #[inline]
    pub fn end_burst(&mut self) {
        if let Some(c) = &self.current {
            if !c.metas.is_empty() {
                let now = if self.burst_ns != 0 {
                    self.burst_ns
                } else {
                    realtime_ns()
                };
                if now.saturating_sub(c.started_ns) >= HANDOVER_NS {
                    self.hand_over();
                }
            }
        }
        self.burst_ns = 0;
    }

    /// Counters so far.
    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            written: self.shared.written.load(Ordering::Relaxed),
            writer_failed: self.shared.failed.load(Ordering::Relaxed),
            ..self.stats
        }
    }

    /// Hands over what is queued, lets the writer finish, closes the files.
    pub fn finish(mut self) -> Result<CaptureReport> {
        self.hand_over();
        self.shared.done.store(true, Ordering::Release);
        let report = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r?,
            Some(Err(_)) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    "the capture writer thread panicked",
                ))
            }
            None => WriterReport::default(),
        };
        Ok(CaptureReport {
            stats: self.stats(),
            files: report.files,
            synthesized: report.synthesized,
            ring: report.ring,
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            self.hand_over();
            self.shared.done.store(true, Ordering::Release);
            let _ = w.join();
        }
    }
}

/// Where the writer puts records.
enum Output {
    Files(RotatingFile),
    Ring(TriggerRing),
}

impl Output {
    fn open(cfg: &CaptureConfig, clock_offset_ns: i64) -> Result<Self> {
        let header = FileHeader {
            format: cfg.format,
            snaplen: cfg.snaplen,
            comment: cfg.comment(clock_offset_ns),
            interface: cfg.interface.clone(),
        };
        Ok(match cfg.ring {
            Some(r) => Output::Ring(TriggerRing::new(cfg.path.clone(), header, r)),
            None => Output::Files(RotatingFile::create(&cfg.path, header, cfg.rotation)?),
        })
    }
}

#[derive(Debug, Default)]
struct WriterReport {
    files: Vec<WrittenFile>,
    synthesized: u64,
    ring: Option<RingReport>,
}

/// The writer thread: takes chunks, writes their records, gives the chunks
/// back. After a write error it keeps taking chunks (so the receive side
/// never stalls) and returns the error at the end.
fn write_loop(
    mut out: Output,
    free: &ArrayQueue<Chunk>,
    full: &ArrayQueue<Chunk>,
    shared: &Shared,
) -> Result<WriterReport> {
    let mut scratch = Vec::with_capacity(1 << 16);
    let mut synthesized = 0u64;
    let mut failure: Option<Error> = None;
    let mut last_flush = Instant::now();
    loop {
        if let Some(mut chunk) = full.pop() {
            if failure.is_none() {
                if let Err(e) = write_chunk(&mut out, &chunk, &mut scratch, &mut synthesized) {
                    shared.failed.store(true, Ordering::Relaxed);
                    failure = Some(e);
                }
            }
            shared
                .written
                .fetch_add(chunk.metas.len() as u64, Ordering::Relaxed);
            chunk.metas.clear();
            chunk.bytes.clear();
            let _ = free.push(chunk);
            continue;
        }
        if shared.signal.swap(false, Ordering::Relaxed) {
            if let Output::Ring(r) = &mut out {
                if let Err(e) = r.trigger(realtime_ns()) {
                    failure.get_or_insert(e);
                }
            }
        }
        if shared.done.load(Ordering::Acquire) && full.is_empty() {
            break;
        }
        if last_flush.elapsed() >= FLUSH_EVERY && failure.is_none() {
            last_flush = Instant::now();
            let r = match &mut out {
                Output::Files(f) => f.flush(),
                Output::Ring(r) => r.close_if_over(realtime_ns()),
            };
            if let Err(e) = r {
                shared.failed.store(true, Ordering::Relaxed);
                failure = Some(e);
            }
        }
        std::thread::sleep(IDLE_SLEEP);
    }
    let (files, ring) = match out {
        Output::Files(f) => (f.finish()?, None),
        Output::Ring(r) => {
            let report = r.finish()?;
            (report.files.clone(), Some(report))
        }
    };
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(WriterReport {
        files,
        synthesized,
        ring,
    })
}

fn write_chunk(
    out: &mut Output,
    chunk: &Chunk,
    scratch: &mut Vec<u8>,
    synthesized: &mut u64,
) -> Result<()> {
    let mut at = 0usize;
    for m in &chunk.metas {
        let bytes = &chunk.bytes[at..at + m.len as usize];
        at += m.len as usize;
        let (frame, orig_len) = match m.kind {
            Kind::Frame => (bytes, m.orig_len),
            Kind::Datagram { src, dst } => {
                synthesize(scratch, src, dst, bytes).map_err(|e| {
                    Error::new(
                        ErrorKind::Io,
                        format!("synthesize a frame for {src} -> {dst}: {e}"),
                    )
                })?;
                *synthesized += 1;
                (&scratch[..], m.orig_len)
            }
            Kind::Trigger => {
                if let Output::Ring(r) = out {
                    r.trigger(m.ts_ns)?;
                }
                continue;
            }
        };
        match out {
            Output::Files(f) => f.write(m.ts_ns, frame, orig_len)?,
            Output::Ring(r) => r.record(m.ts_ns, frame, orig_len)?,
        }
    }
    Ok(())
}

//! The trigger ring: the last seconds of traffic kept in memory, written to
//! a file only when a trigger fires (a sequence gap, a signal), so the
//! traffic around an incident is kept without recording the whole day.
//!
//! When a trigger fires at time `t`, a new numbered file receives every
//! record the ring holds from `t - before` on, then every record up to
//! `t + after` (a trigger within that window extends it). The ring is emptied
//! into the file, so two incident files never hold the same record. Memory is
//! bounded twice: by time (`before`) and by bytes (`max_bytes`; when full, the
//! oldest records go first and are counted as evicted).
//!
//! Records are kept in fixed segments that are recycled, so a running ring
//! allocates nothing once it has reached its size.

use crate::write::{numbered, CaptureFile, FileHeader, WrittenFile};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;
use zc_core::{Error, Result};

/// Bytes of one ring segment.
const SEGMENT_BYTES: usize = 1 << 20;

/// Trigger ring settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Traffic kept from before a trigger.
    pub before: Duration,
    /// Traffic recorded after a trigger.
    pub after: Duration,
    /// Memory the ring may hold (rounded up to whole 1 MiB segments, at least one).
    pub max_bytes: usize,
}

impl RingConfig {
    /// `secs` before and after a trigger, up to 256 MiB in memory.
    pub fn seconds(secs: f64) -> Self {
        let d = Duration::from_secs_f64(secs.max(0.0));
        Self {
            before: d,
            after: d,
            max_bytes: 256 << 20,
        }
    }
}

/// One stored record: capture time, place in the segment, original length.
#[derive(Debug, Clone, Copy)]
struct Entry {
    ts_ns: u64,
    start: u32,
    len: u32,
    orig_len: u32,
}

#[derive(Debug, Default)]
struct Segment {
    entries: Vec<Entry>,
    bytes: Vec<u8>,
}

impl Segment {
    fn new() -> Self {
        Self {
            entries: Vec::with_capacity(SEGMENT_BYTES / 64),
            bytes: Vec::with_capacity(SEGMENT_BYTES),
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.bytes.len() + len <= self.bytes.capacity()
    }

    fn newest(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.ts_ns)
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
    }
}

/// What a ring did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RingReport {
    /// Incident files written.
    pub files: Vec<WrittenFile>,
    /// Triggers that fired (a trigger inside an open window only extends it).
    pub triggers: u64,
    /// Records dropped from the ring because `max_bytes` was reached before
    /// they aged out.
    pub evicted: u64,
}

/// The ring itself; lives on the capture's writer thread.
pub struct TriggerRing {
    cfg: RingConfig,
    path: PathBuf,
    header: FileHeader,
    segments: VecDeque<Segment>,
    spare: Vec<Segment>,
    max_segments: usize,
    /// The open incident file and the end of its window.
    recording: Option<(CaptureFile, u64)>,
    next_index: u32,
    report: RingReport,
}

impl TriggerRing {
    /// An empty ring; incident files are `path` numbered (`name-00000.pcap`, ...).
    pub fn new(path: PathBuf, header: FileHeader, cfg: RingConfig) -> Self {
        let max_segments = cfg.max_bytes.div_ceil(SEGMENT_BYTES).max(1);
        Self {
            cfg,
            path,
            header,
            segments: VecDeque::new(),
            spare: Vec::new(),
            max_segments,
            recording: None,
            next_index: 0,
            report: RingReport::default(),
        }
    }

    /// One received frame (already cut to the snapshot length).
    pub fn record(&mut self, ts_ns: u64, frame: &[u8], orig_len: u32) -> Result<()> {
        self.close_if_over(ts_ns)?;
        if let Some((file, _)) = &mut self.recording {
            return file.write(ts_ns, frame, orig_len);
        }
        self.store(ts_ns, frame, orig_len);
        Ok(())
    }

    /// Closes the incident file once `now_ns` is past its window: called with
    /// each record and, when traffic stops, with the clock.
    pub fn close_if_over(&mut self, now_ns: u64) -> Result<()> {
        if self
            .recording
            .as_ref()
            .is_some_and(|(_, until)| now_ns > *until)
        {
            if let Some((file, _)) = self.recording.take() {
                self.report.files.push(file.finish()?);
            }
        }
        Ok(())
    }

    /// A trigger at `ts_ns`: opens an incident file with what the ring holds
    /// from `ts_ns - before` on, or extends the open one.
    pub fn trigger(&mut self, ts_ns: u64) -> Result<()> {
        self.close_if_over(ts_ns)?;
        let until = ts_ns.saturating_add(self.cfg.after.as_nanos() as u64);
        if let Some((_, end)) = &mut self.recording {
            *end = (*end).max(until);
            return Ok(());
        }
        self.report.triggers += 1;
        let path = numbered(&self.path, self.next_index);
        self.next_index += 1;
        let mut file = CaptureFile::create(&path, &self.header)?;
        let from = ts_ns.saturating_sub(self.cfg.before.as_nanos() as u64);
        while let Some(mut seg) = self.segments.pop_front() {
            for e in seg.entries.iter().filter(|e| e.ts_ns >= from) {
                let bytes = &seg.bytes[e.start as usize..(e.start + e.len) as usize];
                file.write(e.ts_ns, bytes, e.orig_len)?;
            }
            seg.clear();
            self.spare.push(seg);
        }
        self.recording = Some((file, until));
        Ok(())
    }

    fn store(&mut self, ts_ns: u64, frame: &[u8], orig_len: u32) {
        let horizon = ts_ns.saturating_sub(self.cfg.before.as_nanos() as u64);
        // Whole segments that aged out go back to the spares.
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.newest() < horizon)
        {
            if let Some(mut s) = self.segments.pop_front() {
                s.clear();
                self.spare.push(s);
            }
        }
        let len = frame.len().min(SEGMENT_BYTES);
        if !self.segments.back().is_some_and(|s| s.fits(len)) {
            let seg = match self.spare.pop() {
                Some(s) => s,
                None if self.segments.len() < self.max_segments => Segment::new(),
                None => match self.segments.pop_front() {
                    Some(mut oldest) => {
                        self.report.evicted += oldest.entries.len() as u64;
                        oldest.clear();
                        oldest
                    }
                    None => Segment::new(),
                },
            };
            self.segments.push_back(seg);
        }
        if let Some(seg) = self.segments.back_mut() {
            let start = seg.bytes.len() as u32;
            seg.bytes.extend_from_slice(&frame[..len]);
            seg.entries.push(Entry {
                ts_ns,
                start,
                len: len as u32,
                orig_len,
            });
        }
    }

    /// Closes an open incident file; returns what the ring did.
    pub fn finish(mut self) -> Result<RingReport> {
        if let Some((file, _)) = self.recording.take() {
            self.report.files.push(file.finish()?);
        }
        Ok(self.report)
    }

    /// Records held in memory now.
    pub fn held(&self) -> usize {
        self.segments.iter().map(|s| s.entries.len()).sum()
    }
}

impl std::fmt::Debug for TriggerRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerRing")
            .field("cfg", &self.cfg)
            .field("held", &self.held())
            .field("recording", &self.recording.is_some())
            .finish()
    }
}

/// Refuses settings that cannot work, with the fix.
pub fn validate(cfg: &RingConfig) -> Result<()> {
    if cfg.before.is_zero() && cfg.after.is_zero() {
        return Err(Error::config(
            "a trigger ring of 0 seconds before and after keeps nothing: give it a length in seconds",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Format;
    use crate::read::CaptureReader;

    fn header() -> FileHeader {
        FileHeader {
            format: Format::Pcap,
            snaplen: 65535,
            comment: Vec::new(),
            interface: "test".into(),
        }
    }

    fn frames_in(path: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
        let mut r = CaptureReader::open(path).unwrap();
        let mut v = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            v.push((rec.ts_ns, rec.data.to_vec()));
        }
        v
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_trigger_writes_the_seconds_before_and_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("incident.pcap");
        let cfg = RingConfig {
            before: Duration::from_secs(2),
            after: Duration::from_secs(1),
            max_bytes: 1 << 20,
        };
        let mut ring = TriggerRing::new(path.clone(), header(), cfg);
        // One frame every 100 ms from t = 100 s to t = 110 s; trigger at 105 s.
        for i in 0..100u64 {
            let ts = 100 * S + i * S / 10;
            if i == 50 {
                ring.trigger(ts).unwrap();
            }
            ring.record(ts, &i.to_be_bytes(), 8).unwrap();
        }
        let report = ring.finish().unwrap();
        assert_eq!(report.triggers, 1);
        assert_eq!(report.files.len(), 1);
        let got = frames_in(&report.files[0].path);
        let first = got.first().unwrap().0;
        let last = got.last().unwrap().0;
        // From 103 s (two seconds before) to 106 s (one second after), inclusive.
        assert_eq!((first, last), (103 * S, 106 * S));
        assert_eq!(got.len(), 31);
        assert_eq!(got[0].1, 30u64.to_be_bytes());
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.pcap");
        let cfg = RingConfig {
            before: Duration::from_secs(3600),
            after: Duration::ZERO,
            max_bytes: 1, // one segment
        };
        let mut ring = TriggerRing::new(path, header(), cfg);
        let frame = vec![7u8; 1000];
        let n = 3 * SEGMENT_BYTES / 1000;
        for i in 0..n as u64 {
            ring.record(S + i, &frame, 1000).unwrap();
        }
        assert!(ring.held() <= SEGMENT_BYTES / 1000);
        ring.trigger(2 * S).unwrap();
        let report = ring.finish().unwrap();
        assert_eq!(report.evicted + report.files[0].records, n as u64);
        assert!(report.evicted > 0);
    }

    #[test]
    fn incidents_go_to_separate_files_without_repeating_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.pcapng");
        let mut h = header();
        h.format = Format::PcapNg;
        let cfg = RingConfig::seconds(1.0);
        let mut ring = TriggerRing::new(path, h, cfg);
        let mut total = 0;
        for i in 0..200u64 {
            let ts = 10 * S + i * S / 20; // 20 per second over 10 s
            if i == 40 || i == 45 || i == 150 {
                ring.trigger(ts).unwrap();
            }
            ring.record(ts, &i.to_be_bytes(), 8).unwrap();
            total += 1;
        }
        ring.close_if_over(u64::MAX).unwrap();
        let report = ring.finish().unwrap();
        assert_eq!(
            report.triggers, 2,
            "the trigger at 45 extends the first window"
        );
        assert_eq!(report.files.len(), 2);
        let a = frames_in(&report.files[0].path);
        let b = frames_in(&report.files[1].path);
        assert!(a.last().unwrap().0 < b.first().unwrap().0);
        assert!(a.len() + b.len() < total);
        // First window: 1 s before 40 (records 20..=39) to 1 s after 45 (up to 65).
        assert_eq!(a.first().unwrap().1, 20u64.to_be_bytes());
        assert_eq!(a.last().unwrap().1, 65u64.to_be_bytes());
    }
}

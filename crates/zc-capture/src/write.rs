//! Capture files on disk: one pcap or pcapng file ([`CaptureFile`]), and a
//! series of them rotated by size or by capture time ([`RotatingFile`]).
//!
//! These run on the capture's writer thread, never on a receive path. The
//! formats are written by the `pcap-file` crate; zc only chooses the headers:
//! nanosecond timestamps, link type Ethernet, and in pcapng a section comment
//! saying how the frames and timestamps were made.

use crate::link::Format;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use zc_core::{Error, ErrorKind, Result};

/// What every file of a capture says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// pcap or pcapng.
    pub format: Format,
    /// Longest frame kept; longer frames are cut (their original length is kept).
    pub snaplen: u32,
    /// Lines for the pcapng section comment (ignored by pcap, which has no
    /// place for them).
    pub comment: Vec<String>,
    /// The interface name for the pcapng interface block.
    pub interface: String,
}

/// Where a capture file's bytes go: buffered, because the formats write a
/// record in several small pieces, and shared, because `PcapWriter` gives no
/// access to its writer and a growing capture must be flushed now and then.
/// Files live on one thread (the capture's writer), so `Rc` is enough.
#[derive(Clone)]
struct Sink(Rc<RefCell<BufWriter<File>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.borrow_mut().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

enum Writer {
    Pcap(PcapWriter<Sink>),
    PcapNg(PcapNgWriter<Sink>),
}

/// One open capture file.
pub struct CaptureFile {
    path: PathBuf,
    writer: Writer,
    sink: Sink,
    snaplen: u32,
    bytes: u64,
    records: u64,
}

fn write_error(path: &Path, e: PcapError) -> Error {
    match e {
        PcapError::IoError(io) => Error::io(format!("write capture file {}", path.display()), io)
            .with_fix("check the disk has room and the file system is writable"),
        other => Error::new(
            ErrorKind::Io,
            format!("write capture file {}: {other}", path.display()),
        ),
    }
}

impl CaptureFile {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &Path, header: &FileHeader) -> Result<Self> {
        let file = File::create(path).map_err(|e| {
            Error::io(format!("create capture file {}", path.display()), e)
                .with_fix("check the folder exists and is writable")
        })?;
        let sink = Sink(Rc::new(RefCell::new(BufWriter::with_capacity(
            1 << 20,
            file,
        ))));
        let endianness = if cfg!(target_endian = "little") {
            Endianness::Little
        } else {
            Endianness::Big
        };
        let snaplen = header.snaplen;
        let writer = match header.format {
            Format::Pcap => {
                let h = PcapHeader {
                    snaplen,
                    datalink: DataLink::ETHERNET,
                    ts_resolution: TsResolution::NanoSecond,
                    endianness,
                    ..PcapHeader::default()
                };
                Writer::Pcap(
                    PcapWriter::with_header(sink.clone(), h).map_err(|e| write_error(path, e))?,
                )
            }
            Format::PcapNg => {
                let mut options = vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                    "zc {}",
                    env!("CARGO_PKG_VERSION")
                )))];
                if !header.comment.is_empty() {
                    options.push(SectionHeaderOption::Comment(Cow::Owned(
                        header.comment.join("\n"),
                    )));
                }
                let shb = SectionHeaderBlock {
                    endianness,
                    options,
                    ..SectionHeaderBlock::default()
                };
                let mut w = PcapNgWriter::with_section_header(sink.clone(), shb)
                    .map_err(|e| write_error(path, e))?;
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::ETHERNET,
                    snaplen,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Owned(header.interface.clone())),
                        // 10^-9 s: nanosecond timestamps.
                        InterfaceDescriptionOption::IfTsResol(9),
                    ],
                };
                w.write_pcapng_block(idb)
                    .map_err(|e| write_error(path, e))?;
                Writer::PcapNg(w)
            }
        };
        Ok(Self {
            path: path.to_owned(),
            writer,
            sink,
            snaplen,
            bytes: 0,
            records: 0,
        })
    }

    /// Appends one frame received at `ts_ns` (nanoseconds since the epoch),
    /// cut to the snapshot length. `orig_len` is its length on the wire
    /// (`frame` may already be cut short); at least `frame.len()` is recorded.
    pub fn write(&mut self, ts_ns: u64, frame: &[u8], orig_len: u32) -> Result<()> {
        let keep = frame.len().min(self.snaplen as usize);
        let data = &frame[..keep];
        let orig_len = orig_len.max(u32::try_from(frame.len()).unwrap_or(u32::MAX));
        let ts = Duration::from_nanos(ts_ns);
        let n = match &mut self.writer {
            Writer::Pcap(w) => w.write_packet(&PcapPacket::new(ts, orig_len, data)),
            Writer::PcapNg(w) => w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: ts,
                original_len: orig_len,
                data: Cow::Borrowed(data),
                options: Vec::new(),
            }),
        }
        .map_err(|e| write_error(&self.path, e))?;
        self.bytes += n as u64;
        self.records += 1;
        Ok(())
    }

    /// Pushes buffered records to the file (so readers of a growing file see them).
    pub fn flush(&mut self) -> Result<()> {
        self.sink
            .flush()
            .map_err(|e| Error::io(format!("flush capture file {}", self.path.display()), e))
    }

    /// Flushes and closes the file; returns what it holds.
    pub fn finish(mut self) -> Result<WrittenFile> {
        self.flush()?;
        Ok(WrittenFile {
            path: self.path,
            records: self.records,
            bytes: self.bytes,
        })
    }

    /// Record bytes written so far (headers of the file not counted).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// A finished capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it is.
    pub path: PathBuf,
    /// Frames in it.
    pub records: u64,
    /// Bytes of records (file headers excluded).
    pub bytes: u64,
}

/// When to start the next file of a capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// After this many bytes of records.
    pub bytes: Option<u64>,
    /// After this much capture time (by record timestamps) since the file's
    /// first record.
    pub every: Option<Duration>,
}

impl Rotation {
    /// True when files rotate at all.
    pub fn is_on(&self) -> bool {
        self.bytes.is_some() || self.every.is_some()
    }
}

/// The name of file `index` of a numbered series based on `path`:
/// `dir/name.pcap` → `dir/name-00003.pcap`.
pub fn numbered(path: &Path, index: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "capture".into(), |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index:05}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index:05}"),
    };
    path.with_file_name(name)
}

/// A capture written to one file, or to a numbered series rotated by size or
/// time (`name-00000.pcap`, `name-00001.pcap`, ...).
pub struct RotatingFile {
    path: PathBuf,
    header: FileHeader,
    rotation: Rotation,
    current: Option<(CaptureFile, u64)>,
    next_index: u32,
    done: Vec<WrittenFile>,
}

impl RotatingFile {
    /// Opens the first file at once, so a bad path fails before receiving starts.
    pub fn create(path: &Path, header: FileHeader, rotation: Rotation) -> Result<Self> {
        let mut f = Self {
            path: path.to_owned(),
            header,
            rotation,
            current: None,
            next_index: 0,
            done: Vec::new(),
        };
        f.open_next(None)?;
        Ok(f)
    }

    fn open_next(&mut self, first_ts: Option<u64>) -> Result<()> {
        let path = if self.rotation.is_on() {
            numbered(&self.path, self.next_index)
        } else {
            self.path.clone()
        };
        self.next_index += 1;
        let file = CaptureFile::create(&path, &self.header)?;
        self.current = Some((file, first_ts.unwrap_or(0)));
        Ok(())
    }

    /// Appends one frame, starting the next file first when this one is full or old.
    pub fn write(&mut self, ts_ns: u64, frame: &[u8], orig_len: u32) -> Result<()> {
        if let Some((file, first_ts)) = &mut self.current {
            if file.records() == 0 {
                *first_ts = ts_ns;
            }
            let full = self.rotation.bytes.is_some_and(|b| file.bytes() >= b);
            let old = self
                .rotation
                .every
                .is_some_and(|t| ts_ns.saturating_sub(*first_ts) >= t.as_nanos() as u64);
            if file.records() > 0 && (full || old) {
                if let Some((f, _)) = self.current.take() {
                    self.done.push(f.finish()?);
                }
                self.open_next(Some(ts_ns))?;
            }
        }
        match &mut self.current {
            Some((file, _)) => file.write(ts_ns, frame, orig_len),
            None => Err(Error::new(
                ErrorKind::Io,
                format!("capture {} is already closed", self.path.display()),
            )),
        }
    }

    /// Flushes the current file.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.current {
            Some((f, _)) => f.flush(),
            None => Ok(()),
        }
    }

    /// Closes the current file; returns every file written, in order.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>> {
        if let Some((f, _)) = self.current.take() {
            self.done.push(f.finish()?);
        }
        Ok(self.done)
    }
}

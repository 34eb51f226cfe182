//! Reading pcap and pcapng files down to UDP datagrams.
//!
//! The `pcap-file` crate parses the file structure (headers, records,
//! blocks); this reader keeps its own buffer so that a record it cannot read
//! is explained exactly: which file, which record, at which byte, and why
//! (wrong magic, the file ends inside a record, a captured length beyond the
//! snapshot length or the file, an unknown link type). Every record before a
//! bad one has been handed out by then: nothing is lost ahead of the error.
//!
//! Two things `pcap-file` 2 does not do are done here: pcap records may be
//! shorter on disk than on the wire (`orig_len` above the snapshot length is
//! legal), and pcapng timestamps are scaled by each interface's `if_tsresol`
//! and `if_tsoffset` (the crate reads every timestamp as nanoseconds).
//!
//! Above the link header, frames go through `zc_core::wire`: the same checks
//! every backend applies. Records without a usable UDP datagram (ARP, TCP,
//! IPv6, fragments, a bad IPv4 header checksum, cut by the snapshot length)
//! are skipped and counted by reason. A UDP checksum that does not verify is
//! counted, not skipped: captures on the sending host hold unfinished ones.

use crate::link::{decode_udp, is_synthesized, Format, LinkLayer, Skip};
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::section_header::SectionHeaderOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};
use std::fs::File;
use std::io::Read;
use std::net::SocketAddrV4;
use std::ops::Range;
use std::path::Path;
use zc_core::{Error, ErrorKind, Result};

/// Largest record or block the reader holds in memory (a pcap record's
/// captured length, a pcapng block's total length). Far above any frame; a
/// length beyond it is a corrupt file.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// First read buffer; it grows (up to [`MAX_RECORD_BYTES`]) only for a record
/// that does not fit.
const INITIAL_BUFFER: usize = 1 << 20;

/// Magic of a pcapng Section Header Block.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Key of the line in a zc pcapng section comment giving CLOCK_REALTIME
/// minus CLOCK_MONOTONIC at capture time, in nanoseconds.
pub const CLOCK_OFFSET_KEY: &str = "zc-clock-offset-ns:";

/// One record of a capture: a frame and when it was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Position among the packet records of the file, from 1 (as Wireshark numbers frames).
    pub number: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (the record holds `data.len()` of it).
    pub orig_len: u32,
    /// The bytes in the file, starting with the link header.
    pub data: &'a [u8],
    /// How to read `data`.
    pub link: LinkLayer,
}

/// A UDP datagram found in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRecord<'a> {
    /// Position of its record in the file, from 1.
    pub number: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
    /// The frame was synthesized by zc from a socket datagram, not received as is.
    pub synthesized: bool,
}

/// An owned [`UdpRecord`], for code that wants a plain [`Iterator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// What a reader saw so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Packet records read.
    pub records: u64,
    /// Records that held a UDP datagram (handed out by [`CaptureReader::next_udp`]).
    pub udp: u64,
    /// Of `udp`, frames zc synthesized from socket datagrams.
    pub synthesized: u64,
    /// Of `udp`, datagrams whose UDP checksum does not verify: handed out
    /// all the same (captures on the sending host hold unfinished checksums;
    /// see [`crate::link::decode_udp`]).
    pub udp_checksum_wrong: u64,
    /// Records without a usable datagram, by reason (see [`Skip::reason`]).
    pub skipped: Vec<(&'static str, u64)>,
}

impl ReadStats {
    /// All skipped records.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().map(|(_, n)| n).sum()
    }

    fn skip(&mut self, reason: &'static str) {
        match self.skipped.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.skipped.push((reason, 1)),
        }
    }
}

/// One pcapng interface: how to read its packets.
#[derive(Debug, Clone)]
struct Interface {
    link: std::result::Result<LinkLayer, String>,
    snaplen: u32,
    /// `if_tsresol`: bit 7 clear, 10^-n s; set, 2^-n s. Default 6 (µs).
    tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    tsoffset: u64,
}

enum Kind {
    Pcap {
        parser: PcapParser,
        link: std::result::Result<LinkLayer, String>,
        snaplen: u32,
        nano: bool,
        big_endian: bool,
    },
    PcapNg {
        parser: PcapNgParser,
        interfaces: Vec<Interface>,
    },
}

/// The record just read: where its bytes are in the buffer, and its metadata.
#[derive(Debug, Clone)]
struct Current {
    data: Range<usize>,
    ts_ns: u64,
    orig_len: u32,
    link: LinkLayer,
}

/// What refilling the buffer achieved.
enum More {
    Read,
    EndOfFile,
    RecordTooLarge,
}

/// The bytes of a capture file: a buffer over the source, and where in the
/// file the buffer stands (for errors).
struct Input<R> {
    name: String,
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// File offset of `buf[pos]`.
    offset: u64,
}

/// Reads a pcap or pcapng capture record by record, or UDP datagram by UDP datagram.
///
/// ```no_run
/// use zc_capture::read::CaptureReader;
/// let mut r = CaptureReader::open("feed.pcap".as_ref())?;
/// while let Some(u) = r.next_udp()? {
///     println!("{} {} -> {}: {} bytes", u.ts_ns, u.src, u.dst, u.payload.len());
/// }
/// # Ok::<(), zc_core::Error>(())
/// ```
pub struct CaptureReader<R> {
    input: Input<R>,
    kind: Kind,
    current: Option<Current>,
    last_ts: u64,
    failed: bool,
    clock_offset_ns: Option<i64>,
    stats: ReadStats,
}

impl CaptureReader<File> {
    /// Opens a capture file; its name appears in every error.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| {
            Error::io(format!("open capture {}", path.display()), e)
                .with_fix("check the path; captures are pcap or pcapng files")
        })?;
        Self::new(path.display().to_string(), f)
    }
}

/// Where `inner` starts within `outer` (a sub-slice of it).
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Nanoseconds of `ticks` in units of `if_tsresol`, plus `offset_s` seconds.
fn scale_ts(ticks: u64, tsresol: u8, offset_s: u64) -> Option<u64> {
    let exp = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        match exp {
            0..=9 => u128::from(ticks) * 10u128.pow(9 - exp),
            10..=38 => u128::from(ticks) / 10u128.pow(exp - 9),
            _ => return None,
        }
    } else {
        if exp > 64 {
            return None;
        }
        (u128::from(ticks) * 1_000_000_000) >> exp
    };
    let ns = ns.checked_add(u128::from(offset_s) * 1_000_000_000)?;
    u64::try_from(ns).ok()
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `src`; `name` (a path) appears in every error.
    pub fn new(name: impl Into<String>, src: R) -> Result<Self> {
        let mut input = Input {
            name: name.into(),
            src,
            buf: vec![0; INITIAL_BUFFER],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
        };
        let (kind, clock_offset_ns) = input.read_header()?;
        Ok(CaptureReader {
            input,
            kind,
            current: None,
            last_ts: 0,
            failed: false,
            clock_offset_ns,
            stats: ReadStats::default(),
        })
    }
}

impl<R: Read> Input<R> {
    fn error(&self, record: u64, at: u64, what: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("{}: record {record} at byte {at}: {what}", self.name),
        )
    }

    /// Fills the buffer from the source: compacts, grows for a record larger
    /// than the buffer, reads once.
    fn more(&mut self) -> Result<More> {
        if self.eof {
            return Ok(More::EndOfFile);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_RECORD_BYTES {
                return Ok(More::RecordTooLarge);
            }
            let grown = (self.buf.len() * 2).min(MAX_RECORD_BYTES);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(More::EndOfFile);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(More::Read);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("read capture {}", self.name), e)),
            }
        }
    }

    fn read_header(&mut self) -> Result<(Kind, Option<i64>)> {
        while self.end < 24 && matches!(self.more()?, More::Read) {}
        let head = &self.buf[..self.end];
        if head.len() < 4 {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{}: {} bytes is too short for a capture file (pcap and pcapng files start with a 4-byte magic number)",
                    self.name,
                    head.len()
                ),
            ));
        }
        let magic = [head[0], head[1], head[2], head[3]];
        let pcap_magic = matches!(
            u32::from_be_bytes(magic),
            0xa1b2c3d4 | 0xa1b23c4d | 0xd4c3b2a1 | 0x4d3cb2a1
        );
        if magic == PCAPNG_MAGIC {
            return self.read_pcapng_header();
        }
        if !pcap_magic {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{}: wrong magic number {:02x}{:02x}{:02x}{:02x}: not a pcap (a1b2c3d4, a1b23c4d in either byte order) or pcapng (0a0d0d0a) file",
                    self.name, magic[0], magic[1], magic[2], magic[3]
                ),
            )
            .with_fix("give a capture written by zc, tcpdump, tshark or dumpcap"));
        }
        if head.len() < 24 {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{}: the file ends {} bytes into the 24-byte pcap header: the capture was cut short",
                    self.name,
                    head.len()
                ),
            ));
        }
        let (rem, parser) = PcapParser::new(head)
            .map_err(|e| Error::new(ErrorKind::Io, format!("{}: pcap header: {e}", self.name)))?;
        let consumed = head.len() - rem.len();
        let h = parser.header();
        // The upper bits of the link type field carry FCS information.
        let code = u32::from(h.datalink) & 0xffff;
        let link = LinkLayer::from_datalink(code.into());
        if let Err(why) = &link {
            return Err(
                Error::new(ErrorKind::Unsupported, format!("{}: {why}", self.name)).with_fix(
                    "capture on an Ethernet interface, or with `tcpdump -i any` (Linux cooked)",
                ),
            );
        }
        let kind = Kind::Pcap {
            link,
            snaplen: h.snaplen,
            nano: h.ts_resolution == TsResolution::NanoSecond,
            big_endian: h.endianness == Endianness::Big,
            parser,
        };
        self.pos = consumed;
        self.offset = consumed as u64;
        Ok((kind, None))
    }

    fn read_pcapng_header(&mut self) -> Result<(Kind, Option<i64>)> {
        loop {
            let avail = &self.buf[self.pos..self.end];
            match PcapNgParser::new(avail) {
                Ok((rem, parser)) => {
                    let consumed = avail.len() - rem.len();
                    let offset = clock_offset(&parser);
                    let kind = Kind::PcapNg {
                        parser,
                        interfaces: Vec::new(),
                    };
                    self.pos += consumed;
                    self.offset += consumed as u64;
                    return Ok((kind, offset));
                }
                Err(PcapError::IncompleteBuffer) => {
                    if !matches!(self.more()?, More::Read) {
                        return Err(self.block_cut_short(1, false));
                    }
                }
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("{}: pcapng section header: {e}", self.name),
                    ))
                }
            }
        }
    }

    /// True when nothing is left: the source is exhausted and the buffer empty.
    fn at_end(&mut self) -> Result<bool> {
        while self.pos == self.end {
            if !matches!(self.more()?, More::Read) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Explains a pcap record the buffer could not complete.
    fn pcap_record_cut_short(
        &self,
        number: u64,
        too_large: bool,
        snaplen: u32,
        big_endian: bool,
    ) -> Error {
        let left = &self.buf[self.pos..self.end];
        if left.len() < 16 {
            return self.error(
                number,
                self.offset,
                format!(
                    "the file ends {} bytes into the 16-byte record header: the capture was cut short",
                    left.len()
                ),
            );
        }
        let incl = u32_at(left, 8, big_endian);
        let what = if snaplen != 0 && incl > snaplen {
            format!("captured length {incl} is larger than the file's snapshot length {snaplen}: the file is corrupt")
        } else if too_large {
            format!(
                "captured length {incl} is larger than the largest record zc reads ({MAX_RECORD_BYTES} bytes): the file is corrupt"
            )
        } else {
            format!(
                "captured length {incl} goes beyond the end of the file ({} bytes left): the capture was cut short",
                left.len() - 16
            )
        };
        self.error(number, self.offset, what)
    }

    /// Explains a pcapng block the buffer could not complete.
    fn block_cut_short(&self, number: u64, big_endian: bool) -> Error {
        let left = &self.buf[self.pos..self.end];
        if left.len() < 12 {
            return self.error(
                number,
                self.offset,
                format!(
                    "the file ends {} bytes into a block header: the capture was cut short",
                    left.len()
                ),
            );
        }
        // A section header block's length is in the byte order its magic gives.
        let big_endian = if left[..4] == PCAPNG_MAGIC {
            left[8..12] == [0x1a, 0x2b, 0x3c, 0x4d]
        } else {
            big_endian
        };
        let len = u32_at(left, 4, big_endian);
        if len as usize > MAX_RECORD_BYTES {
            return self.error(
                number,
                self.offset,
                format!("block length {len} is larger than the largest block zc reads ({MAX_RECORD_BYTES} bytes): the file is corrupt"),
            );
        }
        self.error(
            number,
            self.offset,
            format!(
                "block of {len} bytes goes beyond the end of the file ({} bytes left): the capture was cut short",
                left.len()
            ),
        )
    }
}

impl<R: Read> CaptureReader<R> {
    /// The format of the file.
    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Pcap { .. } => Format::Pcap,
            Kind::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// CLOCK_REALTIME minus CLOCK_MONOTONIC when zc wrote the file (pcapng
    /// only): turns capture times back into the clock message timestamps use.
    pub fn clock_offset_ns(&self) -> Option<i64> {
        self.clock_offset_ns
    }

    /// What was read so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The file name errors carry.
    pub fn name(&self) -> &str {
        &self.input.name
    }

    /// The next packet record, `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        if !self.advance()? {
            return Ok(None);
        }
        Ok(self.current.as_ref().map(|c| Record {
            number: self.stats.records,
            ts_ns: c.ts_ns,
            orig_len: c.orig_len,
            data: &self.input.buf[c.data.clone()],
            link: c.link,
        }))
    }

    /// The next record that holds a UDP datagram over IPv4; the records in
    /// between are counted in [`ReadStats::skipped`]. `None` at the end.
    pub fn next_udp(&mut self) -> Result<Option<UdpRecord<'_>>> {
        loop {
            if !self.advance()? {
                return Ok(None);
            }
            let Some(c) = self.current.clone() else {
                return Ok(None);
            };
            let data = &self.input.buf[c.data.clone()];
            let found = if data.len() < c.orig_len as usize {
                Err(Skip::CutBySnaplen {
                    captured: data.len() as u32,
                    original: c.orig_len,
                })
            } else {
                decode_udp(c.link, data)
                    .map(|u| {
                        let at = offset_in(&self.input.buf, u.payload);
                        let synthesized = c.link == LinkLayer::Ethernet && is_synthesized(data);
                        let checksum_wrong = !u.checksum_ok;
                        (
                            u.src,
                            u.dst,
                            at..at + u.payload.len(),
                            synthesized,
                            checksum_wrong,
                        )
                    })
                    .map_err(Skip::Wire)
            };
            match found {
                Ok((src, dst, payload, synthesized, checksum_wrong)) => {
                    self.stats.udp += 1;
                    self.stats.synthesized += u64::from(synthesized);
                    self.stats.udp_checksum_wrong += u64::from(checksum_wrong);
                    return Ok(Some(UdpRecord {
                        number: self.stats.records,
                        ts_ns: c.ts_ns,
                        src,
                        dst,
                        payload: &self.input.buf[payload],
                        synthesized,
                    }));
                }
                Err(skip) => self.stats.skip(skip.reason()),
            }
        }
    }

    /// Every UDP datagram as an owned [`UdpPacket`] (one allocation each;
    /// [`Self::next_udp`] borrows instead). Ends after the first error.
    pub fn udp_packets(self) -> UdpPackets<R> {
        UdpPackets {
            reader: self,
            done: false,
        }
    }

    /// Reads the next packet record into `current`; false at the end.
    fn advance(&mut self) -> Result<bool> {
        self.current = None;
        if self.failed {
            return Ok(false);
        }
        let r = match self.kind {
            Kind::Pcap { .. } => self.advance_pcap(),
            Kind::PcapNg { .. } => self.advance_pcapng(),
        };
        match r {
            Ok(true) => {
                self.stats.records += 1;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn advance_pcap(&mut self) -> Result<bool> {
        if self.input.at_end()? {
            return Ok(false);
        }
        let number = self.stats.records + 1;
        loop {
            let Kind::Pcap {
                parser,
                link,
                snaplen,
                nano,
                big_endian,
            } = &self.kind
            else {
                return Ok(false);
            };
            let avail = &self.input.buf[self.input.pos..self.input.end];
            match parser.next_raw_packet(avail) {
                Ok((rem, raw)) => {
                    let consumed = avail.len() - rem.len();
                    let at = self.input.offset;
                    let (incl, orig) = (raw.incl_len, raw.orig_len);
                    if *snaplen != 0 && incl > *snaplen {
                        return Err(self.input.error(
                            number,
                            at,
                            format!("captured length {incl} is larger than the file's snapshot length {snaplen}: the file is corrupt"),
                        ));
                    }
                    if incl > orig {
                        return Err(self.input.error(
                            number,
                            at,
                            format!("captured length {incl} is larger than the original length {orig}: the file is corrupt"),
                        ));
                    }
                    let limit = if *nano { 1_000_000_000 } else { 1_000_000 };
                    if raw.ts_frac >= limit {
                        return Err(self.input.error(
                            number,
                            at,
                            format!(
                                "timestamp fraction {} is not below one second ({limit} {})",
                                raw.ts_frac,
                                if *nano { "ns" } else { "µs" }
                            ),
                        ));
                    }
                    let frac_ns = if *nano {
                        raw.ts_frac
                    } else {
                        raw.ts_frac * 1000
                    };
                    let ts_ns = u64::from(raw.ts_sec) * 1_000_000_000 + u64::from(frac_ns);
                    let start = self.input.pos + offset_in(avail, &raw.data);
                    let link = match link {
                        Ok(l) => *l,
                        Err(why) => return Err(self.input.error(number, at, why)),
                    };
                    self.current = Some(Current {
                        data: start..start + incl as usize,
                        ts_ns,
                        orig_len: orig,
                        link,
                    });
                    self.last_ts = ts_ns;
                    self.input.pos += consumed;
                    self.input.offset += consumed as u64;
                    return Ok(true);
                }
                Err(PcapError::IncompleteBuffer) => match self.input.more()? {
                    More::Read => {}
                    More::EndOfFile => {
                        return Err(self.input.pcap_record_cut_short(
                            number,
                            false,
                            *snaplen,
                            *big_endian,
                        ))
                    }
                    More::RecordTooLarge => {
                        return Err(self.input.pcap_record_cut_short(
                            number,
                            true,
                            *snaplen,
                            *big_endian,
                        ))
                    }
                },
                Err(e) => return Err(self.input.error(number, self.input.offset, e)),
            }
        }
    }

    fn advance_pcapng(&mut self) -> Result<bool> {
        loop {
            if self.input.at_end()? {
                return Ok(false);
            }
            let number = self.stats.records + 1;
            let at = self.input.offset;
            let Kind::PcapNg { parser, interfaces } = &mut self.kind else {
                return Ok(false);
            };
            let avail = &self.input.buf[self.input.pos..self.input.end];
            let (consumed, packet) = match parser.next_block(avail) {
                Ok((rem, block)) => {
                    let consumed = avail.len() - rem.len();
                    let packet = match block {
                        Block::SectionHeader(_) => {
                            interfaces.clear();
                            None
                        }
                        Block::InterfaceDescription(idb) => {
                            let mut iface = Interface {
                                link: LinkLayer::from_datalink(idb.linktype),
                                snaplen: idb.snaplen,
                                tsresol: 6,
                                tsoffset: 0,
                            };
                            for o in &idb.options {
                                match o {
                                    InterfaceDescriptionOption::IfTsResol(r) => iface.tsresol = *r,
                                    InterfaceDescriptionOption::IfTsOffset(s) => {
                                        iface.tsoffset = *s
                                    }
                                    _ => {}
                                }
                            }
                            interfaces.push(iface);
                            None
                        }
                        // pcap-file 2 reads the raw timestamp as nanoseconds; scaled below.
                        Block::EnhancedPacket(p) => Some((
                            p.interface_id,
                            Some(p.timestamp.as_nanos() as u64),
                            p.original_len,
                            offset_in(avail, &p.data)..offset_in(avail, &p.data) + p.data.len(),
                        )),
                        // The obsolete Packet Block: pcap-file 2 reads its two
                        // timestamp words as one u64, right only in big-endian files.
                        Block::Packet(p) => Some((
                            u32::from(p.interface_id),
                            Some(if parser.section().endianness == Endianness::Big {
                                p.timestamp
                            } else {
                                p.timestamp.rotate_left(32)
                            }),
                            p.original_len,
                            offset_in(avail, &p.data)..offset_in(avail, &p.data) + p.data.len(),
                        )),
                        // No timestamp: the previous record's time stands.
                        Block::SimplePacket(p) => Some((
                            0,
                            None,
                            p.original_len,
                            offset_in(avail, &p.data)..offset_in(avail, &p.data) + p.data.len(),
                        )),
                        _ => None,
                    };
                    (consumed, packet)
                }
                Err(PcapError::IncompleteBuffer) => match self.input.more()? {
                    More::Read => continue,
                    More::EndOfFile | More::RecordTooLarge => {
                        return Err(self.input.block_cut_short(
                            number,
                            parser.section().endianness == Endianness::Big,
                        ))
                    }
                },
                Err(e) => return Err(self.input.error(number, at, e)),
            };
            let Some((iface_id, ticks, orig_len, data)) = packet else {
                self.input.pos += consumed;
                self.input.offset += consumed as u64;
                continue;
            };
            let Some(iface) = interfaces.get(iface_id as usize).cloned() else {
                let n = interfaces.len();
                return Err(self.input.error(
                    number,
                    at,
                    format!("packet of interface {iface_id}, but the section describes {n} interface(s): the file is corrupt"),
                ));
            };
            let link = match iface.link {
                Ok(l) => l,
                Err(why) => return Err(self.input.error(number, at, why)),
            };
            let captured = data.len() as u32;
            if iface.snaplen != 0 && captured > iface.snaplen {
                return Err(self.input.error(
                    number,
                    at,
                    format!("captured length {captured} is larger than the interface's snapshot length {}: the file is corrupt", iface.snaplen),
                ));
            }
            let ts_ns = match ticks {
                None => self.last_ts,
                Some(t) => scale_ts(t, iface.tsresol, iface.tsoffset).ok_or_else(|| {
                    self.input.error(
                        number,
                        at,
                        format!(
                            "timestamp {t} with resolution code {:#04x} is out of range",
                            iface.tsresol
                        ),
                    )
                })?,
            };
            let start = self.input.pos + data.start;
            self.current = Some(Current {
                data: start..start + data.len(),
                ts_ns,
                orig_len: orig_len.max(captured),
                link,
            });
            self.last_ts = ts_ns;
            self.input.pos += consumed;
            self.input.offset += consumed as u64;
            return Ok(true);
        }
    }
}

/// The clock offset a zc section comment carries.
fn clock_offset(parser: &PcapNgParser) -> Option<i64> {
    parser.section().options.iter().find_map(|o| match o {
        SectionHeaderOption::Comment(c) => c
            .lines()
            .find_map(|l| l.strip_prefix(CLOCK_OFFSET_KEY))
            .and_then(|v| v.trim().parse().ok()),
        _ => None,
    })
}

/// Owned UDP datagrams of a capture; see [`CaptureReader::udp_packets`].
pub struct UdpPackets<R> {
    reader: CaptureReader<R>,
    done: bool,
}

impl<R> UdpPackets<R> {
    /// The reader's counters so far.
    pub fn stats(&self) -> &ReadStats {
        &self.reader.stats
    }
}

impl<R: Read> Iterator for UdpPackets<R> {
    type Item = Result<UdpPacket>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.next_udp() {
            Ok(Some(u)) => Some(Ok(UdpPacket {
                ts_ns: u.ts_ns,
                src: u.src,
                dst: u.dst,
                payload: u.payload.to_vec(),
            })),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_scale_by_resolution_and_offset() {
        assert_eq!(scale_ts(1_500_000, 6, 0), Some(1_500_000_000));
        assert_eq!(scale_ts(7, 9, 0), Some(7));
        assert_eq!(scale_ts(3, 0, 10), Some(13_000_000_000));
        assert_eq!(scale_ts(1_000_000_000_000, 12, 0), Some(1_000_000_000));
        // 2^-10 s units: 1024 ticks is one second.
        assert_eq!(scale_ts(1024, 0x80 | 10, 0), Some(1_000_000_000));
        assert_eq!(scale_ts(u64::MAX, 0, 0), None);
        assert_eq!(scale_ts(1, 0x7f, 0), None);
    }
}

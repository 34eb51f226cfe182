//! Capture files: what zc writes reads back exactly (and tcpdump reads it
//! too), and every kind of broken file gives an error naming the file and
//! the record, after every record before it was read.

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use std::borrow::Cow;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use zc_capture::link::{synthesize, Format};
use zc_capture::read::CaptureReader;
use zc_capture::write::{CaptureFile, FileHeader, RotatingFile, Rotation};

const T0: u64 = 1_764_000_000_123_456_789;

fn header(format: Format, snaplen: u32) -> FileHeader {
    FileHeader {
        format,
        snaplen,
        comment: vec!["zc test".into()],
        interface: "test0".into(),
    }
}

fn frame(i: u16) -> Vec<u8> {
    let src: SocketAddrV4 = "198.18.9.2:4000".parse().unwrap();
    let dst = SocketAddrV4::new(
        *"198.18.9.1:0".parse::<SocketAddrV4>().unwrap().ip(),
        9000 + i % 2,
    );
    let payload: Vec<u8> = (0..32).map(|b| (b as u16 * 7 + i) as u8).collect();
    let mut buf = Vec::new();
    synthesize(&mut buf, src, dst, &payload).unwrap();
    buf
}

/// A capture of `n` frames, one every microsecond from T0.
fn write_capture(path: &Path, format: Format, snaplen: u32, n: u16) {
    let mut f = CaptureFile::create(path, &header(format, snaplen)).unwrap();
    for i in 0..n {
        let fr = frame(i);
        f.write(T0 + u64::from(i) * 1000, &fr, fr.len() as u32)
            .unwrap();
    }
    f.finish().unwrap();
}

/// Reads every record, then the error (if any).
fn read_all(path: &Path) -> (Vec<(u64, Vec<u8>)>, Option<String>) {
    let mut r = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let mut got = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some(rec)) => got.push((rec.ts_ns, rec.data.to_vec())),
            Ok(None) => return (got, None),
            Err(e) => return (got, Some(e.to_string())),
        }
    }
}

fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    (dir, p)
}

#[test]
fn pcap_and_pcapng_round_trip_with_nanosecond_timestamps() {
    for format in [Format::Pcap, Format::PcapNg] {
        let (_d, path) = tmp(&format!("rt.{}", format.extension()));
        write_capture(&path, format, 65535, 50);
        let mut r = CaptureReader::open(&path).unwrap();
        assert_eq!(r.format(), format);
        let mut i = 0u16;
        while let Some(u) = r.next_udp().unwrap() {
            let want = frame(i);
            assert_eq!(u.ts_ns, T0 + u64::from(i) * 1000, "{format:?} record {i}");
            assert_eq!(u.payload, &want[42..]);
            assert_eq!(u.dst.port(), 9000 + i % 2);
            assert!(u.synthesized);
            i += 1;
        }
        assert_eq!(i, 50);
        assert_eq!(r.stats().records, 50);
        assert_eq!(r.stats().synthesized, 50);
    }
}

#[test]
fn tcpdump_reads_what_zc_writes() {
    let tcpdump = Command::new("tcpdump").arg("--version").output();
    assert!(
        tcpdump.is_ok(),
        "tcpdump is missing: run ./build/install-deps.sh (it installs tcpdump and tcpreplay)"
    );
    for format in [Format::Pcap, Format::PcapNg] {
        let (_d, path) = tmp(&format!("td.{}", format.extension()));
        write_capture(&path, format, 65535, 20);
        let out = Command::new("tcpdump")
            .args(["-nn", "-tt", "--time-stamp-precision=nano", "-r"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{format:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20, "{text}");
        // tcpdump prints seconds.nanoseconds, then the addresses and the UDP length.
        assert!(
            lines[0].starts_with(
                "1764000000.123456789 IP 198.18.9.2.4000 > 198.18.9.1.9000: UDP, length 32"
            ),
            "{text}"
        );
        assert!(
            lines[19].starts_with("1764000000.123475789 IP 198.18.9.2.4000 > 198.18.9.1.9001"),
            "{text}"
        );
    }
}

#[test]
fn pcapng_timestamps_follow_the_interface_resolution() {
    // A microsecond pcapng (the resolution dumpcap uses), written block by block.
    let (_d, path) = tmp("micro.pcapng");
    let mut w = PcapNgWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![InterfaceDescriptionOption::IfTsResol(6)],
    })
    .unwrap();
    let fr = frame(0);
    // pcap-file 2 writes the raw tick count it is given: 1 234 567 µs.
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: 0,
        timestamp: Duration::from_nanos(1_234_567),
        original_len: fr.len() as u32,
        data: Cow::Borrowed(&fr),
        options: vec![],
    })
    .unwrap();
    drop(w);
    let mut r = CaptureReader::open(&path).unwrap();
    let u = r.next_udp().unwrap().unwrap();
    assert_eq!(u.ts_ns, 1_234_567_000);
}

#[test]
fn rotation_by_size_and_by_time_numbers_the_files() {
    let (d, path) = tmp("rot.pcap");
    let rot = Rotation {
        bytes: Some(1000),
        every: None,
    };
    let mut f = RotatingFile::create(&path, header(Format::Pcap, 65535), rot).unwrap();
    for i in 0..30u16 {
        let fr = frame(i);
        f.write(T0 + u64::from(i), &fr, fr.len() as u32).unwrap();
    }
    let files = f.finish().unwrap();
    // 74-byte frames + 16-byte headers: a file passes 1000 bytes after 12 records.
    assert_eq!(
        files.iter().map(|w| w.records).collect::<Vec<_>>(),
        [12, 12, 6]
    );
    assert_eq!(files[0].path, d.path().join("rot-00000.pcap"));
    assert_eq!(files[2].path, d.path().join("rot-00002.pcap"));
    let (got, err) = read_all(&files[1].path);
    assert_eq!((got.len(), err), (12, None));

    let (_d2, path) = tmp("time.pcapng");
    let rot = Rotation {
        bytes: None,
        every: Some(Duration::from_secs(1)),
    };
    let mut f = RotatingFile::create(&path, header(Format::PcapNg, 65535), rot).unwrap();
    for i in 0..25u64 {
        let fr = frame(i as u16);
        f.write(T0 + i * 200_000_000, &fr, fr.len() as u32).unwrap(); // 5 a second
    }
    let files = f.finish().unwrap();
    assert_eq!(
        files.iter().map(|w| w.records).collect::<Vec<_>>(),
        [5, 5, 5, 5, 5]
    );
}

#[test]
fn frames_longer_than_the_snapshot_are_cut_and_counted_when_read() {
    let (_d, path) = tmp("snap.pcap");
    write_capture(&path, Format::Pcap, 60, 3);
    let mut r = CaptureReader::open(&path).unwrap();
    let rec = r.next_record().unwrap().unwrap();
    assert_eq!((rec.data.len(), rec.orig_len), (60, 74));
    assert!(r.next_udp().unwrap().is_none());
    assert_eq!(r.stats().skipped, vec![("cut_by_snaplen", 2)]);
}

/// A pcap file's bytes, with record `k` (from 0) starting at `offsets[k]`.
fn pcap_bytes(n: u16, snaplen: u32) -> (Vec<u8>, Vec<usize>) {
    let (_d, path) = tmp("base.pcap");
    write_capture(&path, Format::Pcap, snaplen, n);
    let bytes = std::fs::read(&path).unwrap();
    let offsets = (0..n as usize).map(|k| 24 + k * (16 + 74)).collect();
    (bytes, offsets)
}

fn check_bad(name: &str, bytes: &[u8], good_before: usize, wants: &[&str]) {
    let (_d, path) = tmp(name);
    std::fs::write(&path, bytes).unwrap();
    let (got, err) = read_all(&path);
    let err = err.unwrap_or_else(|| panic!("{name}: no error"));
    assert_eq!(
        got.len(),
        good_before,
        "{name}: records before the bad one: {err}"
    );
    assert!(err.contains(&path.display().to_string()), "{name}: {err}");
    for w in wants {
        assert!(err.contains(w), "{name}: want {w:?} in {err}");
    }
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn broken_pcap_files_give_errors_naming_the_file_and_the_record() {
    let (base, off) = pcap_bytes(4, 65535);

    let mut b = base.clone();
    b[..4].copy_from_slice(b"GIF8");
    check_bad(
        "magic.pcap",
        &b,
        0,
        &["wrong magic number 47494638", "not a pcap"],
    );

    check_bad("empty.pcap", &[], 0, &["too short for a capture file"]);
    check_bad(
        "header.pcap",
        &base[..20],
        0,
        &["ends 20 bytes into the 24-byte pcap header"],
    );

    // Cut inside record 3's data, and inside record 3's header.
    check_bad(
        "cut-data.pcap",
        &base[..off[2] + 16 + 30],
        2,
        &[
            &format!("record 3 at byte {}", off[2]),
            "captured length 74 goes beyond the end of the file (30 bytes left)",
            "cut short",
        ],
    );
    check_bad(
        "cut-header.pcap",
        &base[..off[2] + 5],
        2,
        &[
            "record 3 at byte",
            "ends 5 bytes into the 16-byte record header",
        ],
    );

    // Record 2 claims more than the file holds (within the snapshot length).
    let mut b = base.clone();
    set_u32(&mut b, off[1] + 8, 1000);
    set_u32(&mut b, off[1] + 12, 1000);
    check_bad(
        "long.pcap",
        &b,
        1,
        &[
            "record 2 at byte 114",
            "captured length 1000 goes beyond the end of the file",
        ],
    );

    // A huge captured length.
    let mut b = base.clone();
    set_u32(&mut b, off[3] + 8, u32::MAX);
    check_bad(
        "huge.pcap",
        &b,
        3,
        &[
            "record 4",
            "captured length 4294967295 is larger than the file's snapshot length 65535",
        ],
    );

    // Longer than the snapshot length, with the bytes present in the file.
    let (mut b, off) = pcap_bytes(4, 80);
    set_u32(&mut b, off[1] + 8, 90);
    set_u32(&mut b, off[1] + 12, 90);
    check_bad(
        "snaplen.pcap",
        &b,
        1,
        &[
            "record 2",
            "captured length 90 is larger than the file's snapshot length 80",
        ],
    );

    // A link type zc does not read (147 is USER0).
    let mut b = base.clone();
    set_u32(&mut b, 20, 147);
    check_bad(
        "link.pcap",
        &b,
        0,
        &["link type 147", "Linux cooked SLL (113)"],
    );
}

#[test]
fn broken_pcapng_files_give_errors_naming_the_file_and_the_record() {
    let (_d, path) = tmp("base.pcapng");
    write_capture(&path, Format::PcapNg, 65535, 4);
    let base = std::fs::read(&path).unwrap();
    // Find the enhanced packet blocks (type 6, little-endian on this machine).
    let mut epbs = Vec::new();
    let mut idb = 0;
    let mut at = 0;
    while at + 8 <= base.len() {
        let ty = u32::from_le_bytes(base[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(base[at + 4..at + 8].try_into().unwrap()) as usize;
        if ty == 6 {
            epbs.push(at);
        }
        if ty == 1 {
            idb = at;
        }
        at += len;
    }
    assert_eq!(epbs.len(), 4);

    check_bad(
        "cut.pcapng",
        &base[..epbs[3] + 40],
        3,
        &[
            "record 4 at byte",
            "block of",
            "goes beyond the end of the file",
            "cut short",
        ],
    );
    check_bad(
        "cut-head.pcapng",
        &base[..epbs[3] + 6],
        3,
        &["record 4", "ends 6 bytes into a block header"],
    );

    // Captured length beyond its block.
    let mut b = base.clone();
    set_u32(&mut b, epbs[1] + 20, 5000);
    check_bad(
        "caplen.pcapng",
        &b,
        1,
        &["record 2", "captured_len + padding > block length"],
    );

    // A huge block length.
    let mut b = base.clone();
    set_u32(&mut b, epbs[2] + 4, 0xffff_fff0);
    check_bad(
        "hugeblock.pcapng",
        &b,
        2,
        &[
            "record 3",
            "block length 4294967280 is larger than the largest block",
        ],
    );

    // Unknown link type in the interface block: the first packet names it.
    let mut b = base.clone();
    b[idb + 8..idb + 10].copy_from_slice(&147u16.to_le_bytes());
    check_bad("link.pcapng", &b, 0, &["record 1", "link type 147"]);
}

#[test]
fn the_owned_iterator_yields_payloads_with_timestamps() {
    let (_d, path) = tmp("iter.pcap");
    write_capture(&path, Format::Pcap, 65535, 10);
    let r = CaptureReader::open(&path).unwrap();
    let v: Vec<_> = r.udp_packets().collect::<Result<_, _>>().unwrap();
    assert_eq!(v.len(), 10);
    assert_eq!(v[3].ts_ns, T0 + 3000);
    assert_eq!(v[3].payload, frame(3)[42..].to_vec());
}

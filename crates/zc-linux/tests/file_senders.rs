//! Every file sender moves files of 0, 1, page-size ± 1 and 100 MB byte-identical
//! over real loopback TCP, also to a slow receiver; a file truncated during the
//! send gives an error and the process carries on.

mod common;

use common::*;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::time::Duration;
use zc_linux::{is_truncated, send_with, FileMethod, MappedFile};

const METHODS: [FileMethod; 3] = [
    FileMethod::Sendfile,
    FileMethod::ReadWrite,
    FileMethod::Mmap,
];
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(20));

/// Sends `path[offset..offset+len]` with `method` and returns what the receiver hashed.
fn send_and_hash(
    method: FileMethod,
    path: &std::path::Path,
    offset: u64,
    len: u64,
    pace: Pace,
    nonblocking: bool,
) -> (u64, u64) {
    let (tx, rx) = tcp_pair();
    if matches!(pace, Pace::Slow { .. }) {
        set_buf(&tx, libc::SO_SNDBUF, 4096);
        set_buf(&rx, libc::SO_RCVBUF, 32 * 1024);
    }
    tx.set_nonblocking(nonblocking).unwrap();
    let reader = std::thread::spawn(move || drain(rx, pace));
    let file = File::open(path).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let sent = send_with(method, tx.as_fd(), &file, offset, len, &mut buf, TIMEOUT)
        .unwrap_or_else(|e| panic!("{method:?}: {e}"));
    assert_eq!(sent, len);
    drop(tx);
    reader.join().unwrap()
}

#[test]
fn small_files_arrive_byte_identical_with_every_method() {
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [0usize, 1, 4095, 4096, 4097].into_iter().enumerate() {
        let path = make_file(dir.path(), &format!("f{size}"), size, i as u64);
        let want = digest_file_range(&path, 0, size as u64);
        for method in METHODS {
            for nonblocking in [false, true] {
                let got = send_and_hash(method, &path, 0, size as u64, Pace::Fast, nonblocking);
                assert_eq!(
                    got, want,
                    "{method:?} size {size} nonblocking {nonblocking}"
                );
            }
        }
    }
}

#[test]
fn a_slow_receiver_forces_short_writes_and_every_byte_still_arrives() {
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [1usize, 4095, 4096, 4097, MB + 17].into_iter().enumerate() {
        let path = make_file(dir.path(), &format!("s{size}"), size, 100 + i as u64);
        let want = digest_file_range(&path, 0, size as u64);
        for method in METHODS {
            let got = send_and_hash(
                method,
                &path,
                0,
                size as u64,
                Pace::Slow {
                    slow_bytes: 256 * 1024,
                },
                true,
            );
            assert_eq!(got, want, "{method:?} size {size}");
        }
    }
}

#[test]
fn a_100_mb_file_arrives_byte_identical_with_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let size = 100 * MB;
    let path = make_file(dir.path(), "big", size, 7);
    let want = digest_file_range(&path, 0, size as u64);
    for method in METHODS {
        let got = send_and_hash(method, &path, 0, size as u64, Pace::Fast, false);
        assert_eq!(got, want, "{method:?}");
    }
}

#[test]
fn a_range_in_the_middle_arrives_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "mid", 5 * MB, 9);
    let (off, len) = (4097u64, (3 * MB) as u64 + 5);
    let want = digest_file_range(&path, off, len);
    for method in METHODS {
        assert_eq!(
            send_and_hash(method, &path, off, len, Pace::Fast, true),
            want,
            "{method:?}"
        );
    }
}

/// Truncates the file while the sender is blocked on a slow receiver.
fn truncate_during_send(method: FileMethod) {
    let dir = tempfile::tempdir().unwrap();
    let size = 64 * MB;
    let path = make_file(dir.path(), "victim", size, 11);
    let (tx, rx) = tcp_pair();
    set_buf(&tx, libc::SO_SNDBUF, 64 * 1024);
    let truncator_path = path.clone();
    let reader = std::thread::spawn(move || {
        let mut rx = rx;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        let mut truncated = false;
        loop {
            match std::io::Read::read(&mut rx, &mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => got += n as u64,
            }
            if !truncated && got >= 2 * MB as u64 {
                OpenOptions::new()
                    .write(true)
                    .open(&truncator_path)
                    .unwrap()
                    .set_len(4096)
                    .unwrap();
                truncated = true;
            }
        }
    });
    let file = File::open(&path).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let err = send_with(method, tx.as_fd(), &file, 0, size as u64, &mut buf, TIMEOUT)
        .expect_err("a send of a truncated file must fail");
    assert!(is_truncated(&err), "{method:?}: {err}");
    drop(tx);
    let received = reader.join().unwrap();
    assert!(received < size as u64, "{method:?}: received {received}");
}

#[test]
fn truncating_the_file_during_an_mmap_send_is_an_error_not_a_crash() {
    truncate_during_send(FileMethod::Mmap);
    // Still alive: map another file and send it.
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "after", 4097, 1);
    let want = digest_file_range(&path, 0, 4097);
    assert_eq!(
        send_and_hash(FileMethod::Mmap, &path, 0, 4097, Pace::Fast, false),
        want
    );
}

#[test]
fn truncating_the_file_during_sendfile_or_read_write_is_an_error() {
    truncate_during_send(FileMethod::Sendfile);
    truncate_during_send(FileMethod::ReadWrite);
}

#[test]
fn the_mmap_sender_reports_truncation_that_races_past_its_size_check() {
    // Map first, shrink second: the mapping is longer than the file, so the
    // kernel's copy faults past EOF. This must be an error, never SIGBUS.
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "shrunk", 8 * MB, 3);
    let mapped = MappedFile::new(File::open(&path).unwrap()).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(MB as u64)
        .unwrap();
    let (tx, rx) = tcp_pair();
    let reader = std::thread::spawn(move || drain(rx, Pace::Fast));
    let err = mapped
        .send_range(tx.as_fd(), 0, 8 * MB as u64, TIMEOUT)
        .unwrap_err();
    assert!(is_truncated(&err), "{err}");
    drop(tx);
    let (_, got) = reader.join().unwrap();
    assert!(got <= MB as u64, "received {got} bytes of a 1 MB file");
}

#[test]
fn a_range_beyond_the_mapping_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_file(dir.path(), "small", 10, 3);
    let mapped = MappedFile::new(File::open(&path).unwrap()).unwrap();
    let (tx, _rx) = tcp_pair();
    let err = mapped.send_range(tx.as_fd(), 5, 6, TIMEOUT).unwrap_err();
    assert_eq!(err.kind(), zc_core::ErrorKind::Config, "{err}");
}

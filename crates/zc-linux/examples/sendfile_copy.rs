//! `sendfile(2)` beside its plain twin: the same file sent over a loopback
//! TCP connection with each [`FileMethod`], received and compared byte for
//! byte, with the time each took.
//!
//! ```text
//! cargo run --release -p zc-linux --example sendfile_copy -- [MEBIBYTES]
//! ```
//!
//! The file (default 16 MiB) is written to a temporary directory and removed
//! at the end. A single run is a demonstration, not a measurement: the
//! benchmarks in `benches/` repeat each method and report medians.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use zc_linux::{send_with, FileMethod};

fn main() -> zc_core::Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(16), |c| c.parse())
        .map_err(|e| zc_core::Error::config(format!("MEBIBYTES: {e}")))?;
    let io = |what: &'static str| move |e: std::io::Error| zc_core::Error::io(what, e);

    let dir = std::env::temp_dir().join(format!("zc-sendfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io("create_dir"))?;
    let path = dir.join("payload");
    let content: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&content))
        .map_err(io("write the file"))?;

    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("bind"))?;
    let addr = listener.local_addr().map_err(io("local_addr"))?;
    let mut buf = vec![0u8; 64 << 10];
    for method in [
        FileMethod::Sendfile,
        FileMethod::Mmap,
        FileMethod::ReadWrite,
    ] {
        let reader = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
            let mut got = Vec::new();
            TcpStream::connect(addr)?.read_to_end(&mut got)?;
            Ok(got)
        });
        let (sock, _) = listener.accept().map_err(io("accept"))?;
        let file = std::fs::File::open(&path).map_err(io("open the file"))?;
        let start = Instant::now();
        let sent = send_with(
            method,
            sock.as_fd(),
            &file,
            0,
            content.len() as u64,
            &mut buf,
            Some(Duration::from_secs(5)),
        )?;
        drop(sock); // end of stream for the reader
        let took = start.elapsed();
        let got = reader.join().expect("reader thread").map_err(io("read"))?;
        let same = got == content;
        println!("{method:?}: {sent} bytes in {took:?}, identical: {same}");
        if !same {
            return Err(zc_core::Error::config(format!(
                "{method:?}: the bytes differ"
            )));
        }
    }
    std::fs::remove_dir_all(&dir).map_err(io("remove the directory"))?;
    Ok(())
}

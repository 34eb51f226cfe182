//! The binary file format NASDAQ publishes whole trading days in: every ITCH
//! message preceded by its length as a u16, big-endian. No header, no
//! sequence numbers (a message's sequence number is its position, from 1).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use zc_core::{Error, ErrorKind, Result};

/// Writes messages in the NASDAQ binary file format.
pub struct FileWriter<W: Write> {
    out: BufWriter<W>,
    messages: u64,
}

impl FileWriter<File> {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let f =
            File::create(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(Self::new(f))
    }
}

impl<W: Write> FileWriter<W> {
    /// Writes to `w` through a 1 MiB buffer.
    pub fn new(w: W) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, w),
            messages: 0,
        }
    }

    /// Appends one message.
    pub fn write(&mut self, msg: &[u8]) -> Result<()> {
        let len = u16::try_from(msg.len()).map_err(|_| {
            Error::config(format!(
                "a message of {} bytes does not fit the file format's u16 length",
                msg.len()
            ))
        })?;
        self.out
            .write_all(&len.to_be_bytes())
            .and_then(|_| self.out.write_all(msg))
            .map_err(|e| Error::io("write the ITCH file", e))?;
        self.messages += 1;
        Ok(())
    }

    /// Messages written.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Flushes and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.out
            .into_inner()
            .map_err(|e| Error::io("flush the ITCH file", e.into_error()))
    }
}

/// Reads messages of the NASDAQ binary file format, borrowing each from an
/// internal buffer (no allocation per message).
pub struct FileReader<R: Read> {
    input: R,
    name: PathBuf,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    offset: u64,
    eof: bool,
}

impl FileReader<File> {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        Ok(Self::new(f, path))
    }
}

impl<R: Read> FileReader<R> {
    /// Reads from `input`; `name` is used in error messages.
    pub fn new(input: R, name: &Path) -> Self {
        Self {
            input,
            name: name.to_path_buf(),
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Byte offset of the next record in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes `n` bytes available from `start`; false at a clean end of file.
    fn fill(&mut self, n: usize) -> Result<bool> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let got = self
                .input
                .read(&mut self.buf[self.end..])
                .map_err(|e| Error::io(format!("read {}", self.name.display()), e))?;
            if got == 0 {
                self.eof = true;
            }
            self.end += got;
        }
        Ok(true)
    }

    /// The next message; `None` at the end of the file. A record cut short
    /// by the end of the file is an error naming the file and the offset.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&[u8]>> {
        if !self.fill(2)? {
            if self.end > self.start {
                return Err(self.truncated("length prefix"));
            }
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([
            self.buf[self.start],
            self.buf[self.start + 1],
        ]));
        if !self.fill(2 + len)? {
            return Err(self.truncated("message"));
        }
        let msg = &self.buf[self.start + 2..self.start + 2 + len];
        self.start += 2 + len;
        self.offset += 2 + len as u64;
        Ok(Some(msg))
    }

    fn truncated(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Io,
            format!(
                "{}: the file ends inside a {what} at byte {} (a truncated copy?)",
                self.name.display(),
                self.offset
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_truncation_is_an_error() {
        let mut w = FileWriter::new(Vec::new());
        w.write(b"abc").unwrap();
        w.write(b"").unwrap();
        w.write(&[7u8; 300]).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[..5], &[0, 3, b'a', b'b', b'c']);
        let mut r = FileReader::new(&bytes[..], Path::new("mem"));
        assert_eq!(r.next().unwrap().unwrap(), b"abc");
        assert_eq!(r.next().unwrap().unwrap(), b"");
        assert_eq!(r.next().unwrap().unwrap().len(), 300);
        assert!(r.next().unwrap().is_none());
        let mut r = FileReader::new(&bytes[..bytes.len() - 1], Path::new("cut.itch"));
        r.next().unwrap();
        r.next().unwrap();
        let e = r.next().unwrap_err().to_string();
        assert!(e.contains("cut.itch") && e.contains("byte 7"), "{e}");
    }
}

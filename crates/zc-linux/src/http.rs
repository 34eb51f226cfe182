//! A small HTTP/1.1 static file server on the file senders of [`crate::file`].
//!
//! GET and HEAD, `Content-Length`, one byte range per request (`Range:
//! bytes=a-b`, `a-`, `-n`; several ranges are answered with the whole file, as
//! RFC 9110 allows), 404/416, keep-alive and pipelined requests.
//!
//! No path outside the served folder is ever opened: the request path is
//! percent-decoded, and a `.` or `..` segment, an encoded dot, slash or
//! backslash, or a NUL is refused with 403 before anything is opened. Then each
//! segment is opened with `openat(O_NOFOLLOW)` below the folder's descriptor,
//! so a symbolic link anywhere on the path (even one pointing inside) is
//! refused by the kernel, and a rename of the folder cannot redirect a request.

use crate::file::{send_with, FileMethod};
use crate::listen::{Acceptor, RunningService};
use crate::sys::{cvt, interrupted, send_all, wait, would_block};
use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zc_core::{Error, ErrorKind, Result};

pub(crate) mod request;
use request::{decode_path, parse_range, parse_request, RangeSpec, Status};

/// Largest request head (request line and headers) accepted; larger gets 431.
const MAX_HEAD: usize = 8192;

/// Buffer of the `pread`+`send` method, one per connection.
const COPY_BUF: usize = 128 * 1024;

/// What [`serve`] needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The folder served; nothing outside it is reachable.
    pub root: PathBuf,
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// How file bodies are sent.
    pub method: FileMethod,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// How long a client may stay silent (between requests, or not reading
    /// the response) before its connection is closed.
    pub idle_timeout: Duration,
}

impl ServeConfig {
    /// `root` on `listen` with sendfile, 256 connections and a 30 s idle timeout.
    pub fn new(root: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            root: root.into(),
            listen,
            method: FileMethod::Sendfile,
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A bound file server, not yet accepting.
pub struct FileServer {
    acceptor: Acceptor,
    shared: Arc<Shared>,
}

struct Shared {
    root: OwnedFd,
    method: FileMethod,
    idle_timeout: Duration,
}

impl FileServer {
    /// Opens the folder and binds the listener.
    pub fn bind(cfg: ServeConfig) -> Result<Self> {
        let c = CString::new(cfg.root.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::config(format!("root {:?} contains a NUL byte", cfg.root)))?;
        // SAFETY: a NUL-terminated path; the returned descriptor is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Error::last_os(format!("open served folder {:?}", cfg.root)));
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let root = unsafe { OwnedFd::from_raw_fd(fd) };
        let acceptor = Acceptor::bind(cfg.listen, cfg.max_connections, "zc-serve")?;
        Ok(Self {
            acceptor,
            shared: Arc::new(Shared {
                root,
                method: cfg.method,
                idle_timeout: cfg.idle_timeout,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.acceptor.local_addr()
    }

    /// Serves on the calling thread until the process ends.
    pub fn run(self) -> Result<()> {
        let shared = self.shared;
        self.acceptor.run(move |s| connection(s, &shared))
    }

    /// Serves on a thread of its own; the handle stops it.
    pub fn spawn(self) -> Result<RunningService> {
        let shared = self.shared;
        self.acceptor.spawn(move |s| connection(s, &shared))
    }
}

/// Serves `cfg.root` on `cfg.listen` until the process ends (`zc serve`).
pub fn serve(cfg: ServeConfig) -> Result<()> {
    FileServer::bind(cfg)?.run()
}

fn connection(stream: TcpStream, shared: &Shared) {
    if let Err(e) = Conn::new(stream, shared).and_then(|mut c| c.run()) {
        match e.kind() {
            ErrorKind::PeerGone => tracing::debug!("zc-serve: {e}"),
            _ => tracing::info!("zc-serve: connection closed: {e}"),
        }
    }
}

struct Conn<'a> {
    sock: TcpStream,
    shared: &'a Shared,
    head: Box<[u8]>,
    filled: usize,
    out: String,
    copy_buf: Vec<u8>,
}

impl<'a> Conn<'a> {
    fn new(sock: TcpStream, shared: &'a Shared) -> Result<Self> {
        sock.set_nonblocking(true)
            .map_err(|e| Error::io("set non-blocking", e))?;
        sock.set_nodelay(true)
            .map_err(|e| Error::io("TCP_NODELAY", e))?;
        Ok(Self {
            sock,
            shared,
            head: vec![0u8; MAX_HEAD].into_boxed_slice(),
            filled: 0,
            out: String::with_capacity(256),
            copy_buf: Vec::new(),
        })
    }

    fn run(&mut self) -> Result<()> {
        loop {
            let Some(head_len) = self.read_head()? else {
                return Ok(());
            };
            let keep_alive = self.respond(head_len)?;
            if !keep_alive {
                return Ok(());
            }
            // Keep any pipelined request that arrived behind this one.
            self.head.copy_within(head_len..self.filled, 0);
            self.filled -= head_len;
        }
    }

    /// Reads until a whole head is buffered; `None` when the client closed
    /// or went silent between requests.
    fn read_head(&mut self) -> Result<Option<usize>> {
        loop {
            if let Some(p) = find(&self.head[..self.filled], b"\r\n\r\n") {
                return Ok(Some(p + 4));
            }
            if self.filled == MAX_HEAD {
                self.send_status(Status(431), false, false)?;
                return Ok(None);
            }
            let buf = &mut self.head[self.filled..];
            // SAFETY: buf is a live, writable slice of buf.len() bytes.
            let r =
                unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            match cvt(r) {
                Ok(0) => return Ok(None),
                Ok(n) => self.filled += n,
                Err(e) if would_block(&e) => {
                    if wait(
                        self.sock.as_fd(),
                        libc::POLLIN,
                        Some(self.shared.idle_timeout),
                        "read request",
                    )
                    .is_err()
                    {
                        return Ok(None);
                    }
                }
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(Error::io("recv request", e)),
            }
        }
    }

    /// Answers the request in `head[..head_len]`; returns whether to keep the
    /// connection open.
    fn respond(&mut self, head_len: usize) -> Result<bool> {
        let head = &self.head[..head_len];
        let req = match parse_request(head) {
            Ok(r) => r,
            Err(status) => {
                self.send_status(status, false, false)?;
                return Ok(false);
            }
        };
        let (head_only, keep_alive) = (req.head_only, req.keep_alive);
        let file = match open_below(self.shared.root.as_fd(), req.target) {
            Ok(f) => f,
            Err(status) => {
                // 403/404 are ordinary answers; after a malformed target or
                // a server error the connection is not trusted further.
                let keep_alive = keep_alive && matches!(status.0, 403 | 404);
                self.send_status(status, head_only, keep_alive)?;
                return Ok(keep_alive);
            }
        };
        let size = file.metadata().map_err(|e| Error::io("fstat", e))?.len();
        let range = req.range.map_or(RangeSpec::Full, |v| parse_range(v, size));
        let (status, start, len) = match range {
            RangeSpec::Full => (200, 0, size),
            RangeSpec::Part(s, e) => (206, s, e - s + 1),
            RangeSpec::Unsatisfiable => {
                self.out.clear();
                let _ = write!(
                    self.out,
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n{}\r\n",
                    conn_header(keep_alive)
                );
                send_all(
                    self.sock.as_fd(),
                    self.out.as_bytes(),
                    0,
                    Some(self.shared.idle_timeout),
                )?;
                return Ok(keep_alive);
            }
        };
        self.out.clear();
        let reason = if status == 200 {
            "OK"
        } else {
            "Partial Content"
        };
        let _ = write!(
            self.out,
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nContent-Type: {}\r\nAccept-Ranges: bytes\r\n",
            content_type(req.target)
        );
        if status == 206 {
            let _ = write!(
                self.out,
                "Content-Range: bytes {start}-{}/{size}\r\n",
                start + len - 1
            );
        }
        let _ = write!(self.out, "{}\r\n", conn_header(keep_alive));
        let body_follows = !head_only && len > 0;
        // MSG_MORE lets the head leave in the same segment as the body's start.
        let flags = if body_follows { libc::MSG_MORE } else { 0 };
        let timeout = Some(self.shared.idle_timeout);
        send_all(self.sock.as_fd(), self.out.as_bytes(), flags, timeout)?;
        if body_follows {
            if self.shared.method == FileMethod::ReadWrite && self.copy_buf.is_empty() {
                self.copy_buf = vec![0u8; COPY_BUF];
            }
            // An error here leaves the client with a short body: the caller
            // closes the connection, which is how HTTP/1.1 signals that.
            send_with(
                self.shared.method,
                self.sock.as_fd(),
                &file,
                start,
                len,
                &mut self.copy_buf,
                timeout,
            )?;
        }
        Ok(keep_alive)
    }

    fn send_status(&mut self, status: Status, head_only: bool, keep_alive: bool) -> Result<()> {
        let reason = reason(status.0);
        self.out.clear();
        let body_len = reason.len() + 5;
        let _ = write!(
            self.out,
            "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n",
            status.0
        );
        if status.0 == 405 {
            self.out.push_str("Allow: GET, HEAD\r\n");
        }
        let _ = write!(self.out, "{}\r\n", conn_header(keep_alive));
        if !head_only {
            let _ = writeln!(self.out, "{} {reason}", status.0);
        }
        send_all(
            self.sock.as_fd(),
            self.out.as_bytes(),
            0,
            Some(self.shared.idle_timeout),
        )
    }
}

fn conn_header(keep_alive: bool) -> &'static str {
    if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Opens the regular file `target` names below `root`, or says which status
/// to answer with.
fn open_below(root: BorrowedFd<'_>, target: &[u8]) -> std::result::Result<File, Status> {
    let segments = decode_path(target)?;
    let mut dir: Option<OwnedFd> = None;
    let mut i = 0;
    loop {
        let parent = dir.as_ref().map_or(root, |d| d.as_fd());
        let last = i + 1 >= segments.len();
        let name: &std::ffi::CStr = match segments.get(i) {
            Some(s) => s,
            None => c"index.html",
        };
        // No O_DIRECTORY even for folders: with it a symbolic link would fail
        // as ENOTDIR (404) instead of ELOOP (403). O_NONBLOCK: opening a FIFO
        // must not hang the connection.
        let flags =
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;
        // SAFETY: a NUL-terminated name relative to a directory descriptor
        // that stays open for the call.
        let fd = unsafe { libc::openat(parent.as_raw_fd(), name.as_ptr(), flags) };
        if fd < 0 {
            return Err(open_status(io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let meta = file.metadata().map_err(|_| Status(500))?;
        if !last {
            if !meta.is_dir() {
                return Err(Status(404));
            }
            dir = Some(file.into());
            i += 1;
            continue;
        }
        if meta.is_file() {
            return Ok(file);
        }
        if meta.is_dir() && i < segments.len() {
            // A folder: serve its index.html, if any.
            dir = Some(file.into());
            i += 1;
            continue;
        }
        return Err(Status(404));
    }
}

fn open_status(e: io::Error) -> Status {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Status(404),
        // ELOOP: a symbolic link (O_NOFOLLOW); EACCES/EPERM: not ours to show.
        Some(libc::ELOOP | libc::EACCES | libc::EPERM) => Status(403),
        _ => Status(500),
    }
}

fn content_type(target: &[u8]) -> &'static str {
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let ext = path.rsplit(|&b| b == b'.').next().unwrap_or_default();
    match ext.to_ascii_lowercase().as_slice() {
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"txt" => "text/plain; charset=utf-8",
        b"css" => "text/css",
        b"js" => "text/javascript",
        b"json" => "application/json",
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

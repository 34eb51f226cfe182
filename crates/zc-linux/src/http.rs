//! A small HTTP/1.1 static file server on the file senders of [`crate::file`].
//!
//! GET and HEAD, `Content-Length`, one byte range per request (`Range:
//! bytes=a-b`, `a-`, `-n`; several ranges are answered with the whole file, as
//! RFC 9110 allows), 404/416, keep-alive and pipelined requests.
//!
//! No path outside the served folder is ever opened: the request path is
//! percent-decoded, and a `.` or `..` segment, an encoded dot, slash or
//! backslash, or a NUL is refused with 403 before anything is looked up. Each
//! segment is then looked up with `openat(O_PATH | O_NOFOLLOW)` below the
//! folder's descriptor, which opens nothing: its type is checked on that
//! handle, a symbolic link anywhere on the path (even one pointing inside) is
//! refused with 403, names starting with a dot and anything but folders and
//! regular files are 404, and only a regular file is then opened for reading,
//! through its handle (`/proc/self/fd`), so a device or FIFO is never opened
//! and a rename of the folder cannot redirect a request.
//!
//! Slow clients cannot hold a connection: a request must start within
//! [`ServeConfig::idle_timeout`] and its head must be whole within
//! [`ServeConfig::head_timeout`] of its first byte, and each piece of a
//! response (1 MiB at most) must be taken within `idle_timeout` plus its size
//! at [`ServeConfig::min_send_rate`]. A watchdog thread enforces the response
//! deadlines even while a connection's thread is blocked in a file sender.
//! Clients beyond the connection cap get 503.

use crate::file::{send_with, FileMethod, MappedFile};
use crate::listen::{
    connection_cap, reset_on_close, send_now, Acceptor, OverCapacity, RunningService,
};
use crate::sys::{cvt, interrupted, send_all, wait, would_block};
use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zc_core::sys::deadline_after;
use zc_core::{Error, ErrorKind, Result};

pub(crate) mod request;
mod watchdog;
use request::{decode_path, parse_range, parse_request, RangeSpec, Status};
use watchdog::{Watchdog, Watched};

/// Largest request head (request line and headers) accepted; larger gets 431.
const MAX_HEAD: usize = 8192;

/// Buffer of the `pread`+`send` method, one per connection.
const COPY_BUF: usize = 128 * 1024;

/// Largest piece of a response body sent under one deadline.
const PIECE: u64 = 1 << 20;

/// Descriptors one connection holds at most: its socket, and while a path is
/// looked up the folder reached so far, the entry found in it and the file
/// opened through that entry (`mmap` later holds the file and a duplicate).
pub const DESCRIPTORS_PER_CONNECTION: usize = 4;

/// What a client over the connection cap is told before the close.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\nRetry-After: 1\r\nConnection: close\r\n\r\n503 Service Unavailable\n";

/// What a client whose request head came too slowly is told, if its socket
/// takes it at once.
const TOO_SLOW: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n";

/// What [`serve`] needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The folder served; nothing outside it is reachable.
    pub root: PathBuf,
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// How file bodies are sent.
    pub method: FileMethod,
    /// Connections served at once; clients beyond get 503. `None`: as many as
    /// the soft `RLIMIT_NOFILE` allows at [`DESCRIPTORS_PER_CONNECTION`]
    /// each, keeping 64 for the process, and at most 256. A number the limit
    /// cannot hold makes `bind` fail.
    pub max_connections: Option<usize>,
    /// How long a connection may wait for a request to start (after it
    /// connects, and between keep-alive requests), and the grace each piece
    /// of a response gets on top of its time at `min_send_rate`.
    pub idle_timeout: Duration,
    /// How long a request head may take as a whole, from its first byte:
    /// a client trickling its headers is cut off (408) when it ends.
    pub head_timeout: Duration,
    /// Slowest a client may take a response, in bytes per second: each piece
    /// of up to 1 MiB must be taken within `idle_timeout` plus its size at
    /// this rate, or the connection is reset.
    pub min_send_rate: u64,
    /// Serve names starting with a dot (`.well-known`); when false they are
    /// 404, so `.git/` or `.env` left in the folder are not published.
    pub dotfiles: bool,
}

impl ServeConfig {
    /// `root` on `listen` with sendfile, a connection cap sized from the
    /// descriptor limit, a 30 s idle timeout, 10 s for a request head,
    /// 16 KiB/s as the slowest transfer, and no dotfiles.
    pub fn new(root: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            root: root.into(),
            listen,
            method: FileMethod::Sendfile,
            max_connections: None,
            idle_timeout: Duration::from_secs(30),
            head_timeout: Duration::from_secs(10),
            min_send_rate: 16 * 1024,
            dotfiles: false,
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
    /// `/proc/self/fd`, through which a checked entry is opened for reading.
    proc_fds: OwnedFd,
    method: FileMethod,
    idle_timeout: Duration,
    head_timeout: Duration,
    min_send_rate: u64,
    dotfiles: bool,
    watchdog: Watchdog,
}

/// Opens `path` (relative to `dir`, or absolute) with `flags`, owned.
fn open_at(dir: Option<BorrowedFd<'_>>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: a NUL-terminated path relative to a descriptor that stays open
    // for the call (or the working directory).
    let fd = unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl FileServer {
    /// Opens the folder, sizes the connection cap and binds the listener.
    pub fn bind(cfg: ServeConfig) -> Result<Self> {
        if cfg.min_send_rate == 0 {
            return Err(Error::config(
                "min_send_rate must be at least 1 byte per second",
            ));
        }
        let c = CString::new(cfg.root.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::config(format!("root {:?} contains a NUL byte", cfg.root)))?;
        let root = open_at(None, &c, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| Error::io(format!("open served folder {:?}", cfg.root), e))?;
        let proc_fds = open_at(None, c"/proc/self/fd", libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| {
                Error::io("open /proc/self/fd", e).with_fix(
                    "mount /proc: the server opens a file through /proc/self/fd after checking its type",
                )
            })?;
        let cap = connection_cap(cfg.max_connections, DESCRIPTORS_PER_CONNECTION, "zc-serve")?;
        let acceptor = Acceptor::bind(cfg.listen, cap, OverCapacity::Reply(BUSY), "zc-serve")?;
        Ok(Self {
            acceptor,
            shared: Arc::new(Shared {
                root,
                proc_fds,
                method: cfg.method,
                idle_timeout: cfg.idle_timeout,
                head_timeout: cfg.head_timeout,
                min_send_rate: cfg.min_send_rate,
                dotfiles: cfg.dotfiles,
                watchdog: Watchdog::start("zc-serve")?,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.acceptor.local_addr()
    }

    /// Connections served at once (the cap asked for, or the one sized from
    /// the descriptor limit).
    pub fn max_connections(&self) -> usize {
        self.acceptor.max_connections()
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
    let mut conn = match Conn::new(stream, shared) {
        Ok(c) => c,
        Err(e) => return tracing::info!("zc-serve: connection closed: {e}"),
    };
    let result = conn.run();
    if conn.watch.fired() {
        // Reset rather than leave the kernel holding what the client never read.
        reset_on_close(conn.watch.stream());
        tracing::info!("zc-serve: a client took a response too slowly: connection reset");
    } else if let Err(e) = result {
        match e.kind() {
            ErrorKind::PeerGone => tracing::debug!("zc-serve: {e}"),
            _ => tracing::info!("zc-serve: connection closed: {e}"),
        }
    }
}

struct Conn<'a> {
    watch: Watched<'a>,
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
            watch: shared.watchdog.watch(sock),
            shared,
            head: vec![0u8; MAX_HEAD].into_boxed_slice(),
            filled: 0,
            out: String::with_capacity(256),
            copy_buf: Vec::new(),
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.watch.stream().as_fd()
    }

    fn run(&mut self) -> Result<()> {
        loop {
            let Some(head_len) = self.read_head()? else {
                return Ok(());
            };
            let keep_alive = self.respond(head_len);
            self.watch.set_deadline(None);
            if !keep_alive? {
                return Ok(());
            }
            // Keep any pipelined request that arrived behind this one.
            self.head.copy_within(head_len..self.filled, 0);
            self.filled -= head_len;
        }
    }

    /// Reads until a whole head is buffered; `None` when the client closed,
    /// or did not start a request within the idle timeout, or did not finish
    /// its head within the head timeout (then it is told 408).
    fn read_head(&mut self) -> Result<Option<usize>> {
        let mut started = self.filled > 0;
        let mut until = deadline_after(if started {
            self.shared.head_timeout
        } else {
            self.shared.idle_timeout
        });
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
            let r = unsafe {
                libc::recv(
                    self.watch.stream().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            match cvt(r) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    if !started {
                        started = true;
                        until = deadline_after(self.shared.head_timeout);
                    }
                    self.filled += n;
                }
                Err(e) if would_block(&e) => {
                    let left = until.map(|t| t.saturating_duration_since(Instant::now()));
                    let ready = left != Some(Duration::ZERO)
                        && wait(self.fd(), libc::POLLIN, left, "read request").is_ok();
                    if !ready {
                        // The deadline passed (or poll failed, which is as final).
                        if started {
                            send_now(self.watch.stream(), TOO_SLOW);
                            tracing::info!(
                                "zc-serve: request head not whole within {:?}: closed",
                                self.shared.head_timeout
                            );
                        }
                        return Ok(None);
                    }
                }
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(Error::io("recv request", e)),
            }
        }
    }

    /// Arms the watchdog: the connection is shut down if what follows is
    /// not done within `t`.
    fn allow(&self, t: Duration) {
        self.watch.set_deadline(deadline_after(t));
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
        let found = decode_path(req.target).and_then(|segments| {
            open_below(
                self.shared.root.as_fd(),
                self.shared.proc_fds.as_fd(),
                &segments,
                self.shared.dotfiles,
            )
        });
        let (file, kind) = match found {
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
        self.allow(self.shared.idle_timeout);
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
                send_all(self.fd(), self.out.as_bytes(), 0, None)?;
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
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nContent-Type: {kind}\r\nAccept-Ranges: bytes\r\n"
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
        send_all(self.fd(), self.out.as_bytes(), flags, None)?;
        if body_follows {
            // An error here leaves the client with a short body: the caller
            // closes the connection, which is how HTTP/1.1 signals that.
            self.send_body(&file, start, len)?;
        }
        Ok(keep_alive)
    }

    /// Sends `len` bytes of `file` from `start` in pieces, each under its own
    /// deadline: the grace of `idle_timeout` plus the piece at `min_send_rate`.
    /// The senders get no timeout of their own: the watchdog ends any wait.
    fn send_body(&mut self, file: &File, start: u64, len: u64) -> Result<()> {
        let method = self.shared.method;
        let mapped = match method {
            FileMethod::Mmap => Some(MappedFile::new(
                file.try_clone().map_err(|e| Error::io("dup", e))?,
            )?),
            _ => None,
        };
        if method == FileMethod::ReadWrite && self.copy_buf.is_empty() {
            self.copy_buf = vec![0u8; COPY_BUF];
        }
        let mut sent = 0;
        while sent < len {
            let piece = (len - sent).min(PIECE);
            let at_rate = Duration::from_secs_f64(piece as f64 / self.shared.min_send_rate as f64);
            self.allow(self.shared.idle_timeout.saturating_add(at_rate));
            let sock = self.watch.stream().as_fd();
            match &mapped {
                Some(m) => m.send_range(sock, start + sent, piece, None)?,
                None => send_with(
                    method,
                    sock,
                    file,
                    start + sent,
                    piece,
                    &mut self.copy_buf,
                    None,
                )?,
            };
            sent += piece;
        }
        Ok(())
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
        self.allow(self.shared.idle_timeout);
        send_all(self.fd(), self.out.as_bytes(), 0, None)
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

/// Finds the entry `segments` name below `root` (a folder's `index.html`
/// for a folder) and opens it for reading if, and only if, it is a regular
/// file; returns it with its content type, or the status to answer with.
///
/// Every step is an `O_PATH` lookup, which opens nothing: the type is checked
/// on that handle, and only a regular file is then opened, through the handle
/// itself, so the entry checked is the entry opened.
fn open_below(
    root: BorrowedFd<'_>,
    proc_fds: BorrowedFd<'_>,
    segments: &[CString],
    dotfiles: bool,
) -> std::result::Result<(File, &'static str), Status> {
    let mut dir: Option<OwnedFd> = None;
    let mut i = 0;
    loop {
        let parent = dir.as_ref().map_or(root, |d| d.as_fd());
        let name: &CStr = match segments.get(i) {
            Some(s) => s,
            None => c"index.html",
        };
        if !dotfiles && name.to_bytes().first() == Some(&b'.') {
            return Err(Status(404));
        }
        // O_NOFOLLOW with O_PATH gives a handle on a symbolic link itself,
        // refused below by its type.
        let entry =
            open_at(Some(parent), name, libc::O_PATH | libc::O_NOFOLLOW).map_err(open_status)?;
        // SAFETY: stat is plain old data; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one stat through a valid pointer, on a live handle.
        if unsafe { libc::fstat(entry.as_raw_fd(), &mut st) } != 0 {
            return Err(Status(500));
        }
        let last = i + 1 >= segments.len();
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => return Err(Status(403)),
            // A folder on the way, or named last: then its index.html.
            libc::S_IFDIR if i < segments.len() => {
                dir = Some(entry);
                i += 1;
            }
            libc::S_IFREG if last => {
                let handle =
                    CString::new(entry.as_raw_fd().to_string()).map_err(|_| Status(500))?;
                let file = open_at(Some(proc_fds), &handle, libc::O_RDONLY | libc::O_NOCTTY)
                    .map_err(open_status)?;
                return Ok((File::from(file), content_type(name.to_bytes())));
            }
            // A file with more path after it, a FIFO, a device, a socket.
            _ => return Err(Status(404)),
        }
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

/// The media type of a file, from its name's extension.
fn content_type(name: &[u8]) -> &'static str {
    let ext = name.rsplit(|&b| b == b'.').next().unwrap_or_default();
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

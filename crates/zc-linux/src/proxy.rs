//! A TCP proxy that forwards both directions of each connection, through
//! `splice(2)` or through plain `read`/`write` (its twin).
//!
//! Per connection and direction there is one pipe (splice) or one buffer
//! (read/write), created once and kept for the connection's life. Both sockets
//! are non-blocking and watched by one edge-triggered epoll instance; each
//! wake-up drives every direction until it would block. A direction only reads
//! more once every byte of the previous read has left its pipe or buffer, so a
//! byte can never be stranded (a pipe per call, as naive examples make, drops
//! what is left in it: `docs/design.md` §3).
//!
//! End of stream on one side becomes `shutdown(SHUT_WR)` on the other once the
//! pipe is empty (half-close), and the other direction keeps flowing. A reset
//! or a write to a peer that is gone ends the connection and resets the other
//! side too (`SO_LINGER` 0), so neither peer mistakes a cut stream for a
//! complete one.
//!
//! A connection with no traffic either way for [`DEFAULT_IDLE_TIMEOUT`] (or
//! the configured idle timeout) is reset, so silent clients cannot keep their
//! threads for ever, and the connection cap is sized from the descriptor
//! limit (see [`ProxyConfig::max_connections`]).

use crate::listen::{connection_cap, reset_on_close, Acceptor, OverCapacity, RunningService};
use crate::sys::{cvt, errno, interrupted, would_block};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;
use zc_core::{Error, ErrorKind, Result};

/// How a proxy moves bytes between its two sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMethod {
    /// socket → pipe → socket with `splice`: pages move, bytes are not copied
    /// through user space.
    Splice,
    /// The plain twin: `read` into a user buffer, `write` from it.
    ReadWrite,
}

impl std::str::FromStr for ProxyMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "splice" => Ok(Self::Splice),
            "read-write" | "readwrite" => Ok(Self::ReadWrite),
            other => Err(Error::config(format!(
                "unknown proxy method `{other}`: use splice or read-write"
            ))),
        }
    }
}

/// How long a proxied connection may carry no traffic either way before it
/// is reset, unless configured otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Descriptors one proxied connection holds: both sockets, its epoll
/// instance, and with splice a pipe (two ends) per direction.
pub fn descriptors_per_connection(method: ProxyMethod) -> usize {
    match method {
        ProxyMethod::Splice => 7,
        ProxyMethod::ReadWrite => 3,
    }
}

/// Options of [`relay`].
#[derive(Clone, Copy, Debug)]
pub struct RelayOptions {
    /// Splice or read/write.
    pub method: ProxyMethod,
    /// Pipe capacity asked for with `F_SETPIPE_SZ` (the kernel rounds it up
    /// to a power-of-two number of pages and caps it at
    /// `/proc/sys/fs/pipe-max-size` for unprivileged users), or the buffer size.
    pub buffer: usize,
    /// Longest time with no event on either socket before the connection is
    /// reset; `None` waits forever.
    pub idle_timeout: Option<Duration>,
}

impl Default for RelayOptions {
    /// Splice through 256 KB pipes, reset after [`DEFAULT_IDLE_TIMEOUT`] idle.
    fn default() -> Self {
        Self {
            method: ProxyMethod::Splice,
            buffer: 256 * 1024,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

/// Bytes moved by one [`relay`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// From the first socket to the second.
    pub a_to_b: u64,
    /// From the second socket to the first.
    pub b_to_a: u64,
}

/// Where one direction's bytes wait between read and write.
enum Chan {
    Pipe { r: OwnedFd, w: OwnedFd, cap: usize },
    Buf { buf: Box<[u8]>, start: usize },
}

struct Direction {
    src: RawFd,
    dst: RawFd,
    chan: Chan,
    /// Bytes read and not yet written.
    pending: usize,
    eof: bool,
    shut: bool,
    moved: u64,
    name: &'static str,
}

enum Step {
    Blocked,
    Done,
}

impl Direction {
    fn new(src: RawFd, dst: RawFd, opts: &RelayOptions, name: &'static str) -> Result<Self> {
        if opts.buffer == 0 {
            return Err(Error::config("relay buffer must be at least 1 byte"));
        }
        let chan = match opts.method {
            ProxyMethod::Splice => {
                let mut fds = [0 as RawFd; 2];
                // SAFETY: pipe2 writes two descriptors into the array.
                if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0
                {
                    return Err(Error::last_os("pipe2"));
                }
                // SAFETY: two fresh descriptors nobody else owns.
                let (r, w) =
                    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
                let want = opts.buffer.min(i32::MAX as usize) as libc::c_int;
                // SAFETY: fcntl on a live pipe. A refusal (EPERM above the
                // unprivileged cap) keeps the default size, which still works.
                unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
                // SAFETY: fcntl on a live pipe.
                let cap = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
                if cap <= 0 {
                    return Err(Error::last_os("fcntl(F_GETPIPE_SZ)"));
                }
                Chan::Pipe {
                    r,
                    w,
                    cap: cap as usize,
                }
            }
            ProxyMethod::ReadWrite => Chan::Buf {
                buf: vec![0u8; opts.buffer].into_boxed_slice(),
                start: 0,
            },
        };
        Ok(Self {
            src,
            dst,
            chan,
            pending: 0,
            eof: false,
            shut: false,
            moved: 0,
            name,
        })
    }

    /// Moves bytes until the next move would block, or this direction is done.
    fn step(&mut self) -> Result<Step> {
        loop {
            if self.pending > 0 {
                match self.write_out() {
                    Ok(n) => {
                        self.pending -= n;
                        self.moved += n as u64;
                        if let Chan::Buf { start, .. } = &mut self.chan {
                            *start += n;
                        }
                    }
                    Err(e) if would_block(&e) => return Ok(Step::Blocked),
                    Err(e) if interrupted(&e) => {}
                    Err(e) => return Err(Error::io(format!("{}: write", self.name), e)),
                }
                continue;
            }
            if self.eof {
                if !self.shut {
                    // SAFETY: shutdown on a socket owned by the caller of relay.
                    // ENOTCONN (the peer already left) changes nothing here.
                    unsafe { libc::shutdown(self.dst, libc::SHUT_WR) };
                    self.shut = true;
                }
                return Ok(Step::Done);
            }
            match self.read_in() {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.pending = n;
                    if let Chan::Buf { start, .. } = &mut self.chan {
                        *start = 0;
                    }
                }
                Err(e) if would_block(&e) => return Ok(Step::Blocked),
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(Error::io(format!("{}: read", self.name), e)),
            }
        }
    }

    fn read_in(&mut self) -> std::io::Result<usize> {
        let r = match &mut self.chan {
            // SAFETY: splice between two live descriptors with null offsets
            // (sockets and pipes have none).
            Chan::Pipe { w, cap, .. } => unsafe {
                libc::splice(
                    self.src,
                    std::ptr::null_mut(),
                    w.as_raw_fd(),
                    std::ptr::null_mut(),
                    *cap,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            },
            // SAFETY: buf is a live, writable slice of buf.len() bytes.
            Chan::Buf { buf, .. } => unsafe {
                libc::read(self.src, buf.as_mut_ptr().cast(), buf.len())
            },
        };
        cvt(r)
    }

    fn write_out(&mut self) -> std::io::Result<usize> {
        let r = match &mut self.chan {
            // SAFETY: as in read_in.
            Chan::Pipe { r, .. } => unsafe {
                libc::splice(
                    r.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.dst,
                    std::ptr::null_mut(),
                    self.pending,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            },
            // SAFETY: buf[start..start + pending] lies inside the buffer.
            Chan::Buf { buf, start } => unsafe {
                libc::send(
                    self.dst,
                    buf.as_ptr().add(*start).cast(),
                    self.pending,
                    libc::MSG_NOSIGNAL,
                )
            },
        };
        cvt(r)
    }
}

/// Forwards `a` ⇄ `b` until both directions have ended, then closes both.
///
/// Returns the bytes moved each way, or the error that cut the connection
/// (after resetting both sockets).
pub fn relay(a: TcpStream, b: TcpStream, opts: &RelayOptions) -> Result<RelayStats> {
    for s in [&a, &b] {
        s.set_nonblocking(true)
            .map_err(|e| Error::io("relay: set non-blocking", e))?;
    }
    let mut ab = Direction::new(a.as_raw_fd(), b.as_raw_fd(), opts, "relay a→b")?;
    let mut ba = Direction::new(b.as_raw_fd(), a.as_raw_fd(), opts, "relay b→a")?;
    let ep = Epoll::new()?;
    ep.add(a.as_fd())?;
    ep.add(b.as_fd())?;
    // Rounded up, so that a sub-millisecond timeout does not spin.
    let timeout_ms = opts.idle_timeout.map_or(-1, |t| {
        t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
    });
    let result = loop {
        let r1 = ab.step();
        let r2 = ba.step();
        match (r1, r2) {
            (Err(e), _) | (_, Err(e)) => break Err(e),
            (Ok(Step::Done), Ok(Step::Done)) => break Ok(()),
            _ => {}
        }
        match ep.wait(timeout_ms) {
            Ok(true) => {}
            Ok(false) => {
                break Err(crate::sys::timed_out(
                    "relay",
                    opts.idle_timeout.unwrap_or_default(),
                ))
            }
            Err(e) => break Err(e),
        }
    };
    let stats = RelayStats {
        a_to_b: ab.moved,
        b_to_a: ba.moved,
    };
    match result {
        Ok(()) => Ok(stats),
        Err(e) => {
            for s in [&a, &b] {
                reset_on_close(s);
            }
            Err(e)
        }
    }
}

struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> Result<Self> {
        // SAFETY: plain syscall; the descriptor is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os("epoll_create1"));
        }
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` edge-triggered for both readiness directions.
    fn add(&self, fd: BorrowedFd<'_>) -> Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: fd.as_raw_fd() as u64,
        };
        // SAFETY: a valid event for a live descriptor; the kernel copies it.
        if unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        } < 0
        {
            return Err(Error::last_os("epoll_ctl(ADD)"));
        }
        Ok(())
    }

    /// Waits for any event; false on timeout.
    fn wait(&self, timeout_ms: i32) -> Result<bool> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        loop {
            // SAFETY: evs has room for the 4 events asked for.
            let n =
                unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), 4, timeout_ms) };
            if n >= 0 {
                return Ok(n > 0);
            }
            let e = errno();
            if !interrupted(&e) {
                return Err(Error::io("epoll_wait", e));
            }
        }
    }
}

/// What [`proxy`] needs.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Address and port clients connect to.
    pub listen: SocketAddr,
    /// Where each client connection is forwarded.
    pub upstream: SocketAddr,
    /// Method, pipe/buffer size and idle timeout of every connection.
    pub relay: RelayOptions,
    /// Connections relayed at once; clients beyond are reset at once. `None`:
    /// as many as the soft `RLIMIT_NOFILE` allows at
    /// [`descriptors_per_connection`] each, keeping 64 for the process, and
    /// at most 256. A number the limit cannot hold makes `bind` fail.
    pub max_connections: Option<usize>,
    /// How long connecting upstream may take.
    pub connect_timeout: Duration,
}

impl ProxyConfig {
    /// Splice with 256 KB pipes, a [`DEFAULT_IDLE_TIMEOUT`] idle timeout, a
    /// connection cap sized from the descriptor limit, 5 s to connect.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        Self {
            listen,
            upstream,
            relay: RelayOptions::default(),
            max_connections: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A bound proxy, not yet accepting.
pub struct Proxy {
    acceptor: Acceptor,
    cfg: Arc<ProxyConfig>,
}

impl Proxy {
    /// Sizes the connection cap and binds the listener.
    pub fn bind(cfg: ProxyConfig) -> Result<Self> {
        let per = descriptors_per_connection(cfg.relay.method);
        let cap = connection_cap(cfg.max_connections, per, "zc-proxy")?;
        let acceptor = Acceptor::bind(cfg.listen, cap, OverCapacity::Reset, "zc-proxy")?;
        Ok(Self {
            acceptor,
            cfg: Arc::new(cfg),
        })
    }

    /// Connections relayed at once (the cap asked for, or the one sized from
    /// the descriptor limit).
    pub fn max_connections(&self) -> usize {
        self.acceptor.max_connections()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.acceptor.local_addr()
    }

    /// Proxies on the calling thread until the process ends.
    pub fn run(self) -> Result<()> {
        let cfg = self.cfg;
        self.acceptor.run(move |s| connection(s, &cfg))
    }

    /// Proxies on a thread of its own; the handle stops it.
    pub fn spawn(self) -> Result<RunningService> {
        let cfg = self.cfg;
        self.acceptor.spawn(move |s| connection(s, &cfg))
    }
}

/// Forwards connections on `cfg.listen` to `cfg.upstream` until the process
/// ends (`zc proxy`).
pub fn proxy(cfg: ProxyConfig) -> Result<()> {
    Proxy::bind(cfg)?.run()
}

fn connection(client: TcpStream, cfg: &ProxyConfig) {
    let up = match TcpStream::connect_timeout(&cfg.upstream, cfg.connect_timeout) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "{}",
                Error::io(format!("zc-proxy: connect upstream {}", cfg.upstream), e)
            );
            // Dropping the client with linger 0 resets it: it learns at once
            // that nothing is behind the proxy.
            reset_on_close(&client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    match relay(client, up, &cfg.relay) {
        Ok(s) => tracing::debug!(
            "zc-proxy: closed after {} bytes up, {} down",
            s.a_to_b,
            s.b_to_a
        ),
        Err(e) if e.kind() == ErrorKind::PeerGone => tracing::debug!("zc-proxy: {e}"),
        Err(e) => tracing::info!("zc-proxy: {e}"),
    }
}

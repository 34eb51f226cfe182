//! The accept loop shared by the file server and the proxy: one thread per
//! connection up to a limit sized from the descriptor limit, stoppable from
//! another thread.
//!
//! Connections beyond the limit are answered at once (the file server's 503)
//! or reset (the proxy) and closed, never queued. When `accept` itself fails
//! (out of descriptors, out of memory) the loop backs off, doubling its pause
//! up to [`MAX_BACKOFF`], and both conditions are logged once and then as a
//! count at most every [`LOG_EVERY`], so a flood of clients cannot flood the log.

use crate::sys::{errno, interrupted, would_block};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zc_core::{Error, Result};

/// How often a blocked accept loop looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// First pause after a failed `accept`; each further failure doubles it.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// Longest pause after failed `accept`s.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// A recurring warning is logged at most this often (with a count between).
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// Descriptors kept for the rest of the process (standard streams, the
/// listener, logging, library threads) when sizing the connection cap.
pub(crate) const RESERVED_FDS: u64 = 64;

/// The connection cap when none is asked for, if the descriptor limit allows.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The connection cap: `requested`, or when `None` as many connections as
/// the soft `RLIMIT_NOFILE` allows at `fds_per_connection` each (keeping
/// [`RESERVED_FDS`] for the process), at most [`DEFAULT_MAX_CONNECTIONS`].
/// A requested cap the limit cannot hold is an error that says both fixes.
pub(crate) fn connection_cap(
    requested: Option<usize>,
    fds_per_connection: usize,
    name: &str,
) -> Result<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(Error::last_os(format!("{name}: getrlimit(RLIMIT_NOFILE)")));
    }
    let soft = lim.rlim_cur;
    let per = fds_per_connection.max(1) as u64;
    let fit = usize::try_from(soft.saturating_sub(RESERVED_FDS) / per).unwrap_or(usize::MAX);
    let need = |n: usize| (n as u64).saturating_mul(per).saturating_add(RESERVED_FDS);
    match requested {
        Some(0) => Err(Error::config(format!(
            "{name}: max_connections must be at least 1"
        ))),
        Some(n) if n > fit => Err(Error::config(format!(
            "{name}: {n} connections need {} descriptors ({per} each, and {RESERVED_FDS} for the process), above this process's limit of {soft}",
            need(n)
        ))
        .with_fix(format!(
            "raise the limit (`ulimit -n {}`) or ask for at most {fit} connections",
            need(n)
        ))),
        Some(n) => Ok(n),
        None if fit == 0 => Err(Error::config(format!(
            "{name}: the descriptor limit of {soft} leaves none for connections ({per} each, and {RESERVED_FDS} for the process)"
        ))
        .with_fix(format!("raise the limit (`ulimit -n {}`)", need(1)))),
        None => Ok(fit.min(DEFAULT_MAX_CONNECTIONS)),
    }
}

/// A warning that may recur many times a second: the first is logged, the
/// rest are counted and logged as a sum at most every [`LOG_EVERY`].
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    missed: u64,
}

impl Throttle {
    /// One more occurrence; true when it should be logged now.
    fn hit(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                self.missed += 1;
                false
            }
            _ => {
                self.last = Some(now);
                true
            }
        }
    }

    /// The occurrences not logged yet, once [`LOG_EVERY`] has passed since
    /// the last line.
    fn due(&mut self, now: Instant) -> Option<u64> {
        let t = self.last?;
        if self.missed == 0 || now.duration_since(t) < LOG_EVERY {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.missed))
    }
}

/// What a connection over the cap gets before it is closed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OverCapacity {
    /// These bytes, sent without waiting (the file server's 503).
    Reply(&'static [u8]),
    /// A reset, so the client learns at once that nothing will be relayed.
    Reset,
}

/// A bound listener that hands each accepted connection to a handler thread.
pub(crate) struct Acceptor {
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    max_connections: usize,
    over_capacity: OverCapacity,
    name: &'static str,
}

impl Acceptor {
    /// Binds `addr`; `max_connections` comes from [`connection_cap`].
    pub(crate) fn bind(
        addr: SocketAddr,
        max_connections: usize,
        over_capacity: OverCapacity,
        name: &'static str,
    ) -> Result<Self> {
        if max_connections == 0 {
            return Err(Error::config("max_connections must be at least 1"));
        }
        let listener =
            TcpListener::bind(addr).map_err(|e| Error::io(format!("{name}: bind {addr}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(format!("{name}: set listener non-blocking"), e))?;
        Ok(Self {
            listener,
            stop: Arc::new(AtomicBool::new(false)),
            max_connections,
            over_capacity,
            name,
        })
    }

    /// Connections served at once.
    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    pub(crate) fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("getsockname", e))
    }

    /// Accepts until stopped, running `handle` on a thread per connection.
    /// Connections beyond the limit are answered as `over_capacity` says and
    /// closed at once.
    pub(crate) fn run<F>(self, handle: F) -> Result<()>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let handle = Arc::new(handle);
        let active = Arc::new(AtomicUsize::new(0));
        let fd = self.listener.as_raw_fd();
        let name = self.name;
        let (mut refused, mut failed) = (Throttle::default(), Throttle::default());
        let mut backoff = Duration::ZERO;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if let Some(n) = refused.due(now) {
                tracing::warn!(
                    "{name}: {n} more connections refused in the last {LOG_EVERY:?}: all {} slots busy",
                    self.max_connections
                );
            }
            if let Some(n) = failed.due(now) {
                tracing::warn!("{name}: accept failed {n} more times in the last {LOG_EVERY:?}");
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd on the listener this function owns.
            let r = unsafe { libc::poll(&mut pfd, 1, STOP_POLL.as_millis() as i32) };
            if r < 0 {
                let e = errno();
                if interrupted(&e) {
                    continue;
                }
                return Err(Error::io(format!("{name}: poll listener"), e));
            }
            if r == 0 {
                continue;
            }
            let stream = match self.listener.accept() {
                Ok((s, _)) => {
                    backoff = Duration::ZERO;
                    s
                }
                Err(e) if would_block(&e) || interrupted(&e) => continue,
                Err(e) => {
                    // ECONNABORTED, EMFILE, ENFILE, ENOBUFS: the listener is
                    // fine, the moment is not. The client stays queued.
                    if failed.hit(Instant::now()) {
                        let fix = match e.raw_os_error() {
                            Some(libc::EMFILE | libc::ENFILE) => {
                                ": raise the descriptor limit (ulimit -n) or lower the connection cap"
                            }
                            _ => "",
                        };
                        tracing::warn!(
                            "{name}: accept: {e}; retrying with a pause of up to {MAX_BACKOFF:?}{fix} (repeats are counted every {LOG_EVERY:?})"
                        );
                    }
                    backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                    std::thread::sleep(backoff);
                    continue;
                }
            };
            if active.load(Ordering::Relaxed) >= self.max_connections {
                if refused.hit(Instant::now()) {
                    tracing::warn!(
                        "{name}: all {} slots busy, refusing connections (repeats are counted every {LOG_EVERY:?})",
                        self.max_connections
                    );
                }
                refuse(stream, self.over_capacity);
                continue;
            }
            active.fetch_add(1, Ordering::Relaxed);
            let guard = ActiveGuard(active.clone());
            let h = handle.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-conn"))
                .spawn(move || {
                    let _guard = guard;
                    h(stream);
                });
            if let Err(e) = spawned {
                tracing::warn!("{name}: cannot start a connection thread: {e}");
            }
        }
        Ok(())
    }

    /// Runs the loop on its own thread; the handle stops it.
    pub(crate) fn spawn<F>(self, handle: F) -> Result<RunningService>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let addr = self.local_addr()?;
        let stop = self.stop.clone();
        let name = self.name;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || self.run(handle))
            .map_err(|e| Error::io(format!("{name}: start accept thread"), e))?;
        Ok(RunningService {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

/// Answers a connection over the cap without ever waiting, then closes it.
fn refuse(stream: TcpStream, how: OverCapacity) {
    match how {
        OverCapacity::Reply(bytes) => {
            send_now(&stream, bytes);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            // Read what the client has sent so far: closing with unread bytes
            // would reset the connection, and the reset could reach the client
            // before it has read the answer.
            let mut sink = [0u8; 4096];
            for _ in 0..4 {
                // SAFETY: sink is a live, writable buffer of sink.len() bytes.
                let n = unsafe {
                    libc::recv(
                        stream.as_raw_fd(),
                        sink.as_mut_ptr().cast(),
                        sink.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    break;
                }
            }
        }
        OverCapacity::Reset => reset_on_close(&stream),
    }
}

/// Sends what the socket takes at once, without waiting and without
/// SIGPIPE; for short answers on a connection about to close.
pub(crate) fn send_now(s: &TcpStream, bytes: &[u8]) {
    // SAFETY: bytes is a live slice of bytes.len() readable bytes. A short
    // or failed send only means the client misses a courtesy answer.
    unsafe {
        libc::send(
            s.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// Makes the coming close send RST instead of FIN.
pub(crate) fn reset_on_close(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // Failure only means a FIN instead of a RST.
    let _ = zc_os::sockopt::set(s.as_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &l);
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A server or proxy accepting on its own thread. Dropping it stops accepting;
/// connections already open run to their end.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl RunningService {
    /// The address it accepts on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and returns how the accept loop ended.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(Error::new(zc_core::ErrorKind::Io, "accept thread panicked"))
            }),
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_warning_is_logged_once_then_counted() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert!(t.hit(t0));
        assert!((0..99).all(|_| !t.hit(t0 + Duration::from_secs(1))));
        assert_eq!(t.due(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.due(t0 + LOG_EVERY), Some(99));
        assert_eq!(t.due(t0 + LOG_EVERY * 3), None);
        assert!(t.hit(t0 + LOG_EVERY * 3));
    }

    #[test]
    fn the_connection_cap_follows_the_descriptor_limit() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid out pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let fit = ((lim.rlim_cur - RESERVED_FDS) / 7) as usize;
        assert_eq!(
            connection_cap(None, 7, "t").unwrap(),
            fit.min(DEFAULT_MAX_CONNECTIONS)
        );
        assert_eq!(connection_cap(Some(fit), 7, "t").unwrap(), fit);
        let e = connection_cap(Some(fit + 1), 7, "t").unwrap_err();
        assert!(
            e.to_string().contains("above this process's limit")
                && e.fix().is_some_and(|f| f.contains("ulimit -n")),
            "{e}"
        );
        assert!(connection_cap(Some(0), 7, "t").is_err());
    }
}

//! The accept loop shared by the file server and the proxy: one thread per
//! connection up to a limit, stoppable from another thread.

use crate::sys::{errno, interrupted, would_block};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use zc_core::{Error, Result};

/// How often a blocked accept loop looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// A bound listener that hands each accepted connection to a handler thread.
pub(crate) struct Acceptor {
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    max_connections: usize,
    name: &'static str,
}

impl Acceptor {
    pub(crate) fn bind(
        addr: SocketAddr,
        max_connections: usize,
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
            name,
        })
    }

    pub(crate) fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("getsockname", e))
    }

    /// Accepts until stopped, running `handle` on a thread per connection.
    /// Connections beyond the limit are closed at once.
    pub(crate) fn run<F>(self, handle: F) -> Result<()>
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let handle = Arc::new(handle);
        let active = Arc::new(AtomicUsize::new(0));
        let fd = self.listener.as_raw_fd();
        while !self.stop.load(Ordering::Relaxed) {
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
                return Err(Error::io(format!("{}: poll listener", self.name), e));
            }
            if r == 0 {
                continue;
            }
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if would_block(&e) || interrupted(&e) => continue,
                Err(e) => {
                    // ECONNABORTED, EMFILE, ENFILE, ENOBUFS: the listener is
                    // fine, the moment is not; back off briefly and go on.
                    tracing::warn!("{}: accept: {e}", self.name);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if active.load(Ordering::Relaxed) >= self.max_connections {
                tracing::warn!(
                    "{}: {} connections open, refusing one more",
                    self.name,
                    self.max_connections
                );
                continue;
            }
            active.fetch_add(1, Ordering::Relaxed);
            let guard = ActiveGuard(active.clone());
            let h = handle.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-conn", self.name))
                .spawn(move || {
                    let _guard = guard;
                    h(stream);
                });
            if let Err(e) = spawned {
                tracing::warn!("{}: cannot start a connection thread: {e}", self.name);
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

//! Absolute deadlines for connections whose thread may be blocked inside a
//! file sender.
//!
//! The senders of [`crate::file`] take a timeout per wait: each time the
//! socket takes a few bytes, the clock starts again, so a client that reads
//! a little now and then could hold a response (and its thread) for ever. The
//! server cannot see inside those calls, so one thread per server watches
//! every connection's deadline instead and, when one passes, shuts the socket
//! down (`shutdown(SHUT_RDWR)`): the blocked `poll` wakes, the next send
//! fails with `EPIPE`, and the connection ends, wherever its thread was.
//!
//! A descriptor is registered while its [`Watched`] lives and deregistered
//! under the same lock before the socket closes, so the watchdog never shuts
//! down a descriptor number that has since been reused.

use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;
use zc_core::{Error, Result};

/// The watchdog of one server; dropping it stops its thread.
pub(crate) struct Watchdog {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    free: Vec<usize>,
    stop: bool,
}

struct Slot {
    fd: RawFd,
    deadline: Option<Instant>,
    fired: bool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Watchdog {
    /// Starts the watching thread.
    pub(crate) fn start(name: &str) -> Result<Self> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let watched = inner.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-watchdog"))
            .spawn(move || watch(&watched))
            .map_err(|e| Error::io(format!("{name}: start the watchdog thread"), e))?;
        Ok(Self {
            inner,
            thread: Some(thread),
        })
    }

    /// Registers `stream`, with no deadline yet.
    pub(crate) fn watch(&self, stream: TcpStream) -> Watched<'_> {
        let mut st = self.inner.lock();
        let slot = Slot {
            fd: stream.as_raw_fd(),
            deadline: None,
            fired: false,
        };
        let index = match st.free.pop() {
            Some(i) => {
                st.slots[i] = slot;
                i
            }
            None => {
                st.slots.push(slot);
                st.slots.len() - 1
            }
        };
        Watched {
            inner: &self.inner,
            index,
            stream,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.inner.lock().stop = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The watching thread: shuts down every socket whose deadline has passed,
/// then sleeps until the next deadline or a change.
fn watch(inner: &Inner) {
    let mut st = inner.lock();
    loop {
        if st.stop {
            return;
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for s in st.slots.iter_mut().filter(|s| s.fd >= 0) {
            match s.deadline {
                Some(at) if at <= now => {
                    // SAFETY: the slot is live, so its descriptor is still the
                    // connection's open socket: deregistration takes this lock
                    // before the socket is closed.
                    unsafe { libc::shutdown(s.fd, libc::SHUT_RDWR) };
                    s.fired = true;
                    s.deadline = None;
                }
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        st = match next {
            None => inner.wake.wait(st).unwrap_or_else(PoisonError::into_inner),
            Some(at) => {
                let waited = inner.wake.wait_timeout(st, at - now);
                waited.unwrap_or_else(PoisonError::into_inner).0
            }
        };
    }
}

/// A socket under watch: the connection owns its stream through this, and
/// dropping it deregisters the descriptor before closing it.
pub(crate) struct Watched<'w> {
    inner: &'w Inner,
    index: usize,
    stream: TcpStream,
}

impl Watched<'_> {
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Shuts the socket down at `at`; `None` removes the deadline.
    pub(crate) fn set_deadline(&self, at: Option<Instant>) {
        self.inner.lock().slots[self.index].deadline = at;
        if at.is_some() {
            self.inner.wake.notify_one();
        }
    }

    /// Whether the deadline passed and the socket was shut down.
    pub(crate) fn fired(&self) -> bool {
        self.inner.lock().slots[self.index].fired
    }
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.slots[self.index].fd = -1;
        st.slots[self.index].deadline = None;
        st.free.push(self.index);
        // The stream closes after this, with the lock released: the watchdog
        // no longer knows its descriptor number.
    }
}

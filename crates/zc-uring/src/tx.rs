//! The sender: a connected UDP socket, a fixed pool of send slots in one
//! mapping (registered with the kernel as a fixed buffer when it allows), and
//! batched submission of `IORING_OP_SEND` / `IORING_OP_SEND_ZC`.
//!
//! Slot life cycle: free → sending (an SQE points into it) → free again on a
//! completion without `IORING_CQE_F_MORE`. For `SEND_ZC` the first completion
//! carries `F_MORE` and the slot waits for the second, the notification
//! (`IORING_CQE_F_NOTIF`), which is when the kernel no longer reads it. A
//! completion for a slot in the wrong state is counted, never acted on, so a
//! buffer cannot come back twice.

use crate::mem::Region;
use crate::ring::{self, RingOptions, OP_ASYNC_CANCEL, OP_SEND};
use io_uring::{cqueue, opcode, types, IoUring};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use zc_core::{DataPath, Error, ErrorKind, Mode, Result, SendBurst, Sender, TxStats};

/// `IORING_SEND_ZC_REPORT_USAGE`: ask the notification to say whether the kernel copied.
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`, in a notification's result.
const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
/// user_data of cancel requests (slots use their index, below 65536).
const CANCEL_TAG: u64 = 1 << 32;
/// How long drop waits for outstanding completions before leaking the slots.
const DROP_DEADLINE: Duration = Duration::from_secs(2);

const FREE: u8 = 0;
const SENDING: u8 = 1;
const AWAIT_NOTIF: u8 = 2;

/// Sender settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxConfig {
    /// Where every datagram goes (the socket is connected to it).
    pub dest: SocketAddr,
    /// Local address to bind (default: any address of the destination's family).
    pub bind: Option<SocketAddr>,
    /// Send slots: datagrams in flight at most, 1 to 32768.
    pub slots: u16,
    /// Largest payload per slot.
    pub max_payload: usize,
    /// Payloads of at least this many bytes go by `SEND_ZC`; smaller ones by
    /// plain send (zero-copy costs a page pin and a second completion, which
    /// only pays off for large payloads). `None`: never `SEND_ZC`.
    pub zc_min_payload: Option<usize>,
    /// Submit through a kernel SQPOLL thread that idles after this long.
    pub sqpoll_idle: Option<Duration>,
}

impl TxConfig {
    /// Defaults: 256 slots of 1472 bytes, `SEND_ZC` from 4096 bytes (so never
    /// at this payload size), no SQPOLL.
    pub fn new(dest: SocketAddr) -> Self {
        Self {
            dest,
            bind: None,
            slots: 256,
            max_payload: 1472,
            zc_min_payload: Some(4096),
            sqpoll_idle: None,
        }
    }
}

#[derive(Default)]
struct Counters {
    zc_sends: u64,
    plain_sends: u64,
    notifs: u64,
    copied: u64,
    send_errors: u64,
    unexpected: u64,
    returned: u64,
}

/// io_uring sender with batched `SEND` / `SEND_ZC` submission.
///
/// Like the receiver, its ring is `SINGLE_ISSUER` and bound to the first
/// thread that sends; use and drop it on that thread.
pub struct UringSender {
    ring: ManuallyDrop<IoUring>,
    slots: ManuallyDrop<Region>,
    socket: UdpSocket,
    slot_size: usize,
    max_payload: usize,
    zc_min: Option<usize>,
    zc_flags: u16,
    fixed: bool,
    state: Vec<u8>,
    free: Vec<u16>,
    needs_enable: bool,
    single_issuer: bool,
    owner: Option<ThreadId>,
    last_error: Option<i32>,
    counters: Counters,
    copied_reported: bool,
    mode: Mode,
    stats: TxStats,
}

impl UringSender {
    /// Opens the socket and the ring, probes `SEND_ZC`, and registers the slot
    /// memory as a fixed buffer when the kernel allows.
    pub fn open(cfg: &TxConfig) -> Result<Self> {
        if cfg.slots == 0 || cfg.slots > 32768 {
            return Err(Error::config(format!(
                "uring sender: slots = {} must be 1 to 32768",
                cfg.slots
            )));
        }
        if cfg.max_payload == 0 || cfg.max_payload > 65507 {
            return Err(Error::config(format!(
                "uring sender: max_payload = {} must be 1 to 65507 (the largest UDP payload)",
                cfg.max_payload
            )));
        }
        let bind = cfg.bind.unwrap_or(match cfg.dest {
            SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
        });
        let socket = UdpSocket::bind(bind).map_err(|e| Error::io(format!("bind UDP {bind}"), e))?;
        socket
            .connect(cfg.dest)
            .map_err(|e| Error::io(format!("connect UDP to {}", cfg.dest), e))?;

        let mut details = Vec::new();
        let sq_entries = u32::from(cfg.slots).next_power_of_two().clamp(64, 4096);
        let cq_entries = (u32::from(cfg.slots) * 2)
            .next_power_of_two()
            .max(sq_entries * 2);
        let built = ring::build(
            RingOptions {
                sq_entries,
                cq_entries,
                sqpoll_idle: cfg.sqpoll_idle,
            },
            &mut details,
        )?;
        let probe = ring::require_opcodes(&built.ring, &[OP_SEND, OP_ASYNC_CANCEL])?;

        let slot_size = cfg.max_payload.next_multiple_of(64);
        let slots = Region::new(slot_size * usize::from(cfg.slots), "io_uring send slots")?;

        let mut zc_min = cfg.zc_min_payload;
        let mut zc_flags = 0;
        let mut fixed = false;
        if zc_min.is_some() && !probe.is_supported(opcode::SendZc::CODE) {
            details.push(
                "SEND_ZC unavailable (needs Linux 6.0): every payload goes by plain send"
                    .to_owned(),
            );
            zc_min = None;
        }
        if let Some(min) = zc_min {
            if zc_os::kernel::release().is_some_and(|v| v >= (6, 2)) {
                zc_flags = SEND_ZC_REPORT_USAGE;
            } else {
                details.push("IORING_SEND_ZC_REPORT_USAGE unavailable (needs Linux 6.2): sends the kernel copied anyway cannot be told apart".to_owned());
            }
            let iov = libc::iovec {
                iov_base: slots.as_ptr().cast(),
                iov_len: slots.len(),
            };
            // SAFETY: the iovec covers exactly the slot mapping, which lives
            // until after the ring is closed (Drop closes the ring first).
            match unsafe { built.ring.submitter().register_buffers(&[iov]) } {
                Ok(()) => fixed = true,
                Err(e) => details.push(format!(
                    "fixed buffer registration refused ({e}): SEND_ZC pins pages on every send"
                )),
            }
            if min <= cfg.max_payload {
                details.push(format!(
                    "SEND_ZC for payloads ≥ {min} B{}, plain send below",
                    if fixed {
                        " from a registered fixed buffer"
                    } else {
                        ""
                    }
                ));
            } else {
                details.push(format!(
                    "plain send only: SEND_ZC starts at {min} B, above the {} B max payload",
                    cfg.max_payload
                ));
            }
        } else {
            details.push("plain send only (SEND_ZC off)".to_owned());
        }
        let zero_copy = zc_min.is_some_and(|m| m <= cfg.max_payload);
        let mut mode = Mode::new(
            "uring",
            if zero_copy {
                DataPath::ZeroCopy
            } else {
                DataPath::Copy
            },
            usize::from(cfg.slots),
        );
        mode.details = details;

        Ok(Self {
            needs_enable: built.disabled,
            single_issuer: built.single_issuer,
            ring: ManuallyDrop::new(built.ring),
            slots: ManuallyDrop::new(slots),
            socket,
            slot_size,
            max_payload: cfg.max_payload,
            zc_min,
            zc_flags,
            fixed,
            state: vec![FREE; usize::from(cfg.slots)],
            free: (0..cfg.slots).rev().collect(),
            owner: None,
            last_error: None,
            counters: Counters::default(),
            copied_reported: false,
            mode,
            stats: TxStats::default(),
        })
    }

    /// Slots lent to the kernel (sent, or waiting for their SEND_ZC notification).
    pub fn in_flight(&self) -> usize {
        self.state.len() - self.free.len()
    }

    /// The errno of the latest failed send completion, if any failed.
    pub fn last_send_error(&self) -> Option<std::io::Error> {
        self.last_error.map(std::io::Error::from_raw_os_error)
    }

    /// Waits until every slot is back (all sends and notifications
    /// completed), at most `timeout`.
    pub fn flush(&mut self, timeout: Duration) -> Result<()> {
        let deadline = zc_core::sys::deadline_after(timeout);
        while self.in_flight() > 0 {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Error::new(
                    ErrorKind::Exhausted,
                    format!(
                        "uring sender: {} buffers still lent to the kernel after {timeout:?}",
                        self.in_flight()
                    ),
                ));
            }
            ring::wait(&mut self.ring, 1, left, None)
                .map_err(|e| ring::enter_error("io_uring_enter (flush)", e))?;
            self.reap();
        }
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        if self.needs_enable {
            ring::enable(&self.ring)?;
            self.needs_enable = false;
            self.owner = Some(std::thread::current().id());
        }
        Ok(())
    }

    #[inline]
    fn release(&mut self, slot: usize) {
        self.state[slot] = FREE;
        self.free.push(slot as u16);
        self.counters.returned += 1;
    }

    /// Handles every completion in the queue.
    fn reap(&mut self) {
        let mut done = [(0u64, 0i32, 0u32); 64];
        loop {
            let mut n = 0;
            for cqe in self.ring.completion().take(done.len()) {
                done[n] = (cqe.user_data(), cqe.result(), cqe.flags());
                n += 1;
            }
            for &(ud, res, flags) in &done[..n] {
                self.complete(ud, res, flags);
            }
            if n < done.len() {
                break;
            }
        }
        if self.counters.copied > 0 && !self.copied_reported {
            self.copied_reported = true;
            self.mode.data_path = DataPath::Copy;
            self.mode.details.push(
                "the kernel copied SEND_ZC payloads anyway (IORING_NOTIF_USAGE_ZC_COPIED): this route cannot zero-copy (loopback and veth always copy); see the zc_copied counter".to_owned(),
            );
        }
    }

    #[inline]
    fn complete(&mut self, ud: u64, res: i32, flags: u32) {
        if ud == CANCEL_TAG {
            return;
        }
        let slot = ud as usize;
        if slot >= self.state.len() {
            self.counters.unexpected += 1;
            return;
        }
        if cqueue::notif(flags) {
            if self.state[slot] != AWAIT_NOTIF {
                self.counters.unexpected += 1;
                return;
            }
            self.counters.notifs += 1;
            if (res as u32) & NOTIF_USAGE_ZC_COPIED != 0 {
                self.counters.copied += 1;
            }
            self.release(slot);
            return;
        }
        if self.state[slot] != SENDING {
            self.counters.unexpected += 1;
            return;
        }
        if res < 0 {
            self.counters.send_errors += 1;
            self.last_error = Some(-res);
        }
        if cqueue::more(flags) {
            self.state[slot] = AWAIT_NOTIF;
        } else {
            self.release(slot);
        }
    }

    /// Runs deferred completion work and reaps, without waiting.
    fn poll(&mut self) -> Result<()> {
        ring::wait(&mut self.ring, 0, Some(Duration::ZERO), None)
            .map_err(|e| ring::enter_error("io_uring_enter (reap)", e))?;
        self.reap();
        Ok(())
    }

    fn quiesce(&mut self) -> bool {
        if self.needs_enable {
            return true;
        }
        if self.single_issuer && self.owner != Some(std::thread::current().id()) {
            return false;
        }
        if self.flush(DROP_DEADLINE / 2).is_ok() {
            return true;
        }
        // Sends stuck behind a full socket buffer: cancel them, then wait again.
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(CANCEL_TAG);
        // SAFETY: a cancel entry carries no pointers.
        if unsafe { self.ring.submission().push(&cancel) }.is_err() {
            return false;
        }
        self.flush(DROP_DEADLINE / 2).is_ok()
    }
}

impl std::fmt::Debug for UringSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringSender")
            .field("mode", &self.mode)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Sender for UringSender {
    fn max_payload(&self) -> usize {
        self.max_payload
    }

    fn send_burst(
        &mut self,
        count: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize> {
        self.start()?;
        self.poll()?;
        if self.free.is_empty() && count > 0 {
            // Every slot is lent out: wait briefly for one to come back.
            ring::wait(&mut self.ring, 1, Some(Duration::from_millis(10)), None)
                .map_err(|e| ring::enter_error("io_uring_enter (wait for a send slot)", e))?;
            self.reap();
        }
        let room = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        let mut burst = SendBurst::new(count, self.state.len());
        let n = burst.limit().min(self.free.len()).min(room);
        let fd = types::Fd(self.socket.as_raw_fd());
        let mut sent = 0;
        while sent < n {
            let Some(&slot) = self.free.last() else { break };
            let at = usize::from(slot) * self.slot_size;
            // SAFETY: the slot is free (no SQE points at it), lies inside the
            // mapping, and is borrowed only for this call of `fill`.
            let buf = unsafe {
                std::slice::from_raw_parts_mut(self.slots.as_ptr().add(at), self.max_payload)
            };
            let Some(len) = burst.fill(fill, sent, buf) else {
                break;
            };
            self.free.pop();
            // SAFETY: `at + len` is inside the mapping (len <= max_payload <= slot_size).
            let ptr = unsafe { self.slots.as_ptr().add(at) };
            let entry = if self.zc_min.is_some_and(|m| len >= m) {
                self.counters.zc_sends += 1;
                let mut op = opcode::SendZc::new(fd, ptr, len as u32).zc_flags(self.zc_flags);
                if self.fixed {
                    op = op.buf_index(Some(0));
                }
                op.build()
            } else {
                self.counters.plain_sends += 1;
                opcode::Send::new(fd, ptr, len as u32).build()
            };
            self.state[usize::from(slot)] = SENDING;
            // SAFETY: the entry points into slot `slot`, which stays marked
            // SENDING (not reusable, mapping alive) until its last completion.
            if unsafe {
                self.ring
                    .submission()
                    .push(&entry.user_data(u64::from(slot)))
            }
            .is_err()
            {
                // Cannot happen (n <= room), but never lose a slot if it does.
                self.release(usize::from(slot));
                break;
            }
            burst.sent(len);
            sent += 1;
        }
        if sent > 0 {
            self.ring
                .submit()
                .map_err(|e| ring::enter_error("io_uring_enter (submit sends)", e))?;
        }
        self.reap();
        burst.finish(&mut self.stats)
    }

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn stats(&self) -> TxStats {
        let mut s = self.stats.clone();
        s.extra = vec![
            ("zc_sends", self.counters.zc_sends),
            ("plain_sends", self.counters.plain_sends),
            ("zc_notifs", self.counters.notifs),
            ("zc_copied", self.counters.copied),
            ("send_errors", self.counters.send_errors),
            ("unexpected_completions", self.counters.unexpected),
            ("buffers_returned", self.counters.returned),
            ("in_flight", self.in_flight() as u64),
        ];
        s
    }
}

impl Drop for UringSender {
    fn drop(&mut self) {
        let quiet = self.quiesce();
        // SAFETY: dropped exactly once, here; not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        // SAFETY: taken exactly once, here; not used afterwards.
        let slots = unsafe { ManuallyDrop::take(&mut self.slots) };
        let in_flight = self.in_flight();
        slots.release(
            quiet,
            format_args!("sender with {in_flight} buffers possibly lent to the kernel"),
        );
    }
}

//! Ring creation with feature probing and reported fallbacks, and the waits
//! both directions share.

use io_uring::{opcode, types, IoUring, Probe};
use std::io;
use std::time::Duration;
use zc_core::{Error, ErrorKind, Result};

/// What to ask the kernel for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingOptions {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub sqpoll_idle: Option<Duration>,
}

/// A ring and the setup flags it actually got.
pub(crate) struct Ring {
    pub ring: IoUring,
    /// Created with `IORING_SETUP_R_DISABLED`: the first thread that uses it
    /// enables it and becomes its single issuer.
    pub disabled: bool,
    /// Only the thread that enabled the ring may enter it (SINGLE_ISSUER
    /// without SQPOLL; with SQPOLL the kernel thread is the issuer and any
    /// thread may wait).
    pub single_issuer: bool,
    pub sqpoll: bool,
    /// `IORING_SETUP_TASKRUN_FLAG`: the kernel flags deferred work in the SQ ring.
    pub taskrun_flag: bool,
}

/// One setup attempt: its flags and the names they are reported under.
struct Attempt {
    sqpoll: bool,
    single_issuer: bool,
    defer_taskrun: bool,
    coop_taskrun: bool,
}

impl Attempt {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.sqpoll {
            parts.push("SQPOLL");
        }
        if self.single_issuer {
            parts.push("SINGLE_ISSUER");
        }
        if self.defer_taskrun {
            parts.push("DEFER_TASKRUN");
        }
        if self.coop_taskrun {
            parts.push("COOP_TASKRUN");
        }
        if parts.is_empty() {
            "no setup flags".to_owned()
        } else {
            parts.join("+")
        }
    }
}

/// Creates a ring with the best flags this kernel accepts, most wanted first:
/// SQPOLL+SINGLE_ISSUER when SQPOLL is asked for (DEFER_TASKRUN cannot be
/// combined with SQPOLL), else SINGLE_ISSUER+DEFER_TASKRUN, then COOP_TASKRUN,
/// then none. Every fallback is written to `details` with the kernel's reason.
pub(crate) fn build(opts: RingOptions, details: &mut Vec<String>) -> Result<Ring> {
    let mut attempts = Vec::with_capacity(4);
    if opts.sqpoll_idle.is_some() {
        attempts.push(Attempt {
            sqpoll: true,
            single_issuer: true,
            defer_taskrun: false,
            coop_taskrun: false,
        });
    }
    attempts.push(Attempt {
        sqpoll: false,
        single_issuer: true,
        defer_taskrun: true,
        coop_taskrun: false,
    });
    attempts.push(Attempt {
        sqpoll: false,
        single_issuer: false,
        defer_taskrun: false,
        coop_taskrun: true,
    });
    attempts.push(Attempt {
        sqpoll: false,
        single_issuer: false,
        defer_taskrun: false,
        coop_taskrun: false,
    });

    let mut last_err = None;
    for a in &attempts {
        let mut b = IoUring::builder();
        b.setup_cqsize(opts.cq_entries);
        if a.sqpoll {
            let idle = opts
                .sqpoll_idle
                .map_or(0, |d| d.as_millis().min(u32::MAX as u128) as u32);
            b.setup_sqpoll(idle.max(1));
        }
        if a.single_issuer {
            b.setup_single_issuer();
            b.setup_r_disabled();
        }
        if a.defer_taskrun {
            b.setup_defer_taskrun();
            b.setup_taskrun_flag();
        }
        if a.coop_taskrun {
            b.setup_coop_taskrun();
            b.setup_taskrun_flag();
        }
        match b.build(opts.sq_entries) {
            Ok(ring) => {
                details.push(format!(
                    "ring: {} (SQ {}, CQ {})",
                    a.describe(),
                    ring.params().sq_entries(),
                    ring.params().cq_entries()
                ));
                if a.sqpoll {
                    details.push(format!("SQPOLL on (kernel thread idles after {} ms); DEFER_TASKRUN off: the kernel does not combine it with SQPOLL", ring.params().sq_thread_idle()));
                } else if opts.sqpoll_idle.is_some() {
                    details.push("SQPOLL requested but refused by this kernel: submitting with io_uring_enter instead".to_owned());
                }
                return Ok(Ring {
                    ring,
                    disabled: a.single_issuer,
                    single_issuer: a.single_issuer && !a.sqpoll,
                    sqpoll: a.sqpoll,
                    taskrun_flag: a.defer_taskrun || a.coop_taskrun,
                });
            }
            Err(e) => {
                details.push(format!("{} refused: {e}", a.describe()));
                last_err = Some(e);
            }
        }
    }
    let e = last_err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOSYS));
    Err(Error::io("io_uring_setup", e).with_fix(
        "io_uring is missing or disabled: check that /proc/sys/kernel/io_uring_disabled is 0 (or 1 with this user in io_uring_group) and that the kernel is 6.0 or newer; otherwise use the recvmmsg backend",
    ))
}

/// Checks that the kernel knows every opcode in `ops` (name, code).
pub(crate) fn require_opcodes(ring: &IoUring, ops: &[(&str, u8)]) -> Result<Probe> {
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| {
        Error::io("io_uring_register(IORING_REGISTER_PROBE)", e)
            .with_fix("the kernel is older than 5.6: use the recvmmsg backend")
    })?;
    for (name, code) in ops {
        if !probe.is_supported(*code) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("this kernel's io_uring lacks {name}"),
            )
            .with_fix("upgrade to Linux 6.0 or newer, or use the recvmmsg/sendmmsg backends"));
        }
    }
    Ok(probe)
}

/// Opcode numbers for the probe.
pub(crate) const OP_RECVMSG: (&str, u8) = ("IORING_OP_RECVMSG", opcode::RecvMsgMulti::CODE);
pub(crate) const OP_SEND: (&str, u8) = ("IORING_OP_SEND", opcode::Send::CODE);
pub(crate) const OP_ASYNC_CANCEL: (&str, u8) =
    ("IORING_OP_ASYNC_CANCEL", opcode::AsyncCancel::CODE);

/// Enables a ring created disabled, making the calling thread its single issuer.
pub(crate) fn enable(ring: &IoUring) -> Result<()> {
    ring.submitter()
        .register_enable_rings()
        .map_err(|e| Error::io("io_uring_register(IORING_REGISTER_ENABLE_RINGS)", e))
}

/// Submits what is queued and waits for completions (one, or `want`: see
/// `min_wait_us`), at most
/// `timeout` (`None`: no limit; zero: do not wait, but still run deferred
/// completion work so that finished operations become visible).
///
/// Returns `Ok(false)` when the wait ended without the completions (timeout,
/// signal), `Ok(true)` otherwise.
///
/// `min_wait_us` (kernels with `IORING_FEAT_MIN_TIMEOUT`): wait up to this
/// long for all `want` completions, and after that return as soon as one is
/// there; without it the wait ends at the first completion.
pub(crate) fn wait(
    ring: &mut IoUring,
    want: usize,
    timeout: Option<Duration>,
    min_wait_us: Option<u32>,
) -> io::Result<bool> {
    let (want, min_wait) = match min_wait_us {
        Some(us) if want > 1 => (want, us),
        _ => (want.min(1), 0),
    };
    let res = match timeout {
        None if min_wait > 0 => ring
            .submitter()
            .submit_with_args(want, &types::SubmitArgs::new().min_wait_usec(min_wait)),
        None => ring.submitter().submit_and_wait(want),
        Some(t) if t.is_zero() => {
            let sq = ring.submission();
            let idle = sq.is_empty() && !sq.taskrun() && !sq.cq_overflow();
            drop(sq);
            if idle {
                return Ok(true);
            }
            ring.submitter().submit_and_wait(0)
        }
        Some(t) => {
            let ts = types::Timespec::new()
                .sec(t.as_secs())
                .nsec(t.subsec_nanos());
            let args = types::SubmitArgs::new()
                .timespec(&ts)
                .min_wait_usec(min_wait);
            ring.submitter().submit_with_args(want, &args)
        }
    };
    match res {
        Ok(_) => Ok(true),
        Err(e) => match e.raw_os_error() {
            // Timeout, a signal, or completions waiting in the overflow list:
            // the caller reaps what is there and decides.
            Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(false),
            _ => Err(e),
        },
    }
}

/// Maps an EEXIST from a single-issuer ring to a message that says what to do.
pub(crate) fn enter_error(op: &str, e: io::Error) -> Error {
    let eexist = e.raw_os_error() == Some(libc::EEXIST);
    let err = Error::io(op.to_owned(), e);
    if eexist {
        err.with_fix("this ring is SINGLE_ISSUER: after its first use, call it only from the thread that first used it")
    } else {
        err
    }
}

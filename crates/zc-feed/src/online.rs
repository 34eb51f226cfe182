//! The online receive loop: one or two lines on any backends, the recovery
//! socket, the feed handler's timers, a status callback once a second.
//!
//! One thread polls everything: each line's receiver without waiting while
//! traffic flows, and line A with a 1 ms wait when all was quiet (so an idle
//! feed does not spin a core, at the cost of up to 1 ms before line B's
//! first packet after a silence is seen). Busy-polling backends return at
//! once either way.

use crate::feed::{FeedHandler, Line, Sink};
use crate::mold::Refusal;
use crate::protocol::Protocol;
use crate::recovery::RecoveryClient;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zc_core::sys::realtime_ns;
use zc_core::{DynReceiver, Result};

/// One line's receiver.
pub struct LineRx<'a> {
    /// A or B.
    pub line: Line,
    /// Any backend.
    pub rx: &'a mut dyn DynReceiver,
    /// The line's UDP port: datagrams to another port are counted and dropped.
    pub port: u16,
}

/// When the loop ends.
#[derive(Clone, Copy)]
pub struct Until<'a> {
    /// When the session ended and everything was delivered or given up.
    pub finished: bool,
    /// At this instant.
    pub deadline: Option<Instant>,
    /// After this long without any datagram (once one arrived).
    pub idle: Option<Duration>,
    /// External stop (Ctrl-C).
    pub stop: &'a AtomicBool,
}

/// Status callback: (seconds since start, handler, sink).
pub type Status<'s, P, S> = &'s mut dyn FnMut(f64, &FeedHandler<P>, &S);

/// Receives until `until` says stop. `now_ns` given to the handler (and so
/// to the sink) is CLOCK_REALTIME, read once per burst.
pub fn receive<P: Protocol, S: Sink>(
    lines: &mut [LineRx<'_>],
    handler: &mut FeedHandler<P>,
    sink: &mut S,
    mut recovery: Option<&mut RecoveryClient>,
    until: Until<'_>,
    mut status: Option<Status<'_, P, S>>,
) -> Result<()> {
    let start = Instant::now();
    let mut next_status = start + Duration::from_secs(1);
    let mut last_rx: Option<Instant> = None;
    let mut quiet = false;
    loop {
        if until.stop.load(Ordering::Relaxed)
            || (until.finished && handler.finished())
            || until.deadline.is_some_and(|d| Instant::now() >= d)
            || until
                .idle
                .zip(last_rx)
                .is_some_and(|(idle, t)| t.elapsed() >= idle)
        {
            return Ok(());
        }
        let mut got = 0;
        for (i, l) in lines.iter_mut().enumerate() {
            let wait = if quiet && i == 0 {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            let mut now = 0;
            let (line, port) = (l.line, l.port);
            got += l.rx.recv_each(Some(wait), &mut |d| {
                if now == 0 {
                    now = realtime_ns();
                }
                if d.dst.port() != port {
                    handler.refuse(line, Refusal::OtherPort);
                    return;
                }
                handler.on_datagram(line, d.payload, now, sink);
            })?;
        }
        if let Some(rc) = recovery.as_deref_mut() {
            got +=
                rc.receive(&mut |p| handler.on_datagram(Line::Recovery, p, realtime_ns(), sink))?;
            handler.poll(realtime_ns(), sink, &mut |r| rc.request(r));
        } else {
            handler.poll(realtime_ns(), sink, &mut |_| {});
        }
        quiet = got == 0;
        if got > 0 {
            last_rx = Some(Instant::now());
        }
        if let Some(f) = status.as_mut() {
            if Instant::now() >= next_status {
                next_status += Duration::from_secs(1);
                f(start.elapsed().as_secs_f64(), handler, sink);
            }
        }
    }
}

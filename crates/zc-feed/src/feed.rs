//! The feed handler: datagrams from one or two lines (and from recovery) in,
//! each message delivered once, in sequence order, to a [`Sink`].
//!
//! **Arbitration.** Lines A and B carry the same packets. Every message goes
//! through one merged [`SeqTracker`]: the first copy of a number wins, later
//! copies are duplicates. Each line also has its own tracker, for its own
//! gaps. Per line the handler counts packets, first arrivals, duplicates and
//! the messages that only this line had.
//!
//! **Ordering.** A message ahead of the next one to deliver (the *cursor*) is
//! copied into a bounded hold buffer (a ring of fixed slots indexed by
//! sequence number) until the gap before it is filled or given up. A message
//! more than the buffer's capacity ahead of the cursor is not held: it is
//! counted (`hold_overflow`) and stays missing, so recovery asks for it again.
//!
//! **Gaps.** A gap of the merged stream was missed by every line. It first
//! waits `line_wait` for a late copy from the other line; then, with recovery
//! configured, it is requested (at most `max_request` messages per request,
//! retried with doubling back-off) until `give_up` after it opened; without
//! recovery it is given up after `line_wait`. Given-up numbers are reported
//! to the sink as lost, exactly, and the cursor moves past them.
//!
//! Nothing here does I/O: requests go out through a callback and time is a
//! parameter, so the rules are tested without sockets; `crate::recovery` and
//! the command wire them to sockets.

use crate::mold::{PacketKind, Refusal, Refusals, Request};
use crate::protocol::Protocol;
use crate::seq::{Admit, MissingRange, SeqOutcome, SeqStats, SeqTracker, TrackerConfig};
use std::collections::VecDeque;

/// Receives the messages a [`FeedHandler`] delivers.
pub trait Sink {
    /// Message `seq`, in order, exactly once. `now_ns` is the delivery time
    /// on the clock the caller passes to the handler.
    fn message(&mut self, seq: u64, msg: &[u8], now_ns: u64);

    /// Messages `first .. first + count` will never come (given up).
    fn lost(&mut self, first: u64, count: u64) {
        let _ = (first, count);
    }

    /// The first message delivered is `seq`: below it, nothing was seen.
    fn start(&mut self, seq: u64) {
        let _ = seq;
    }
}

/// Which line a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The primary line.
    A,
    /// The redundant line.
    B,
    /// Retransmissions answering our requests.
    Recovery,
}

impl Line {
    fn index(self) -> usize {
        match self {
            Line::A => 0,
            Line::B => 1,
            Line::Recovery => 2,
        }
    }

    /// `A`, `B` or `recovery`.
    pub fn name(self) -> &'static str {
        match self {
            Line::A => "A",
            Line::B => "B",
            Line::Recovery => "recovery",
        }
    }
}

/// Handler settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedConfig {
    /// Sequence tracking (gaps remembered, resynchronisation window).
    pub tracker: TrackerConfig,
    /// Expect this number first (1: the session from its start); `None`
    /// starts at the first number seen (a late join).
    pub start: Option<u64>,
    /// Messages the hold buffer keeps while a gap is open.
    pub hold_messages: usize,
    /// Bytes of one hold slot: longer messages cannot be held (counted).
    pub hold_slot_bytes: usize,
    /// How long a gap waits for the other line before it is requested (or,
    /// without recovery, given up), in ns.
    pub line_wait_ns: u64,
    /// With recovery: how long after it opened a gap is given up, in ns.
    pub give_up_ns: u64,
    /// First retry interval of a request, in ns; doubles per attempt.
    pub retry_ns: u64,
    /// Largest count in one request.
    pub max_request: u16,
    /// Requests sent per poll at most (pacing).
    pub max_requests_per_poll: usize,
    /// Whether gaps are requested from a re-request server.
    pub recovery: bool,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            tracker: TrackerConfig::default(),
            start: None,
            hold_messages: 1 << 16,
            hold_slot_bytes: 64,
            line_wait_ns: 2_000_000,
            give_up_ns: 1_000_000_000,
            retry_ns: 20_000_000,
            max_request: 1024,
            max_requests_per_poll: 8,
            recovery: false,
        }
    }
}

/// Counters of one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Datagrams accepted (data, heartbeats, end of session).
    pub packets: u64,
    /// Messages carried.
    pub messages: u64,
    /// Messages whose first copy came on this line.
    pub first_arrivals: u64,
    /// Messages another line (or this one) had delivered already.
    pub duplicates: u64,
    /// Of the first arrivals, messages no other line brought (so far; final
    /// once the other line's copy can no longer come).
    pub only_here: u64,
    /// Datagrams refused, by reason.
    pub refused: Refusals,
    /// This line's own sequence counters (its gaps are what it missed).
    pub seq: SeqStats,
}

/// Counters of the merged stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Messages delivered to the sink.
    pub delivered: u64,
    /// Of them, first arrivals from recovery.
    pub recovered: u64,
    /// Messages given up (reported lost).
    pub lost: u64,
    /// Messages not held because the buffer was full (they stay missing).
    pub hold_overflow: u64,
    /// Messages longer than a hold slot that had to wait (they stay missing).
    pub hold_too_long: u64,
    /// Messages held right now.
    pub held: u64,
    /// Most messages held at once.
    pub max_held: u64,
    /// Requests sent.
    pub requests: u64,
    /// Messages asked for, in all requests.
    pub requested: u64,
    /// Merged sequence counters (gaps here were missed by every line).
    pub seq: SeqStats,
    /// The session ended (an end-of-session packet was accepted).
    pub ended: bool,
}

#[derive(Debug, Clone, Copy)]
struct GapTimer {
    /// Start of the gap when it opened (a split gap's parts share the timer).
    first: u64,
    opened_ns: u64,
    next_request_ns: u64,
    attempts: u32,
}

/// Ring of fixed slots for messages waiting behind a gap.
#[derive(Debug, Clone)]
struct Hold {
    bytes: Vec<u8>,
    /// 0: empty; otherwise the message length + 1.
    lens: Vec<u16>,
    slot: usize,
    held: u64,
}

impl Hold {
    fn new(messages: usize, slot: usize) -> Self {
        let messages = messages.max(1);
        let slot = slot.clamp(1, usize::from(u16::MAX) - 1);
        Self {
            bytes: vec![0; messages * slot],
            lens: vec![0; messages],
            slot,
            held: 0,
        }
    }

    fn capacity(&self) -> u64 {
        self.lens.len() as u64
    }

    fn index(&self, seq: u64) -> usize {
        (seq % self.capacity()) as usize
    }

    fn put(&mut self, seq: u64, msg: &[u8]) -> bool {
        if msg.len() > self.slot {
            return false;
        }
        let i = self.index(seq);
        self.bytes[i * self.slot..i * self.slot + msg.len()].copy_from_slice(msg);
        self.lens[i] = msg.len() as u16 + 1;
        self.held += 1;
        true
    }

    /// The held message `seq`, emptied from its slot.
    fn take(&mut self, seq: u64) -> Option<&[u8]> {
        let i = self.index(seq);
        let len = usize::from(self.lens[i].checked_sub(1)?);
        self.lens[i] = 0;
        self.held -= 1;
        Some(&self.bytes[i * self.slot..i * self.slot + len])
    }
}

/// Which lines had each recent message, to count the messages only one line had.
#[derive(Debug, Clone)]
struct Attribution {
    slots: Vec<(u64, u8)>,
    retired_only: [u64; 3],
}

const ATTRIBUTION_SLOTS: usize = 1 << 16;

impl Attribution {
    fn new() -> Self {
        Self {
            slots: vec![(u64::MAX, 0); ATTRIBUTION_SLOTS],
            retired_only: [0; 3],
        }
    }

    fn first(&mut self, seq: u64, line: usize) {
        let slot = &mut self.slots[seq as usize % ATTRIBUTION_SLOTS];
        if slot.0 != u64::MAX {
            if let Some(l) = only(slot.1) {
                self.retired_only[l] += 1;
            }
        }
        *slot = (seq, 1 << line);
    }

    fn again(&mut self, seq: u64, line: usize) {
        let slot = &mut self.slots[seq as usize % ATTRIBUTION_SLOTS];
        if slot.0 == seq {
            slot.1 |= 1 << line;
        }
    }

    fn only_counts(&self) -> [u64; 3] {
        let mut n = self.retired_only;
        for &(seq, flags) in &self.slots {
            if seq != u64::MAX {
                if let Some(l) = only(flags) {
                    n[l] += 1;
                }
            }
        }
        n
    }
}

fn only(flags: u8) -> Option<usize> {
    (flags.count_ones() == 1).then(|| flags.trailing_zeros() as usize)
}

/// One session's lines merged into one ordered stream.
#[derive(Debug, Clone)]
pub struct FeedHandler<P> {
    cfg: FeedConfig,
    protocol: P,
    merged: SeqTracker,
    lines: [SeqTracker; 3],
    line_stats: [LineStats; 3],
    /// Next number to deliver; `None` before the first.
    cursor: Option<u64>,
    hold: Hold,
    timers: VecDeque<GapTimer>,
    attribution: Attribution,
    stats: FeedStats,
}

impl<P: Protocol> FeedHandler<P> {
    /// A handler with its buffers allocated.
    pub fn new(protocol: P, cfg: FeedConfig) -> Self {
        let mut merged = SeqTracker::new(cfg.tracker);
        let line = || {
            let mut t = SeqTracker::new(cfg.tracker);
            if let Some(s) = cfg.start {
                t.start_at(s);
            }
            t
        };
        if let Some(s) = cfg.start {
            merged.start_at(s);
        }
        Self {
            cfg,
            protocol,
            merged,
            lines: [
                line(),
                line(),
                SeqTracker::new(TrackerConfig {
                    resync_window: None,
                    ..cfg.tracker
                }),
            ],
            line_stats: [LineStats::default(); 3],
            cursor: cfg.start,
            hold: Hold::new(cfg.hold_messages, cfg.hold_slot_bytes),
            timers: VecDeque::with_capacity(cfg.tracker.max_gaps.max(1)),
            attribution: Attribution::new(),
            stats: FeedStats::default(),
        }
    }

    /// The protocol (e.g. to read the session it locked onto).
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// Counters of the merged stream.
    pub fn stats(&self) -> FeedStats {
        FeedStats {
            seq: self.merged.stats(),
            held: self.hold.held,
            ..self.stats
        }
    }

    /// Counters of one line (computing `only_here` walks a 64 Ki table: not per message).
    pub fn line_stats(&self, line: Line) -> LineStats {
        let i = line.index();
        LineStats {
            seq: self.lines[i].stats(),
            only_here: self.attribution.only_counts()[i],
            ..self.line_stats[i]
        }
    }

    /// Messages delivered so far (cheap).
    pub fn delivered(&self) -> u64 {
        self.stats.delivered
    }

    /// The open gaps of the merged stream, oldest first.
    pub fn missing(&self) -> impl Iterator<Item = MissingRange> + '_ {
        self.merged.missing_ranges()
    }

    /// True once the session ended and everything up to its end was
    /// delivered or given up.
    pub fn finished(&self) -> bool {
        self.stats.ended && self.merged.first_gap().is_none() && self.hold.held == 0
    }

    /// Handles one datagram from `line` at `now_ns`.
    #[inline]
    pub fn on_datagram(&mut self, line: Line, payload: &[u8], now_ns: u64, sink: &mut impl Sink) {
        let li = line.index();
        let frame = match self.protocol.frame(payload) {
            Ok(f) => f,
            Err(r) => {
                self.line_stats[li].refused.count(r);
                return;
            }
        };
        let ls = &mut self.line_stats[li];
        ls.packets += 1;
        ls.messages += frame.count;
        self.lines[li].observe_run(frame.first, frame.count, |_, _| {});
        if frame.kind == PacketKind::EndOfSession && line != Line::Recovery {
            self.stats.ended = true;
        }
        let admit = self.merged.admit(frame.first, frame.count);
        match admit {
            Admit::Suspect => return,
            Admit::Resync { from, to } => self.resync(from, to, now_ns, sink),
            Admit::Accept => {}
        }
        if frame.count == 0 {
            if let Some(g) = self.merged.advance_to(frame.first) {
                self.gap_opened(g, now_ns);
            }
            if self.cursor.is_none() {
                self.cursor = Some(frame.first);
            }
            self.report_evicted(now_ns, sink);
            return;
        }
        let first_seen = self.cursor.is_none();
        self.cursor.get_or_insert(frame.first);
        if first_seen {
            sink.start(frame.first);
        }
        let mut seq = frame.first;
        let mut skipped = false;
        for msg in frame.messages {
            let cursor = self.cursor.unwrap_or(seq);
            let room = seq < cursor.saturating_add(self.hold.capacity());
            if !room || (seq != cursor && msg.len() > self.hold.slot) {
                // Not holdable now: it stays missing and recovery brings it
                // again; counted unless it is a copy of one already had.
                if !self.merged.seen(seq) {
                    skipped = true;
                    if room {
                        self.stats.hold_too_long += 1;
                    } else {
                        self.stats.hold_overflow += 1;
                    }
                }
                seq += 1;
                continue;
            }
            match self.merged.record(seq) {
                SeqOutcome::Duplicate => {
                    self.line_stats[li].duplicates += 1;
                    self.attribution.again(seq, li);
                }
                SeqOutcome::Suspect => {}
                outcome => {
                    if let SeqOutcome::Gap { missing } = outcome {
                        self.gap_opened(
                            MissingRange {
                                first: seq - missing,
                                len: missing,
                            },
                            now_ns,
                        );
                    }
                    self.line_stats[li].first_arrivals += 1;
                    self.attribution.first(seq, li);
                    if line == Line::Recovery {
                        self.stats.recovered += 1;
                    }
                    self.accept(seq, msg, now_ns, sink);
                    // After the accept: a late `seq` that evicted the range
                    // below it is then held, and the drain delivers it.
                    self.report_evicted(now_ns, sink);
                }
            }
            seq += 1;
        }
        if skipped {
            if let Some(g) = self.merged.advance_to(frame.first + frame.count) {
                self.gap_opened(g, now_ns);
            }
            self.report_evicted(now_ns, sink);
        }
    }

    /// A gap the merged tracker dropped to make room (more than `max_gaps`
    /// ranges open at once) will never be delivered: it is reported lost,
    /// exactly like a gap given up, and what waited behind it is delivered.
    fn report_evicted(&mut self, now_ns: u64, sink: &mut impl Sink) {
        if let Some(g) = self.merged.take_evicted() {
            self.stats.lost += g.len;
            sink.lost(g.first, g.len);
            self.drain(now_ns, sink);
        }
    }

    /// Delivers `seq` when it is the cursor's, else holds it (room was checked).
    fn accept(&mut self, seq: u64, msg: &[u8], now_ns: u64, sink: &mut impl Sink) {
        let cursor = self.cursor.unwrap_or(seq);
        if seq == cursor {
            self.stats.delivered += 1;
            sink.message(seq, msg, now_ns);
            self.cursor = Some(seq + 1);
            self.drain(now_ns, sink);
        } else if self.hold.put(seq, msg) {
            self.stats.max_held = self.stats.max_held.max(self.hold.held);
        }
    }

    /// Delivers held messages from the cursor while nothing is missing there.
    fn drain(&mut self, now_ns: u64, sink: &mut impl Sink) {
        let Some(mut cursor) = self.cursor else {
            return;
        };
        let next = self.merged.next_expected().unwrap_or(cursor);
        let gap = self.merged.first_gap();
        while cursor < next {
            if gap.is_some_and(|g| g.first <= cursor) {
                break;
            }
            if self.hold.held == 0 {
                cursor = gap.map_or(next, |g| g.first.min(next));
                break;
            }
            if let Some(msg) = self.hold.take(cursor) {
                self.stats.delivered += 1;
                sink.message(cursor, msg, now_ns);
            }
            cursor += 1;
        }
        self.cursor = Some(cursor);
    }

    fn gap_opened(&mut self, g: MissingRange, now_ns: u64) {
        if self.timers.len() == self.cfg.tracker.max_gaps.max(1) {
            self.timers.pop_front();
        }
        self.timers.push_back(GapTimer {
            first: g.first,
            opened_ns: now_ns,
            next_request_ns: now_ns.saturating_add(self.cfg.line_wait_ns),
            attempts: 0,
        });
    }

    /// A confirmed jump: what waited before it is delivered or given up,
    /// the numbers jumped over are reported lost, and delivery goes on at `to`.
    fn resync(&mut self, from: u64, to: u64, now_ns: u64, sink: &mut impl Sink) {
        while let Some(g) = self.merged.first_gap() {
            if g.first >= to {
                break;
            }
            let n = self.merged.forget_below(g.end().min(to));
            self.stats.lost += n;
            sink.lost(g.first, n);
            self.drain(now_ns, sink);
        }
        self.drain(now_ns, sink);
        if to > from {
            sink.lost(from, to - from);
        }
        self.cursor = Some(to);
    }

    /// Timers: requests for gaps every line missed, and give-ups. Call it
    /// regularly (every burst, and at least every millisecond or so while
    /// gaps are open). `request` sends one request packet.
    pub fn poll(&mut self, now_ns: u64, sink: &mut impl Sink, request: &mut dyn FnMut(Request)) {
        if self.merged.first_gap().is_none() {
            self.timers.clear();
            return;
        }
        let deadline = if self.cfg.recovery {
            self.cfg.give_up_ns
        } else {
            self.cfg.line_wait_ns
        };
        // Give up the oldest gaps past their deadline, oldest first.
        while let Some(g) = self.merged.first_gap() {
            if now_ns.saturating_sub(self.timer_of(g.first).opened_ns) < deadline {
                break;
            }
            let n = self.merged.forget_below(g.end());
            self.stats.lost += n;
            sink.lost(g.first, n);
            // What waited between this gap and the next is delivered before
            // the next gap's loss is reported: the sink sees one order.
            self.drain(now_ns, sink);
        }
        self.drain(now_ns, sink);
        self.drop_stale_timers();
        if !self.cfg.recovery {
            return;
        }
        let session = self.protocol.session().unwrap_or_default();
        let mut sent = 0;
        let mut current: Option<(usize, bool)> = None;
        let mut ti = 0;
        for i in 0..self.merged.gap_count() {
            let Some(g) = self.merged.gap_at(i) else {
                break;
            };
            while ti + 1 < self.timers.len() && self.timers[ti + 1].first <= g.first {
                ti += 1;
            }
            if current.is_none_or(|(t, _)| t != ti) {
                if let Some((t, true)) = current {
                    self.back_off(t, now_ns);
                }
                let due = self
                    .timers
                    .get(ti)
                    .is_none_or(|t| now_ns >= t.next_request_ns);
                current = Some((ti, due));
            }
            if current.is_some_and(|(_, due)| !due) {
                continue;
            }
            let mut at = g.first;
            while at < g.end() && sent < self.cfg.max_requests_per_poll {
                let count = (g.end() - at).min(u64::from(self.cfg.max_request.max(1)));
                request(Request {
                    session,
                    sequence: at,
                    count: count as u16,
                });
                self.stats.requests += 1;
                self.stats.requested += count;
                sent += 1;
                at += count;
            }
            if sent >= self.cfg.max_requests_per_poll {
                break;
            }
        }
        if let Some((t, true)) = current {
            self.back_off(t, now_ns);
        }
    }

    fn back_off(&mut self, ti: usize, now_ns: u64) {
        if let Some(t) = self.timers.get_mut(ti) {
            let backoff = self.cfg.retry_ns.saturating_mul(1 << t.attempts.min(16));
            t.attempts += 1;
            t.next_request_ns = now_ns.saturating_add(backoff);
        }
    }

    fn timer_of(&self, first: u64) -> GapTimer {
        self.timers
            .iter()
            .rev()
            .find(|t| t.first <= first)
            .or(self.timers.front())
            .copied()
            .unwrap_or(GapTimer {
                first,
                opened_ns: 0,
                next_request_ns: 0,
                attempts: 0,
            })
    }

    /// Drops timers whose span holds no open gap any more.
    fn drop_stale_timers(&mut self) {
        let Some(g) = self.merged.first_gap() else {
            self.timers.clear();
            return;
        };
        while self.timers.len() > 1 && self.timers[1].first <= g.first {
            self.timers.pop_front();
        }
    }

    /// Counts a datagram refused before it reached the protocol (e.g. not
    /// for the feed's port) against `line`.
    pub fn refuse(&mut self, line: Line, r: Refusal) {
        self.line_stats[line.index()].refused.count(r);
    }
}

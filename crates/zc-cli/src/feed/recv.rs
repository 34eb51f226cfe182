//! `zc feed recv`: online (one or two lines, recovery) or offline (--itch-file).

use super::peak_rss_kib;
use crate::json::{is_stdout, JsonOut};
use crate::names::RxBackend;
use crate::report::{fmt_ns, fmt_rate};
use clap::Args;
use serde_json::{json, Value};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use zc::{open_receiver, DynReceiver, RxSpec};
use zc_capture::CaptureReader;
use zc_core::{Error, Result};
use zc_feed::book::{BookConfig, Level, OrderBook};
use zc_feed::feed::{FeedConfig, FeedHandler, Line, LineStats};
use zc_feed::mold::Session;
use zc_feed::offline::{replay_itch_file, Offline};
use zc_feed::online::{receive, LineRx, Until};
use zc_feed::protocol::{MoldUdp64, Protocol};
use zc_feed::recovery::RecoveryClient;
use zc_feed::sink::ItchSink;

/// Receive an ITCH feed into an order book.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  zc feed recv --bind-a 198.18.0.1:9000                       # one line, recvmmsg
  zc feed recv --bind-a 198.18.0.1:9000 --backend-a afxdp --interface-a zc0 \\
               --bind-b 198.18.1.1:9000 --backend-b recvmmsg \\
               --recovery 198.18.0.2:9001 --from-start --watch S0001
  zc feed recv --itch-file day.itch                           # offline, from a file
  zc feed recv --pcap feed.pcap --bind-a 0.0.0.0:9000 --from-start   # offline, from a capture

Once a second: messages/s, delivered, gaps every line missed, recovered,
lost, instruments, and the top of book of --watch. At the end a summary per
line (packets, first arrivals, messages only that line had, its own gaps),
for the merged stream, and the book; --json prints it as JSON on stdout
(--json FILE: to FILE). -q: no status lines.
Runs until the session ends (end-of-session packet and nothing missing),
--duration, --idle-exit or Ctrl-C. Exit code 0, or 3 when messages were lost
(1: runtime error, 2: usage error).")]
pub struct RecvArgs {
    /// Offline: build the book from this NASDAQ-format ITCH file (each
    /// message preceded by its u16 big-endian length), no network.
    #[arg(long, conflicts_with_all = ["bind_a", "bind_b", "recovery", "pcap"])]
    itch_file: Option<PathBuf>,
    /// Offline: run the feed handler and the book over the MoldUDP64
    /// datagrams of this capture (pcap or pcapng; Ethernet with VLAN tags,
    /// Linux cooked SLL/SLL2, raw IPv4), no network. With --bind-a, only
    /// datagrams to its port count (another port is skipped and counted).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bind_b", "recovery"])]
    pcap: Option<PathBuf>,
    /// Line A: backend.
    #[arg(long, value_enum, default_value_t = RxBackend::Recvmmsg)]
    backend_a: RxBackend,
    /// Line A: feed address and UDP port.
    #[arg(long)]
    bind_a: Option<SocketAddrV4>,
    /// Line A: interface (AF_XDP and DPDK backends).
    #[arg(long)]
    interface_a: Option<String>,
    /// Line B: backend.
    #[arg(long, value_enum, default_value_t = RxBackend::Recvmmsg)]
    backend_b: RxBackend,
    /// Line B: feed address and UDP port (omit for one line).
    #[arg(long)]
    bind_b: Option<SocketAddrV4>,
    /// Line B: interface (AF_XDP and DPDK backends).
    #[arg(long)]
    interface_b: Option<String>,
    /// Busy-poll on both lines.
    #[arg(long)]
    busy_poll: bool,
    /// Re-request server: ask it for what every line missed.
    #[arg(long)]
    recovery: Option<SocketAddrV4>,
    /// Local address of the recovery socket (port 0: any).
    #[arg(long, default_value = "0.0.0.0:0")]
    recovery_bind: SocketAddrV4,
    /// Accept only this MoldUDP64 session (default: the first one seen).
    #[arg(long)]
    session: Option<String>,
    /// Expect the session from message 1: joining later is a gap to recover
    /// (without it, a late join starts where it joins and the book is not trusted).
    #[arg(long)]
    from_start: bool,
    /// Milliseconds a gap waits for the other line before it is requested
    /// (or, without --recovery, given up).
    #[arg(long, default_value_t = 2.0)]
    line_wait_ms: f64,
    /// Milliseconds after which a gap is given up even with recovery.
    #[arg(long, default_value_t = 1000.0)]
    give_up_ms: f64,
    /// Messages the hold buffer keeps behind a gap.
    #[arg(long, default_value_t = 65_536)]
    hold: usize,
    /// Live orders the book holds (preallocated).
    #[arg(long, default_value_t = 1 << 22)]
    max_orders: usize,
    /// Locate codes the book accepts (preallocated).
    #[arg(long, default_value_t = 1 << 14)]
    max_instruments: usize,
    /// Print this symbol's best bid and offer in the status line and summary.
    #[arg(long)]
    watch: Option<String>,
    /// Instruments listed in the summary (best bid/offer), most active first; 0: all.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Stop when nothing arrived for this many seconds.
    #[arg(long)]
    idle_exit: Option<f64>,
    /// Write the summary as JSON to FILE (`-` or no FILE: stdout, instead of the text).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-",
          value_parser = crate::json::parse_target)]
    json: Option<PathBuf>,
}

fn book_cfg(a: &RecvArgs) -> BookConfig {
    BookConfig {
        max_orders: a.max_orders,
        max_instruments: a.max_instruments,
        ..Default::default()
    }
}

fn open_line(
    backend: RxBackend,
    bind: SocketAddrV4,
    interface: Option<String>,
    busy: bool,
) -> Result<Box<dyn DynReceiver + Send>> {
    let mut spec = RxSpec::new(backend.name()?, bind);
    spec.interface = interface;
    spec.busy_poll = busy;
    open_receiver(&spec)
}

pub fn run(a: RecvArgs) -> Result<ExitCode> {
    if let Some(path) = a.itch_file.clone() {
        return offline(&a, &path);
    }
    if let Some(path) = a.pcap.clone() {
        return offline_capture(&a, &path);
    }
    let stop = crate::stop_flag();
    let bind_a = a.bind_a.ok_or_else(|| {
        Error::config("no feed to receive: give --bind-a ADDR:PORT (and --bind-b for line B), or --itch-file FILE")
    })?;
    let session = a
        .session
        .as_deref()
        .map(|s| {
            Session::new(s).ok_or_else(|| {
                Error::config(format!("session {s:?} must be at most 10 ASCII characters"))
            })
        })
        .transpose()?;
    let mut rx_a = open_line(a.backend_a, bind_a, a.interface_a.clone(), a.busy_poll)?;
    eprintln!("zc feed: line A {} on {bind_a}", rx_a.mode());
    let mut rx_b = match a.bind_b {
        Some(b) => {
            let rx = open_line(a.backend_b, b, a.interface_b.clone(), a.busy_poll)?;
            eprintln!("zc feed: line B {} on {b}", rx.mode());
            Some(rx)
        }
        None => None,
    };
    let mut client = a
        .recovery
        .map(|s| RecoveryClient::new(SocketAddr::V4(a.recovery_bind), SocketAddr::V4(s)))
        .transpose()?;
    let mut handler = FeedHandler::new(
        MoldUdp64::new(session),
        FeedConfig {
            start: a.from_start.then_some(1),
            recovery: client.is_some(),
            hold_messages: a.hold,
            line_wait_ns: (a.line_wait_ms * 1e6) as u64,
            give_up_ns: (a.give_up_ms * 1e6) as u64,
            ..Default::default()
        },
    );
    let mut sink = ItchSink::new(book_cfg(&a), true);
    let mut lines = vec![LineRx {
        line: Line::A,
        rx: rx_a.as_mut(),
        port: bind_a.port(),
    }];
    if let (Some(rx), Some(b)) = (rx_b.as_mut(), a.bind_b) {
        lines.push(LineRx {
            line: Line::B,
            rx: rx.as_mut(),
            port: b.port(),
        });
    }
    let started = Instant::now();
    let mut prev = (0.0, 0u64);
    let watch = a.watch.clone();
    let mut print = |t: f64, h: &FeedHandler<MoldUdp64>, s: &ItchSink| {
        let st = h.stats();
        let rate = (st.delivered - prev.1) as f64 / (t - prev.0).max(1e-9);
        prev = (t, st.delivered);
        let top = watch
            .as_deref()
            .map_or(String::new(), |w| format!("  {}", watch_line(&s.book, w)));
        eprintln!(
            "{t:6.1}s {:>12}  delivered {}  gaps {}  recovered {}  lost {}  instruments {}{top}",
            fmt_rate(rate).replace("pps", "msg/s"),
            st.delivered,
            st.seq.gaps,
            st.recovered,
            st.lost,
            s.book.named_instruments(),
        );
    };
    let status: Option<zc_feed::online::Status<'_, MoldUdp64, ItchSink>> = if crate::quiet() {
        None
    } else {
        Some(&mut print)
    };
    receive(
        &mut lines,
        &mut handler,
        &mut sink,
        client.as_mut(),
        Until {
            finished: true,
            deadline: a
                .duration
                .map(|d| Instant::now() + Duration::from_secs_f64(d)),
            idle: a.idle_exit.map(Duration::from_secs_f64),
            stop,
        },
        status,
    )?;
    let elapsed = started.elapsed();
    let st = handler.stats();
    let mut line_reports = vec![line_json("A", &handler.line_stats(Line::A), lines[0].rx)];
    if lines.len() > 1 {
        line_reports.push(line_json("B", &handler.line_stats(Line::B), lines[1].rx));
    }
    if client.is_some() {
        line_reports.push(line_json(
            "recovery",
            &handler.line_stats(Line::Recovery),
            lines[0].rx,
        ));
    }
    let lat = sink.latency().map(|l| l.summary()).unwrap_or_default();
    let summary = json!({
        "mode": "online",
        "seconds": elapsed.as_secs_f64(),
        "session": handler.protocol().session().map(|s| s.to_string()),
        "lines": line_reports,
        "delivered": st.delivered,
        "recovered": st.recovered,
        "lost": st.lost + st.seq.resync_skipped,
        "gaps": st.seq.gaps,
        "hold_overflow": st.hold_overflow,
        "max_held": st.max_held,
        "requests": st.requests,
        "requested": st.requested,
        "suspect": st.seq.suspect,
        "resyncs": st.seq.resyncs,
        "ended": st.ended,
        "itch_errors": { "unknown_type": sink.errors().unknown_type, "bad_length": sink.errors().bad_length, "empty": sink.errors().empty },
        "latency_ns": { "count": lat.count, "p50": lat.p50, "p99": lat.p99, "p999": lat.p999, "max": lat.max },
        "book": book_json(&sink.book, a.top),
        "peak_rss_kib": peak_rss_kib(),
    });
    if let Some(path) = &a.json {
        JsonOut::create(path)?.document(&summary)?;
    }
    if !a.json.as_deref().is_some_and(is_stdout) {
        for l in summary["lines"].as_array().into_iter().flatten() {
            println!(
                "line {:<8} packets {} messages {} first {} only-here {} duplicates {} gaps {} refused {}",
                l["line"].as_str().unwrap_or(""),
                l["packets"], l["messages"], l["first_arrivals"], l["only_here"], l["duplicates"], l["gaps"], l["refused"]
            );
        }
        println!(
            "merged        delivered {} recovered {} lost {} gaps {} hold-overflow {} requests {} at {}",
            st.delivered,
            st.recovered,
            st.lost + st.seq.resync_skipped,
            st.seq.gaps,
            st.hold_overflow,
            st.requests,
            fmt_rate(st.delivered as f64 / elapsed.as_secs_f64().max(1e-9)).replace("pps", "msg/s")
        );
        println!(
            "latency       send to book p50 {} p99 {} p99.9 {} max {} ({} messages)",
            fmt_ns(lat.p50),
            fmt_ns(lat.p99),
            fmt_ns(lat.p999),
            fmt_ns(lat.max),
            lat.count
        );
        print_book(&sink.book, a.top, a.watch.as_deref());
    }
    Ok(if st.lost + st.seq.resync_skipped > 0 {
        ExitCode::from(crate::exit::VERDICT)
    } else {
        ExitCode::SUCCESS
    })
}

fn offline(a: &RecvArgs, path: &std::path::Path) -> Result<ExitCode> {
    let mut sink = ItchSink::new(book_cfg(a), false);
    let r = replay_itch_file(path, &mut sink)?;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let summary = json!({
        "mode": "offline",
        "file": path.display().to_string(),
        "messages": r.messages,
        "bytes": r.bytes,
        "seconds": secs,
        "messages_per_second": r.messages as f64 / secs,
        "ns_per_message": secs * 1e9 / (r.messages.max(1) as f64),
        "peak_rss_kib": peak_rss_kib(),
        "itch_errors": { "unknown_type": sink.errors().unknown_type, "bad_length": sink.errors().bad_length, "empty": sink.errors().empty },
        "book": book_json(&sink.book, a.top),
    });
    if let Some(path) = &a.json {
        JsonOut::create(path)?.document(&summary)?;
    }
    if !a.json.as_deref().is_some_and(is_stdout) {
        println!(
            "file          {} ({} messages, {} bytes)",
            path.display(),
            r.messages,
            r.bytes
        );
        println!(
            "throughput    {} in {:.3} s, {:.1} ns/message (read, decode, book)",
            fmt_rate(r.messages as f64 / secs).replace("pps", "msg/s"),
            secs,
            secs * 1e9 / (r.messages.max(1) as f64)
        );
        println!(
            "memory        peak RSS {} MiB",
            peak_rss_kib().map_or("n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0))
        );
        let e = sink.errors();
        if e.total() > 0 {
            println!(
                "refused       unknown type {} bad length {} empty {}",
                e.unknown_type, e.bad_length, e.empty
            );
        }
        print_book(&sink.book, a.top, a.watch.as_deref());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--pcap`: the MoldUDP64 datagrams of a capture through the same handler
/// and book as a live line, timed by the capture's clock.
fn offline_capture(a: &RecvArgs, path: &std::path::Path) -> Result<ExitCode> {
    let mut reader = CaptureReader::open(path)?;
    let port = a.bind_a.map(|b| b.port()).filter(|&p| p != 0);
    let mut run = Offline::new(
        book_cfg(a),
        FeedConfig {
            start: a.from_start.then_some(1),
            hold_messages: a.hold,
            line_wait_ns: (a.line_wait_ms * 1e6) as u64,
            ..Default::default()
        },
    );
    let (mut datagrams, mut other_port) = (0u64, 0u64);
    let started = Instant::now();
    while let Some(u) = reader.next_udp()? {
        if port.is_some_and(|p| p != u.dst.port()) {
            other_port += 1;
            continue;
        }
        datagrams += 1;
        run.payload(u.payload, u.ts_ns);
    }
    let run = run.finish();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let st = run.handler.stats();
    let line = run.handler.line_stats(Line::A);
    let lost = st.lost + st.seq.resync_skipped;
    let summary = json!({
        "mode": "offline-capture",
        "file": path.display().to_string(),
        "datagrams": datagrams,
        "other_port": other_port,
        "session": run.handler.protocol().session().map(|s| s.to_string()),
        "refused": line.refused.total(),
        "delivered": st.delivered,
        "lost": lost,
        "gaps": st.seq.gaps,
        "duplicates": line.duplicates,
        "seconds": secs,
        "itch_errors": { "unknown_type": run.sink.errors().unknown_type, "bad_length": run.sink.errors().bad_length, "empty": run.sink.errors().empty },
        "book": book_json(&run.sink.book, a.top),
    });
    if let Some(path) = &a.json {
        JsonOut::create(path)?.document(&summary)?;
    }
    if !a.json.as_deref().is_some_and(is_stdout) {
        println!(
            "capture       {} ({datagrams} datagrams of the feed, {other_port} to other ports)",
            path.display()
        );
        println!(
            "merged        delivered {} lost {} gaps {} duplicates {} refused {} in {:.3} s",
            st.delivered,
            lost,
            st.seq.gaps,
            line.duplicates,
            line.refused.total(),
            secs
        );
        print_book(&run.sink.book, a.top, a.watch.as_deref());
    }
    Ok(if lost > 0 {
        ExitCode::from(crate::exit::VERDICT)
    } else {
        ExitCode::SUCCESS
    })
}

fn line_json(name: &str, s: &LineStats, rx: &dyn DynReceiver) -> Value {
    let refused: serde_json::Map<String, Value> = s
        .refused
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.name().to_owned(), json!(n)))
        .collect();
    json!({
        "line": name,
        "backend": if name == "recovery" { "udp".to_owned() } else { rx.mode().to_string() },
        "packets": s.packets,
        "messages": s.messages,
        "first_arrivals": s.first_arrivals,
        "only_here": s.only_here,
        "duplicates": s.duplicates,
        "gaps": s.seq.gaps,
        "missing": s.seq.missing,
        "refused": s.refused.total(),
        "refused_by_reason": refused,
        "kernel_drops": if name == "recovery" { None } else { rx.stats().kernel_drops },
    })
}

fn price(p: u32) -> String {
    format!("{}.{:04}", p / 10_000, p % 10_000)
}

fn side(l: Option<Level>) -> String {
    l.map_or("-".into(), |l| format!("{} x {}", price(l.price), l.shares))
}

fn watch_line(book: &OrderBook, symbol: &str) -> String {
    match book.locate_of(symbol) {
        Some(l) => {
            let b = book.bbo(l);
            format!("{symbol} {} | {}", side(b.bid), side(b.ask))
        }
        None => format!("{symbol} (not in the directory yet)"),
    }
}

fn ranked(book: &OrderBook, top: usize) -> Vec<(u16, &zc_feed::book::Instrument)> {
    let mut v: Vec<_> = book.instruments().collect();
    v.sort_by_key(|(l, i)| (std::cmp::Reverse(i.updates), *l));
    if top > 0 {
        v.truncate(top);
    }
    v
}

fn book_json(book: &OrderBook, top: usize) -> Value {
    let s = book.stats();
    json!({
        "trusted": book.trusted(),
        "instruments": book.named_instruments(),
        "orders": book.order_count(),
        "lost": book.lost(),
        "unknown_order": s.unknown_order,
        "duplicate_order": s.duplicate_order,
        "overfill": s.overfill,
        "order_table_full": s.order_table_full,
        "locate_out_of_range": s.locate_out_of_range,
        "unnamed_instrument": s.unnamed_instrument,
        "digest": format!("{:016x}", book.digest()),
        "bbo": ranked(book, top).into_iter().map(|(l, i)| {
            let b = i.bbo();
            json!({
                "locate": l,
                "symbol": i.symbol(),
                "bid": b.bid.map(|x| x.price), "bid_shares": b.bid.map(|x| x.shares),
                "ask": b.ask.map(|x| x.price), "ask_shares": b.ask.map(|x| x.shares),
                "trades": i.trades, "volume": i.volume,
                "trusted": book.instrument_trusted(l),
            })
        }).collect::<Vec<_>>(),
    })
}

fn print_book(book: &OrderBook, top: usize, watch: Option<&str>) {
    let s = book.stats();
    println!(
        "book          {} instruments, {} live orders, {} (unknown orders {}, lost {}), digest {:016x}",
        book.named_instruments(),
        book.order_count(),
        if book.trusted() { "trusted" } else { "NOT trusted" },
        s.unknown_order,
        book.lost(),
        book.digest()
    );
    if let Some(w) = watch {
        println!("watch         {}", watch_line(book, w));
    }
    for (l, i) in ranked(book, top) {
        let b = i.bbo();
        println!(
            "  {:<8} bid {:<22} ask {:<22} trades {} volume {}",
            i.symbol().map_or_else(|| format!("#{l}"), str::to_owned),
            side(b.bid),
            side(b.ask),
            i.trades,
            i.volume
        );
    }
}

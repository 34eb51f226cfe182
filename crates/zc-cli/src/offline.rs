//! `zc recv --pcap FILE`: the market-data handler over a capture, without a
//! network. The summary is the live one: messages (at the offline rate),
//! gaps, duplicates, and latency when the capture says how to get back to
//! the senders' clock (zc's pcapng files carry the offset).

use crate::json::{text, JsonOut};
use crate::recv::{print_summary, write_json_summary, RecvArgs, RxRun};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use zc_capture::CaptureReader;
use zc_core::backend::{DataPath, Datagram, Mode, RxStats};
use zc_core::handler::{HandlerConfig, MarketDataHandler};
use zc_core::sys::monotonic_ns;
use zc_core::Result;
use zc_os::cpu::thread_cpu_ns;

/// Datagrams between two looks at Ctrl-C.
const STOP_CHECK_EVERY: u64 = 1 << 16;

pub fn run(a: &RecvArgs, path: &Path) -> Result<ExitCode> {
    let stop = crate::stop_flag();
    let mut reader = CaptureReader::open(path)?;
    let port = a.bind.port();
    let mut h = MarketDataHandler::new(HandlerConfig {
        feed_port: (port != 0).then_some(port),
        ..Default::default()
    });
    let offset = reader.clock_offset_ns();
    eprintln!(
        "zc recv: offline over {} ({}), feed port {}",
        path.display(),
        reader.format().extension(),
        if port == 0 {
            "any".into()
        } else {
            port.to_string()
        }
    );
    let cpu0 = thread_cpu_ns();
    let start = monotonic_ns();
    let mut n = 0u64;
    let result = loop {
        if a.count.is_some_and(|c| h.messages() >= c)
            || (n % STOP_CHECK_EVERY == 0 && stop.load(Ordering::Relaxed))
        {
            break Ok(());
        }
        match reader.next_udp() {
            Ok(Some(u)) => {
                n += 1;
                let d = Datagram {
                    payload: u.payload,
                    src: SocketAddr::V4(u.src),
                    dst: SocketAddr::V4(u.dst),
                    rx_timestamp: None,
                };
                // Capture time on the senders' clock, when the file says how;
                // otherwise 0, which the latency recorder counts as clock skew.
                let now = offset.map_or(0, |o| u.ts_ns.saturating_add_signed(-o));
                h.on_datagram(&d, now);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let end = monotonic_ns();
    let stats = reader.stats();
    let mut mode = Mode::new("pcap", DataPath::InProcess, 1);
    mode.details.push(path.display().to_string());
    let run = RxRun::collect_offline(
        &h,
        mode,
        RxStats {
            datagrams: stats.udp,
            malformed: stats.skipped_total(),
            ..Default::default()
        },
        (start, end),
        thread_cpu_ns() - cpu0,
    );
    if let Some(path) = &a.json {
        write_json_summary(&mut JsonOut::create(path)?, &run)?;
    }
    let code = print_summary(&run, a.json.as_deref());
    let skipped = stats
        .skipped
        .iter()
        .map(|(r, n)| format!(" {r} {n}"))
        .collect::<String>();
    text!(
        a.json.as_deref(),
        "offline      {} records, {} UDP ({} synthesized by zc), skipped {}{}",
        stats.records,
        stats.udp,
        stats.synthesized,
        stats.skipped_total(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(":{skipped}")
        }
    );
    if stats.udp_checksum_wrong > 0 {
        println!(
            "checksums    {} datagrams with a UDP checksum that does not verify, read all the same \
             (a capture on the sending host holds them unfinished)",
            stats.udp_checksum_wrong
        );
    }
    if offset.is_none() {
        text!(a.json.as_deref(), "latency      n/a: this capture does not carry zc's clock offset (zc's pcapng files do)");
    }
    result?;
    Ok(code)
}

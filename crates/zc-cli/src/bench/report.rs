//! The report of `zc bench`: the comparison tables on the terminal, and the
//! JSON (every figure of every repetition), Markdown and SVG files.

use super::args::{row_backend, BenchArgs};
use super::itch::ItchRep;
use super::run::{BackendResult, LatencyAt, Rep};
use crate::json::{is_stdout, text, JsonOut};
use crate::report::{fmt_rate, table};
use crate::svg::{self, Series};
use serde::Serialize;
use zc_core::measure::Spread;
use zc_core::{Error, Result};

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
}

#[derive(Serialize)]
struct BenchJson<'a> {
    machine: Machine,
    generator: String,
    /// The generator of the fixed-rate, zero-loss search and latency runs.
    paced_generator: String,
    payload_bytes: usize,
    batch: usize,
    reps: usize,
    backends: &'a [BackendResult],
}

fn spread(r: &BackendResult, f: impl Fn(&Rep) -> f64) -> Spread {
    Spread::of(r.reps.iter().map(f))
}

/// The report, in the order it is printed.
struct Report {
    /// The tables.
    sections: Vec<Section>,
    /// Each backend against the first: receive rate and CPU per message.
    ratios: Vec<String>,
    /// The mode each backend ran in, one line each.
    modes: Vec<String>,
}

/// A titled table of the report.
struct Section {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// The report: the comparison table, latency at fractions of the zero-loss
/// rate, the ratios to the first backend, and the modes.
fn sections(a: &BenchArgs, results: &[BackendResult]) -> Report {
    let mpps = |x: f64| format!("{:.3}", x / 1e6);
    let us = |x: f64| format!("{:.1}", x / 1e3);
    let int = |x: f64| format!("{x:.0}");
    let mut out = vec![Section {
        title: format!(
            "{} repetitions, {}-byte payloads, batch {}, generator {}; latency and CPU at {} offered",
            a.reps,
            a.payload,
            a.batch,
            a.generators(),
            fmt_rate(a.fixed_rate)
        ),
        header: [
            "backend",
            "max rx Mpps",
            "zero-loss Mpps",
            "drain Mpps",
            "CPU ns/msg @max",
            "CPU ns/msg @fixed",
            "all-CPU ns/msg @fixed",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "lost",
        ]
        .map(String::from)
        .to_vec(),
        rows: results
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    spread(r, |x| x.max_rate_pps).show(mpps),
                    spread(r, |x| x.zero_loss_pps).show(mpps),
                    spread(r, |x| x.drain_pps).show(mpps),
                    spread(r, |x| x.max_cpu_ns_per_msg).show(int),
                    spread(r, |x| x.cpu_ns_per_msg).show(int),
                    spread(r, |x| x.total_cpu_ns_per_msg).show(int),
                    spread(r, |x| x.p50_ns as f64).show(us),
                    spread(r, |x| x.p99_ns as f64).show(us),
                    spread(r, |x| x.p999_ns as f64).show(us),
                    spread(r, |x| x.max_ns as f64).show(us),
                    spread(r, |x| x.fixed_run_lost as f64).show(int),
                ]
            })
            .collect(),
    }];
    if !a.latency_at.is_empty() {
        out.push(Section {
            title: "latency from intended send time (no coordinated omission), medians".into(),
            header: std::iter::once("backend".to_owned())
                .chain(
                    a.latency_at
                        .iter()
                        .map(|p| format!("{p}% of zero-loss: p50 / p99 µs")),
                )
                .collect(),
            rows: results
                .iter()
                .map(|r| {
                    std::iter::once(r.name.clone())
                        .chain(a.latency_at.iter().map(|&p| {
                            let at = |f: fn(&LatencyAt) -> u64| {
                                Spread::of(r.reps.iter().filter_map(|x| {
                                    x.latency_at
                                        .iter()
                                        .find(|l| l.percent_of_zero_loss == p)
                                        .map(|l| f(l) as f64)
                                }))
                            };
                            let (p50, p99) = (at(|l| l.p50_ns), at(|l| l.p99_ns));
                            format!("{:.1} / {:.1}", p50.median / 1e3, p99.median / 1e3)
                        }))
                        .collect()
                })
                .collect(),
        });
    }
    if a.itch {
        let itch = |r: &BackendResult, f: fn(&ItchRep) -> f64| {
            Spread::of(r.reps.iter().filter_map(|x| x.itch.as_ref().map(f)))
        };
        out.push(Section {
            title: format!(
                "ITCH 5.0 over MoldUDP64 to the order book: {} messages at {}, {} a packet; \
                 latency from each message's intended send time to its book update",
                a.itch_messages,
                fmt_rate(a.itch_rate).replace("pps", "msg/s"),
                a.itch_per_packet
            ),
            header: [
                "backend",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
                "max µs",
                "delivered",
                "lost",
            ]
            .map(String::from)
            .to_vec(),
            rows: results
                .iter()
                .filter(|r| r.reps.iter().any(|x| x.itch.is_some()))
                .map(|r| {
                    vec![
                        r.name.clone(),
                        itch(r, |x| x.p50_ns as f64).show(us),
                        itch(r, |x| x.p99_ns as f64).show(us),
                        itch(r, |x| x.p999_ns as f64).show(us),
                        itch(r, |x| x.max_ns as f64).show(us),
                        itch(r, |x| x.delivered as f64).show(int),
                        itch(r, |x| x.lost as f64).show(int),
                    ]
                })
                .collect(),
        });
    }
    if a.stack_latency {
        out.push(Section {
            title: format!(
                "stack latency at {} offered: receive timestamp (kernel's, or XDP program's) -> application, medians \
                 (one-way p50 beside it; n/a: the backend gives no receive timestamps)",
                fmt_rate(a.fixed_rate)
            ),
            header: ["backend", "stack p50 µs", "stack p99 µs", "one-way p50 µs"]
                .map(String::from)
                .to_vec(),
            rows: results
                .iter()
                .map(|r| {
                    let stack = |f: fn(&Rep) -> Option<u64>| {
                        let s = Spread::of(r.reps.iter().filter_map(|x| f(x).map(|v| v as f64)));
                        if r.reps.iter().any(|x| f(x).is_some()) {
                            us(s.median)
                        } else {
                            "n/a".to_owned()
                        }
                    };
                    vec![
                        r.name.clone(),
                        stack(|x| x.stack_p50_ns),
                        stack(|x| x.stack_p99_ns),
                        spread(r, |x| x.p50_ns as f64).show(us),
                    ]
                })
                .collect(),
        });
    }
    let mut ratios = Vec::new();
    if let Some(first) = results.first() {
        for r in results.iter().skip(1) {
            // A `+capture` row is compared with its own backend without
            // capture, when that is in the run; every other row with the first.
            let own = row_backend(&r.name);
            let base = match own {
                (b, true) => results.iter().find(|x| x.name == b).unwrap_or(first),
                _ => first,
            };
            if std::ptr::eq(base, r) {
                continue;
            }
            let ratio = |f: fn(&Rep) -> f64| {
                let b = spread(base, f).median;
                let x = spread(r, f).median;
                if b > 0.0 {
                    format!("{:.2}x", x / b)
                } else {
                    "n/a".to_owned()
                }
            };
            ratios.push(format!(
                "{} / {}: {} max receive rate, {} drain rate, {} receiver CPU per message at max rate, {} all-CPU per message at the fixed rate",
                r.name,
                base.name,
                ratio(|x| x.max_rate_pps),
                ratio(|x| x.drain_pps),
                ratio(|x| x.max_cpu_ns_per_msg),
                ratio(|x| x.total_cpu_ns_per_msg),
            ));
        }
    }
    let w = results.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let modes = results
        .iter()
        .map(|r| format!("{:<w$}  {}", r.name, r.mode))
        .collect();
    Report {
        sections: out,
        ratios,
        modes,
    }
}

/// Prints the report's tables, ratios and modes.
pub fn print_table(a: &BenchArgs, results: &[BackendResult]) {
    let Report {
        sections,
        ratios,
        modes,
    } = sections(a, results);
    for s in &sections {
        let header: Vec<&str> = s.header.iter().map(String::as_str).collect();
        text!(
            a.json.as_deref(),
            "\n{}:\n{}",
            s.title,
            table(&header, &s.rows)
        );
    }
    for r in &ratios {
        text!(a.json.as_deref(), "{r}");
    }
    text!(a.json.as_deref(), "\nmodes:");
    for m in &modes {
        text!(a.json.as_deref(), "  {m}");
    }
}

/// The report as Markdown, with the machine and the command that produced it.
fn markdown(a: &BenchArgs, results: &[BackendResult], m: &Machine) -> String {
    let Report {
        sections,
        ratios,
        modes,
    } = sections(a, results);
    let command: Vec<String> = std::env::args().collect();
    let mut md = format!(
        "Machine: {} ({} cores), Linux {}.\n\nCommand: `{}`\n",
        m.cpu,
        m.cores,
        m.kernel,
        command.join(" ")
    );
    for s in &sections {
        md.push_str(&format!(
            "\n{}:\n\n| {} |\n|{}\n",
            s.title,
            s.header.join(" | "),
            "---|".repeat(s.header.len())
        ));
        for r in &s.rows {
            md.push_str(&format!("| {} |\n", r.join(" | ")));
        }
    }
    md.push('\n');
    for r in &ratios {
        md.push_str(&format!("- {r}\n"));
    }
    md.push_str("\nModes:\n\n```\n");
    for m in &modes {
        md.push_str(m);
        md.push('\n');
    }
    md.push_str("```\n");
    md
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = zc_os::kernel::release_string().unwrap_or_default();
    Machine {
        cpu,
        cores: zc_core::sys::online_cpus(),
        kernel,
    }
}

/// Writes the JSON, Markdown and SVG outputs asked for.
pub fn write_outputs(a: &BenchArgs, results: &[BackendResult]) -> Result<()> {
    let m = machine();
    if let Some(path) = &a.json {
        let out = BenchJson {
            machine: machine(),
            generator: a.generator.to_string(),
            paced_generator: a.paced_generator().to_string(),
            payload_bytes: a.payload,
            batch: a.batch,
            reps: a.reps,
            backends: results,
        };
        JsonOut::create(path)?.document(&out)?;
        if !is_stdout(path) {
            println!("JSON: {}", path.display());
        }
    }
    if let Some(path) = &a.markdown {
        write_file(path, &markdown(a, results, &m))?;
        text!(a.json.as_deref(), "Markdown: {}", path.display());
    }
    let series: Vec<Series> = results
        .iter()
        .map(|r| {
            let latency = r.latency.as_ref().map_or_else(Vec::new, |h| {
                [
                    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999,
                ]
                .into_iter()
                .map(|p| (p, h.value_at_quantile(p / 100.0)))
                .collect()
            });
            Series {
                name: r.name.clone(),
                latency,
                max_rate: spread(r, |x| x.max_rate_pps).parts(),
                zero_loss: spread(r, |x| x.zero_loss_pps).parts(),
            }
        })
        .collect();
    let subtitle = format!(
        "{} ({} cores), Linux {}; veth testbed, {}-byte payloads, {} reps, latency at {}",
        m.cpu,
        m.cores,
        m.kernel,
        a.payload,
        a.reps,
        fmt_rate(a.fixed_rate)
    );
    write_file(
        &a.svg,
        &svg::render("zc bench: backends side by side", &subtitle, &series),
    )?;
    text!(a.json.as_deref(), "chart: {}", a.svg.display());
    Ok(())
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

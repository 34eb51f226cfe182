//! The `zc bench` chart: latency distribution per backend (left) and receive
//! rates with their min–max range (right), as a self-contained SVG.

use std::fmt::Write;

/// One backend's data for the chart.
pub struct Series {
    /// Backend name.
    pub name: String,
    /// (percentile 0–100, latency ns) points, ascending.
    pub latency: Vec<(f64, u64)>,
    /// Max receive rate: median, min, max (pps).
    pub max_rate: (f64, f64, f64),
    /// Highest zero-loss rate: median, min, max (pps).
    pub zero_loss: (f64, f64, f64),
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#7f7f7f",
];
const W: f64 = 1100.0;
const H: f64 = 460.0;

/// x position of a percentile on the "nines" scale: 0 → 0, 90 → 1, 99 → 2, 99.9 → 3…
fn nines(p: f64) -> f64 {
    -(1.0 - (p / 100.0).min(0.99999)).log10()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart; `title` goes on top, `subtitle` (machine, settings) under it.
pub fn render(title: &str, subtitle: &str, series: &[Series]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="24" font-size="16" font-weight="bold">{}</text>
<text x="20" y="42" fill="#555">{}</text>
"##,
        esc(title),
        esc(subtitle)
    );
    latency_panel(&mut s, series, 80.0, 70.0, 500.0, 320.0);
    rate_panel(&mut s, series, 680.0, 70.0, 390.0, 320.0);
    s.push_str("</svg>\n");
    s
}

fn latency_panel(s: &mut String, series: &[Series], x0: f64, y0: f64, w: f64, h: f64) {
    let max_ns = series
        .iter()
        .flat_map(|b| b.latency.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(1000);
    let min_ns = series
        .iter()
        .flat_map(|b| b.latency.iter().map(|p| p.1))
        .filter(|&v| v > 0)
        .min()
        .unwrap_or(100)
        .min(max_ns / 10)
        .max(1);
    let (lo, hi) = (
        (min_ns as f64).log10().floor(),
        (max_ns as f64).log10().ceil(),
    );
    let xmax = nines(99.999);
    let px = |p: f64| x0 + nines(p) / xmax * w;
    let py = |ns: u64| y0 + h - ((ns.max(1) as f64).log10() - lo) / (hi - lo).max(1.0) * h;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-weight="bold">One-way latency by percentile (at the fixed offered rate)</text>"#,
        x0,
        y0 - 10.0
    );
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##
    );
    for (p, label) in [
        (0.0, "0"),
        (90.0, "90"),
        (99.0, "99"),
        (99.9, "99.9"),
        (99.99, "99.99"),
        (99.999, "99.999"),
    ] {
        let x = px(p);
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="#eee"/><text x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
            y0 + h,
            y0 + h + 16.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        x0 + w / 2.0,
        y0 + h + 34.0
    );
    let mut e = lo as i32;
    while e <= hi as i32 {
        let ns = 10u64.pow(e as u32);
        let y = py(ns);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x0 + w,
            x0 - 6.0,
            y + 4.0,
            crate::report::fmt_ns(ns)
        );
        e += 1;
    }
    for (i, b) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = b
            .latency
            .iter()
            .map(|&(p, ns)| format!("{:.1},{:.1}", px(p), py(ns)))
            .collect();
        if !pts.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
        }
        let ly = y0 + 14.0 + i as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="12" height="4" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            x0 + 10.0,
            ly - 4.0,
            x0 + 28.0,
            ly,
            esc(&b.name)
        );
    }
}

fn rate_panel(s: &mut String, series: &[Series], x0: f64, y0: f64, w: f64, h: f64) {
    let top = series
        .iter()
        .map(|b| b.max_rate.2.max(b.zero_loss.2))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let py = |pps: f64| y0 + h - pps / top * h;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-weight="bold">Receive rate, Mpps (median, min–max)</text>"#,
        x0,
        y0 - 10.0
    );
    let _ = writeln!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##
    );
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{:.3}</text>"##,
            x0 + w,
            x0 - 6.0,
            y + 4.0,
            v / 1e6
        );
    }
    let n = series.len().max(1) as f64;
    let slot = w / n;
    let bar = (slot / 3.0).min(40.0);
    for (i, b) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let cx = x0 + slot * (i as f64 + 0.5);
        for (j, (m, lo, hi)) in [b.max_rate, b.zero_loss].into_iter().enumerate() {
            let x = cx - bar + j as f64 * bar;
            let opacity = if j == 0 { "1" } else { "0.45" };
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{c}" fill-opacity="{opacity}"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333"/>"##,
                py(m),
                bar - 2.0,
                (y0 + h - py(m)).max(0.0),
                x + bar / 2.0 - 1.0,
                py(lo),
                x + bar / 2.0 - 1.0,
                py(hi)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{cx:.1}" y="{}" text-anchor="middle">{}</text>"#,
            y0 + h + 16.0,
            esc(&b.name)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{x0}" y="{}" fill="#555">solid: max receive rate; pale: highest offered rate with zero loss</text>"##,
        y0 + h + 34.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_well_formed_svg_with_every_backend() {
        let series = vec![
            Series {
                name: "recvfrom".into(),
                latency: vec![(0.0, 2_000), (50.0, 5_000), (99.9, 90_000)],
                max_rate: (4e5, 3e5, 5e5),
                zero_loss: (2e5, 1e5, 3e5),
            },
            Series {
                name: "a<b".into(),
                latency: vec![],
                max_rate: (0.0, 0.0, 0.0),
                zero_loss: (0.0, 0.0, 0.0),
            },
        ];
        let svg = render("t", "s", &series);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("recvfrom") && svg.contains("a&lt;b"));
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
}

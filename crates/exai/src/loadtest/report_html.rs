//! The HTML report: one self-contained file (inline CSS, inline SVG drawn here; no scripts, no CDN) with latency
//! over time, the latency distribution, throughput, errors, server memory, and the tables and checks.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::report::Report;
use super::stats::Group;

const W: f64 = 820.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 36.0;
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac", "#e15759",
];
/// At most this many points in the scatter plot (evenly thinned beyond).
const MAX_POINTS: usize = 4_000;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chart's plotting area and scales.
struct Frame {
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn new(x_max: f64, y_max: f64) -> Self {
        Self {
            x_max: x_max.max(1e-9),
            y_max: y_max.max(1e-9),
        }
    }
    fn x(&self, v: f64) -> f64 {
        LEFT + (v / self.x_max).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }
    fn y(&self, v: f64) -> f64 {
        H - BOTTOM - (v / self.y_max).clamp(0.0, 1.0) * (H - TOP - BOTTOM)
    }

    /// Opens an SVG with axes, five ticks per axis, labels and a title.
    fn open(&self, svg: &mut String, title: &str, x_label: &str, y_label: &str) {
        let _ = write!(
            svg,
            r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><text x="{LEFT}" y="18" class="title">{t}</text>"#,
            t = esc(title)
        );
        let (x0, y0) = (LEFT, H - BOTTOM);
        let _ = write!(
            svg,
            r##"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="#888"/><line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{y0}" stroke="#888"/>"##,
            W - RIGHT
        );
        for i in 0..=5 {
            let (xv, yv) = (self.x_max * i as f64 / 5.0, self.y_max * i as f64 / 5.0);
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text><line x1="{x0}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/>"##,
                self.x(xv),
                y0 + 14.0,
                num(xv),
                x0 - 6.0,
                self.y(yv) + 4.0,
                num(yv),
                self.y(yv),
                W - RIGHT,
                self.y(yv)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="axis" text-anchor="middle">{}</text><text x="14" y="{:.1}" class="axis" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            H - 4.0,
            esc(x_label),
            (TOP + H - BOTTOM) / 2.0,
            (TOP + H - BOTTOM) / 2.0,
            esc(y_label)
        );
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn legend(svg: &mut String, items: &[(String, &str)]) {
    // Right of the title, wrapping onto a second row (the plot starts below both).
    let start = LEFT + 420.0;
    let (mut x, mut y) = (start, 6.0);
    for (name, color) in items {
        let width = 24.0 + name.len() as f64 * 7.0;
        if x + width > W - RIGHT && x > start {
            (x, y) = (start, y + 14.0);
        }
        let _ = write!(
            svg,
            r#"<rect x="{x:.0}" y="{y:.0}" width="10" height="10" fill="{color}"/><text x="{:.0}" y="{:.0}" class="tick">{}</text>"#,
            x + 14.0,
            y + 9.0,
            esc(name)
        );
        x += width;
    }
}

fn latency_over_time(r: &Report, colors: &BTreeMap<&str, &str>) -> String {
    let mut svg = String::new();
    let y_max = r.samples.iter().map(|s| s.latency_ms()).fold(0.0, f64::max) * 1.05;
    let frame = Frame::new(r.elapsed_secs, y_max);
    frame.open(
        &mut svg,
        "Latency over time (each call; ✕ = error)",
        "seconds since start",
        "latency (ms)",
    );
    let stride = r.samples.len().div_ceil(MAX_POINTS).max(1);
    for s in r.samples.iter().step_by(stride) {
        let (x, y) = (frame.x(s.end_ms as f64 / 1000.0), frame.y(s.latency_ms()));
        let color = colors.get(s.tool.as_str()).copied().unwrap_or("#333");
        if s.error.is_some() {
            let _ = write!(
                svg,
                r##"<path d="M{:.1} {:.1}l5 5m0 -5l-5 5" stroke="#e15759" stroke-width="1.2"/>"##,
                x - 2.5,
                y - 2.5
            );
        } else {
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="1.8" fill="{color}" fill-opacity="0.7"/>"#
            );
        }
    }
    let items: Vec<(String, &str)> = colors.iter().map(|(t, c)| (t.to_string(), *c)).collect();
    legend(&mut svg, &items);
    svg.push_str("</svg>");
    svg
}

fn distribution(r: &Report) -> String {
    let mut svg = String::new();
    let values: Vec<f64> = r.samples.iter().map(|s| s.latency_ms().max(0.001)).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    const BINS: usize = 40;
    let (llo, lhi) = (lo.log10(), (hi * 1.0001).log10().max(lo.log10() + 1e-6));
    let mut counts = [0u64; BINS];
    for v in &values {
        let i = (((v.log10() - llo) / (lhi - llo)) * BINS as f64) as usize;
        counts[i.min(BINS - 1)] += 1;
    }
    let frame = Frame::new(BINS as f64, counts.iter().copied().max().unwrap_or(1) as f64 * 1.05);
    frame.open(
        &mut svg,
        "Latency distribution (log-spaced bins)",
        "latency (ms)",
        "calls",
    );
    for (i, count) in counts.iter().enumerate() {
        let (x0, x1) = (frame.x(i as f64), frame.x(i as f64 + 1.0));
        let y = frame.y(*count as f64);
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#4e79a7"><title>{} – {} ms: {count}</title></rect>"##,
            (x1 - x0 - 1.0).max(0.5),
            H - BOTTOM - y,
            num(10f64.powf(llo + (lhi - llo) * i as f64 / BINS as f64)),
            num(10f64.powf(llo + (lhi - llo) * (i + 1) as f64 / BINS as f64))
        );
    }
    // Relabel the x axis in milliseconds (the frame's ticks are bin numbers).
    svg.push_str(&format!(
        r##"<rect x="{}" y="{}" width="{}" height="16" fill="#fff"/>"##,
        LEFT - 20.0,
        H - BOTTOM + 2.0,
        W - LEFT + 20.0
    ));
    for i in 0..=5 {
        let bin = BINS as f64 * i as f64 / 5.0;
        let ms = 10f64.powf(llo + (lhi - llo) * bin / BINS as f64);
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            frame.x(bin),
            H - BOTTOM + 14.0,
            num(ms)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn throughput(r: &Report) -> String {
    let mut svg = String::new();
    let y_max = r.timeline.iter().map(|s| s.calls).max().unwrap_or(1) as f64 * 1.1;
    let frame = Frame::new(r.timeline.len().max(1) as f64, y_max);
    frame.open(
        &mut svg,
        "Throughput and errors (calls finished per second)",
        "seconds since start",
        "calls / s",
    );
    let line = |pick: &dyn Fn(&super::stats::Second) -> f64| {
        r.timeline
            .iter()
            .map(|s| format!("{:.1},{:.1}", frame.x(s.t as f64 + 0.5), frame.y(pick(s))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = write!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#4e79a7" stroke-width="1.8"/><polyline points="{}" fill="none" stroke="#e15759" stroke-width="1.5"/>"##,
        line(&|s| s.calls as f64),
        line(&|s| s.errors as f64)
    );
    legend(
        &mut svg,
        &[("calls".to_owned(), "#4e79a7"), ("errors".to_owned(), "#e15759")],
    );
    svg.push_str("</svg>");
    svg
}

fn errors(r: &Report) -> String {
    let kinds = &r.totals.error_kinds;
    if kinds.is_empty() {
        return "<p class=\"ok\">No errors.</p>".to_owned();
    }
    let mut svg = String::new();
    let h = 40.0 + kinds.len() as f64 * 24.0;
    let max = kinds.values().copied().max().unwrap_or(1) as f64;
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="Errors by kind"><text x="{LEFT}" y="18" class="title">Errors by kind</text>"#
    );
    for (i, (kind, count)) in kinds.iter().enumerate() {
        let y = 30.0 + i as f64 * 24.0;
        let width = (*count as f64 / max) * (W - 260.0);
        let _ = write!(
            svg,
            r##"<text x="150" y="{:.0}" class="tick" text-anchor="end">{}</text><rect x="160" y="{y:.0}" width="{width:.1}" height="16" fill="#e15759"/><text x="{:.1}" y="{:.0}" class="tick">{count}</text>"##,
            y + 12.0,
            esc(kind),
            166.0 + width,
            y + 12.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn memory(r: &Report) -> String {
    let Some(s) = &r.stability else {
        return String::new();
    };
    let mib = 1024.0 * 1024.0;
    let mut svg = String::new();
    let frame = Frame::new(r.elapsed_secs.max(1.0), s.memory_peak_bytes / mib * 1.1);
    frame.open(
        &mut svg,
        "Server resident memory (process_resident_memory_bytes)",
        "seconds since start",
        "MiB",
    );
    let points: Vec<String> = s
        .memory
        .iter()
        .map(|(t, m)| format!("{:.1},{:.1}", frame.x(*t), frame.y(m / mib)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#59a14f" stroke-width="1.8"/></svg>"##,
        points.join(" ")
    );
    svg
}

fn group_row(out: &mut String, name: &str, g: &Group) {
    let l = &g.latency_ms;
    let kinds: Vec<String> = g.error_kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td>\
         <td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.2}</td><td>{}</td></tr>",
        esc(name),
        g.calls,
        g.successes,
        g.fallbacks,
        g.errors,
        g.timeouts,
        l.p50,
        l.p90,
        l.p95,
        l.p99,
        l.max,
        g.calls_per_sec,
        esc(&kinds.join(", "))
    );
}

const HEAD: &str = "<tr><th></th><th>calls</th><th>ok</th><th>fallbacks</th><th>errors</th><th>timeouts</th>\
<th>p50 ms</th><th>p90 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>calls/s</th><th>errors by kind</th></tr>";

pub fn render(r: &Report) -> String {
    let tools: Vec<&str> = r.per_tool.keys().map(String::as_str).collect();
    let colors: BTreeMap<&str, &str> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, PALETTE[i % PALETTE.len()]))
        .collect();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>exai loadtest: {scenario}</title><style>\
         body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}.ok{{color:#2a7d2a}}.fail{{color:#c0262d;font-weight:bold}}\
         svg{{display:block;margin:8px 0 20px;background:#fff}}.title{{font-weight:600;font-size:13px}}\
         .tick{{font-size:11px;fill:#555}}.axis{{font-size:12px;fill:#333}}</style></head><body>\
         <h1>exai loadtest: {scenario} <span class=\"{cls}\">{verdict}</span></h1>\
         <p>exai {version} · target {target} · transport {transport:?} · {sessions} sessions · {elapsed:.1} s · \
         latency profile {latency:?} · prompt {bytes} bytes · stream {stream}</p>",
        scenario = r.scenario,
        cls = if r.passed { "ok" } else { "fail" },
        verdict = if r.passed { "PASSED" } else { "FAILED" },
        version = r.exai_version,
        target = esc(&r.target),
        transport = r.plan.transport,
        sessions = r.plan.sessions,
        elapsed = r.elapsed_secs,
        latency = r.plan.latency,
        bytes = r.plan.prompt_bytes,
        stream = r.plan.stream,
    );
    html.push_str("<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>detail</th></tr>");
    for c in &r.checks {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(&c.name),
            if c.ok { "ok" } else { "fail" },
            if c.ok { "ok" } else { "FAIL" },
            esc(&c.detail)
        );
    }
    html.push_str("</table><h2>Per tool</h2><table>");
    html.push_str(HEAD);
    for (tool, g) in &r.per_tool {
        group_row(&mut html, tool, g);
    }
    group_row(&mut html, "TOTAL", &r.totals);
    html.push_str("</table><h2>Charts</h2>");
    html.push_str(&latency_over_time(r, &colors));
    html.push_str(&distribution(r));
    html.push_str(&throughput(r));
    html.push_str(&errors(r));
    html.push_str(&memory(r));
    if let Some(p) = &r.probe {
        let _ = write!(
            html,
            "<h2>Cross-session blocking</h2><p>A probe session called <code>version</code> every 200 ms: {} calls, {} \
             errors, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; <b>{}</b> delayed past {} ms.</p>",
            p.calls,
            p.errors,
            p.latency_ms.p50,
            p.latency_ms.p95,
            p.latency_ms.p99,
            p.latency_ms.max,
            p.delayed,
            p.threshold_ms
        );
    }
    if !r.permit_waits.is_empty() {
        html.push_str("<h2>Permit waits</h2><table><tr><th>limit</th><th>acquisitions</th><th>mean ms</th><th>p95 ≤ ms</th><th>refused</th></tr>");
        for w in &r.permit_waits {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                esc(&w.limit),
                w.acquisitions,
                w.mean_ms,
                w.p95_at_most_ms,
                w.refused
            );
        }
        html.push_str("</table>");
    }
    html.push_str("<h2>Per session</h2><table>");
    html.push_str(HEAD);
    for (i, g) in r.per_session.iter().enumerate() {
        group_row(&mut html, &format!("session {i}"), g);
    }
    html.push_str("</table></body></html>\n");
    html
}

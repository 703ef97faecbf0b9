//! The summary table printed after a run: per tool and in total (calls, outcomes, latency percentiles,
//! throughput), then the probe, permit waits, stability and every check.

use std::fmt::Write;

use super::report::{ReplicaRun, Report};
use super::stats::Group;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let plan = &report.plan;
    let _ = writeln!(
        out,
        "exai loadtest: scenario {} over {:?} against {} — {} sessions, {:.1} s, latency profile {:?}",
        report.scenario, plan.transport, report.target, plan.sessions, report.elapsed_secs, plan.latency
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>7} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "tool", "calls", "ok", "fallbk", "errors", "tmout", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms", "calls/s"
    );
    let row = |out: &mut String, name: &str, g: &Group| {
        let l = &g.latency_ms;
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>7} {:>6} {:>6} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.2}",
            name,
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
            g.calls_per_sec
        );
    };
    for (tool, g) in &report.per_tool {
        row(&mut out, tool, g);
    }
    row(&mut out, "TOTAL", &report.totals);
    if !report.totals.error_kinds.is_empty() {
        let kinds: Vec<String> = report
            .totals
            .error_kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(out, "errors by kind: {}", kinds.join(", "));
    }
    if report.abandoned > 0 {
        let _ = writeln!(
            out,
            "abandoned (still running at the end of the grace period): {}",
            report.abandoned
        );
    }
    if report.sessions_renewed > 0 {
        let _ = writeln!(
            out,
            "HTTP sessions the server forgot and the client started again: {}",
            report.sessions_renewed
        );
    }
    if let Some(p) = &report.probe {
        let _ = writeln!(
            out,
            "probe (`version` in its own session): {} calls, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             {} delayed past {} ms by other sessions' work",
            p.calls, p.errors, p.latency_ms.p50, p.latency_ms.p99, p.latency_ms.max, p.delayed, p.threshold_ms
        );
    }
    for w in report
        .permit_waits
        .iter()
        .filter(|w| w.acquisitions > 0 || w.refused > 0)
    {
        let _ = writeln!(
            out,
            "permit wait, {} limit: {} acquisitions, mean {:.2} ms, p95 ≤ {} ms, {} refused",
            w.limit, w.acquisitions, w.mean_ms, w.p95_at_most_ms, w.refused
        );
    }
    if let Some(s) = &report.stability {
        let mib = 1024.0 * 1024.0;
        let _ = writeln!(
            out,
            "server memory: {:.1} MiB at start, {:.1} MiB at end, peak {:.1} MiB ({:+.1} %, {}); unexpected \
             disconnects: {}",
            s.memory_start_bytes / mib,
            s.memory_end_bytes / mib,
            s.memory_peak_bytes / mib,
            s.memory_growth_pct,
            if s.memory_flat { "flat" } else { "GROWING" },
            s.unexpected_disconnects
        );
    }
    let _ = writeln!(out);
    for c in &report.checks {
        let _ = writeln!(out, "[{}] {}: {}", if c.ok { "ok" } else { "FAIL" }, c.name, c.detail);
    }
    let _ = writeln!(out, "{}", if report.passed { "PASSED" } else { "FAILED" });
    out
}

/// The `--replicas` comparison: one row per run.
pub fn replicas(runs: &[ReplicaRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>8} {:>7} {:>7} {:>6} {:>8} {:>9} {:>9} {:>9}  {:<6}",
        "replicas", "calls", "ok", "errors", "calls/s", "p50 ms", "p95 ms", "p99 ms", "store"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:>8} {:>7} {:>7} {:>6} {:>8.2} {:>9.1} {:>9.1} {:>9.1}  {}{}",
            r.replicas,
            r.calls,
            r.successes,
            r.errors,
            r.calls_per_sec,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.store,
            if r.passed { "" } else { " (FAILED)" }
        );
    }
    out
}

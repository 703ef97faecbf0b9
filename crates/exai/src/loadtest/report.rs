//! The run's report: everything measured and checked, serialised as JSON (`loadtest-<scenario>-<time>.json`)
//! and rendered as HTML by [`super::report_html`]. `passed` is false when any check failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::scenario::Plan;
use super::scrape::PermitWait;
use super::stats::{Group, Latency, Sample, Second};

/// One pass/fail verdict with what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok,
            detail: detail.into(),
        }
    }
}

/// The cross-session probe: a `version` call every few hundred ms in a session of its own.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub calls: u64,
    pub errors: u64,
    pub latency_ms: Latency,
    pub threshold_ms: u64,
    /// Probe calls slower than the threshold: delayed by other sessions' work.
    pub delayed: u64,
}

/// Memory and connection stability (every run samples memory; the `soak` scenario judges it).
#[derive(Debug, Clone, Serialize)]
pub struct Stability {
    /// `(seconds since start, resident bytes)` from `process_resident_memory_bytes`.
    pub memory: Vec<(f64, f64)>,
    pub memory_start_bytes: f64,
    pub memory_end_bytes: f64,
    pub memory_peak_bytes: f64,
    /// Mean of the last quarter of samples over the mean of the second quarter (after warm-up), in percent.
    pub memory_growth_pct: f64,
    pub memory_flat: bool,
    /// WebSocket connections that dropped without the client asking (each session holds one for the run).
    pub unexpected_disconnects: u32,
}

/// Circuit-breaker activity seen by sampling `/metrics` during the run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Circuits {
    /// Seconds since start when a circuit was first seen open, and when all were last seen closed again.
    pub first_open_secs: Option<f64>,
    pub all_closed_secs: Option<f64>,
    /// `exai_circuit_opened_total` rise over the run.
    pub opened: f64,
    /// Circuits open at the end, by target.
    pub open_at_end: Vec<String>,
}

/// One run of `--replicas`: its totals, for the side-by-side comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaRun {
    pub replicas: usize,
    pub calls: u64,
    pub successes: u64,
    pub errors: u64,
    pub calls_per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// `postgres` (shared) or `sqlite` (one store per replica).
    pub store: &'static str,
    pub passed: bool,
}

impl ReplicaRun {
    pub fn of(replicas: usize, store: &'static str, report: &Report) -> Self {
        let t = &report.totals;
        Self {
            replicas,
            calls: t.calls,
            successes: t.successes,
            errors: t.errors,
            calls_per_sec: t.calls_per_sec,
            p50_ms: t.latency_ms.p50,
            p95_ms: t.latency_ms.p95,
            p99_ms: t.latency_ms.p99,
            store,
            passed: report.passed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub exai_version: &'static str,
    pub scenario: &'static str,
    pub target: String,
    pub started_at_unix_ms: u64,
    pub elapsed_secs: f64,
    pub plan: Plan,
    pub totals: Group,
    pub per_tool: BTreeMap<String, Group>,
    pub per_session: Vec<Group>,
    /// Calls still running when the grace period ended (the run stopped waiting for them).
    pub abandoned: u64,
    /// HTTP sessions the server had forgotten (expired while idle) and the client started again.
    pub sessions_renewed: u32,
    pub probe: Option<Probe>,
    pub permit_waits: Vec<PermitWait>,
    pub stability: Option<Stability>,
    pub circuits: Option<Circuits>,
    pub checks: Vec<Check>,
    pub passed: bool,
    pub timeline: Vec<Second>,
    /// Every call (for the HTML charts and further analysis).
    pub samples: Vec<Sample>,
    /// `--replicas`: every run of the comparison, side by side (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaRun>,
}

impl Report {
    /// Writes `<dir>/loadtest-<scenario>-<unix ms>.json` and `.html`; returns both paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = format!("loadtest-{}-{}", self.scenario, self.started_at_unix_ms);
        let json = dir.join(format!("{stem}.json"));
        let html = dir.join(format!("{stem}.html"));
        std::fs::write(&json, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", json.display()))?;
        std::fs::write(&html, super::report_html::render(self))
            .with_context(|| format!("writing {}", html.display()))?;
        Ok((json, html))
    }
}

//! Rule-based alerts. [`evaluate`] is pure: a snapshot of the server ([`Inputs`]) and the thresholds in, the set
//! of rules firing now out. [`run`] is the task around it: every `alerts.interval_secs` it takes the snapshot,
//! diffs against what fired before, and for each raise or clear tells [`super::Observe`] (the dashboard's list and
//! stream, the auditor), stores an [`AlertRecord`], logs (warn raised, info cleared) and sets the metrics
//! `exai_alerts_firing{rule}` and `exai_alerts_raised_total{rule,severity}`.
//!
//! The rules, each at most one alert:
//! - `error_rate` (critical): more than `alerts.error_rate_percent` of the window's calls failed, once the
//!   window holds at least `alerts.min_calls` calls (one failure out of two does not page).
//! - `p95_latency_tier1|simple|files|workflow` (warning): a tier's p95 latency in the window is above its
//!   `alerts.p95_<tier>_ms`, with at least `alerts.min_calls` calls of that tier.
//! - `circuit_open` (critical): some model's circuit breaker is not closed (open, or half-open and not yet
//!   proven healthy by a probe).
//! - `saturated` (warning): a limit (global or a provider's) had every permit taken or calls queued at every
//!   evaluation for at least `alerts.saturated_secs`.
//! - `cpu` (warning): the process used more than `alerts.cpu_percent` of all the CPUs available to it since
//!   the previous evaluation (so 100 % means every CPU busy, not one core).
//! - `memory` (warning): resident memory above `alerts.memory_percent` of the cgroup's memory limit, or of
//!   `MemTotal` when no limit is set.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::window::{is_error, quantile};
use super::{AlertChange, Severity, host};
use crate::app::App;
use crate::config::AlertsConfig;
use crate::conversation::now_ms;
use crate::resilience::breaker::BreakerState;
use crate::store::{AlertRecord, Execution};
use crate::tools::Tier;

/// Every rule's name (their `exai_alerts_firing` gauges start at 0).
pub const RULES: &[&str] = &[
    "error_rate",
    "p95_latency_tier1",
    "p95_latency_simple",
    "p95_latency_files",
    "p95_latency_workflow",
    "circuit_open",
    "saturated",
    "cpu",
    "memory",
];

/// A rule that fires now.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub severity: Severity,
    /// What was seen, with the value and the threshold.
    pub message: String,
}

/// What the rules look at, gathered at one moment.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// Recent calls (those outside `(now_ms - window, now_ms]` are ignored).
    pub calls: &'a [Execution],
    pub now_ms: i64,
    /// Each tool's tier, by tool name (calls of unknown tools count only towards the error rate).
    pub tiers: &'a HashMap<String, Tier>,
    /// Breakers that are not closed, with their state.
    pub circuits: Vec<(String, BreakerState)>,
    /// Limits saturated at every evaluation since, and for how long.
    pub saturated: Vec<(String, Duration)>,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
}

impl<'a> Inputs<'a> {
    /// Calls only: no open circuits, no saturated limits, no CPU or memory reading.
    pub fn new(calls: &'a [Execution], now_ms: i64, tiers: &'a HashMap<String, Tier>) -> Self {
        Self {
            calls,
            now_ms,
            tiers,
            circuits: Vec::new(),
            saturated: Vec::new(),
            cpu_percent: None,
            memory_percent: None,
        }
    }
}

fn tier_rule(tier: Tier) -> &'static str {
    match tier {
        Tier::Tier1 => "p95_latency_tier1",
        Tier::Simple => "p95_latency_simple",
        Tier::Files => "p95_latency_files",
        Tier::Workflow => "p95_latency_workflow",
    }
}

/// The rules firing for `inputs`, by rule name.
pub fn evaluate(config: &AlertsConfig, inputs: &Inputs<'_>) -> BTreeMap<String, Firing> {
    let mut firing = BTreeMap::new();
    let mut fire = |rule: &str, severity, message: String| {
        firing.insert(rule.to_owned(), Firing { severity, message });
    };
    let from = inputs.now_ms - config.window.as_millis() as i64;
    let inside: Vec<&Execution> = inputs
        .calls
        .iter()
        .filter(|c| c.at_ms > from && c.at_ms <= inputs.now_ms)
        .collect();
    let min_calls = config.min_calls as usize;
    let window_secs = config.window.as_secs();

    let errors = inside.iter().filter(|c| is_error(c)).count();
    let rate = errors as f64 / inside.len().max(1) as f64 * 100.0;
    if inside.len() >= min_calls && rate > config.error_rate_percent {
        fire(
            "error_rate",
            Severity::Critical,
            format!(
                "{errors} of {} calls failed in the last {window_secs} s ({rate:.1} %, threshold {} %)",
                inside.len(),
                config.error_rate_percent
            ),
        );
    }

    let mut by_tier: BTreeMap<&'static str, (Duration, Vec<i64>)> = BTreeMap::new();
    for c in &inside {
        if let Some(tier) = inputs.tiers.get(&c.tool) {
            let threshold = match tier {
                Tier::Tier1 => config.p95.tier1,
                Tier::Simple => config.p95.simple,
                Tier::Files => config.p95.files,
                Tier::Workflow => config.p95.workflow,
            };
            by_tier
                .entry(tier_rule(*tier))
                .or_insert((threshold, Vec::new()))
                .1
                .push(c.latency_ms);
        }
    }
    for (rule, (threshold, mut latencies)) in by_tier {
        latencies.sort_unstable();
        let p95 = quantile(&latencies, 0.95).unwrap_or(0);
        if latencies.len() >= min_calls && p95 > threshold.as_millis() as i64 {
            fire(
                rule,
                Severity::Warning,
                format!(
                    "p95 latency {p95} ms over {} calls in the last {window_secs} s (threshold {} ms)",
                    latencies.len(),
                    threshold.as_millis()
                ),
            );
        }
    }

    let circuits: Vec<String> = inputs
        .circuits
        .iter()
        .filter(|(_, s)| *s != BreakerState::Closed)
        .map(|(target, state)| match state {
            BreakerState::HalfOpen => format!("{target} (half-open)"),
            _ => target.clone(),
        })
        .collect();
    if !circuits.is_empty() {
        fire(
            "circuit_open",
            Severity::Critical,
            format!("circuit not closed for {}", circuits.join(", ")),
        );
    }

    let saturated: Vec<String> = inputs
        .saturated
        .iter()
        .filter(|(_, d)| *d >= config.saturated_for)
        .map(|(name, d)| format!("{name} for {} s", d.as_secs()))
        .collect();
    if !saturated.is_empty() {
        fire(
            "saturated",
            Severity::Warning,
            format!(
                "limit saturated (every permit taken or calls queued): {} (threshold {} s)",
                saturated.join(", "),
                config.saturated_for.as_secs()
            ),
        );
    }

    if let Some(cpu) = inputs.cpu_percent.filter(|p| *p > config.cpu_percent) {
        fire(
            "cpu",
            Severity::Warning,
            format!(
                "process CPU {cpu:.0} % of the available CPUs (threshold {} %)",
                config.cpu_percent
            ),
        );
    }
    if let Some(memory) = inputs.memory_percent.filter(|p| *p > config.memory_percent) {
        fire(
            "memory",
            Severity::Warning,
            format!(
                "resident memory {memory:.0} % of the limit (threshold {} %)",
                config.memory_percent
            ),
        );
    }
    firing
}

/// How long each limit has been saturated, from one snapshot per evaluation. A limit counts as saturated
/// continuously while every snapshot since the first saturated one found it saturated.
#[derive(Debug, Default)]
pub struct Saturation {
    since_ms: HashMap<String, i64>,
}

impl Saturation {
    /// Takes a `Limits::snapshot` (name, in use, capacity, waiting) made at `now_ms`.
    pub fn observe(&mut self, snapshot: &[(String, u32, u32, usize)], now_ms: i64) -> Vec<(String, Duration)> {
        let full: HashMap<&str, ()> = snapshot
            .iter()
            .filter(|(_, in_use, capacity, waiting)| in_use >= capacity || *waiting > 0)
            .map(|(name, ..)| (name.as_str(), ()))
            .collect();
        self.since_ms.retain(|name, _| full.contains_key(name.as_str()));
        let mut out: Vec<(String, Duration)> = full
            .keys()
            .map(|name| {
                let since = *self.since_ms.entry((*name).to_owned()).or_insert(now_ms);
                (
                    (*name).to_owned(),
                    Duration::from_millis((now_ms - since).max(0) as u64),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// The raises and clears between what fired before and what fires now; `before` becomes `now`.
pub fn diff(before: &mut BTreeMap<String, Firing>, now: BTreeMap<String, Firing>, at_ms: i64) -> Vec<AlertChange> {
    let mut changes = Vec::new();
    for (rule, was) in before.iter() {
        if !now.contains_key(rule) {
            changes.push(AlertChange {
                rule: rule.clone(),
                severity: was.severity,
                message: format!("cleared (raised for: {})", was.message),
                firing: false,
                at_ms,
            });
        }
    }
    for (rule, firing) in &now {
        if !before.contains_key(rule) {
            changes.push(AlertChange {
                rule: rule.clone(),
                severity: firing.severity,
                message: firing.message.clone(),
                firing: true,
                at_ms,
            });
        }
    }
    *before = now;
    changes
}

/// Exports `exai_alerts_firing` at 0 for every rule, so a rule that never fired still has a series.
pub fn export_rules() {
    for rule in RULES {
        metrics::gauge!("exai_alerts_firing", "rule" => *rule).set(0.0);
    }
}

/// Evaluates the rules every `alerts.interval_secs` until `shutdown`.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let config = app.config.alerts;
    let tiers: HashMap<String, Tier> = app
        .tools
        .iter()
        .map(|t| (t.spec().name.to_owned(), t.spec().tier))
        .collect();
    let memory_limit = host::memory_limit_bytes();
    let cpus = host::cpus();
    let mut cpu = host::CpuMeter::default();
    let mut saturation = Saturation::default();
    let mut firing = BTreeMap::new();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::debug!(?config, memory_limit, cpus, "alert rules running");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = now_ms();
        let calls = app.observe.calls_since(now - config.window.as_millis() as i64 + 1);
        let usage = host::process_usage();
        let inputs = Inputs {
            calls: &calls,
            now_ms: now,
            tiers: &tiers,
            circuits: app.resilience.breakers.states(),
            saturated: saturation.observe(&app.resilience.limits.snapshot(), now),
            cpu_percent: usage.and_then(|u| cpu.percent(tokio::time::Instant::now(), u.cpu_seconds, cpus)),
            memory_percent: usage
                .zip(memory_limit)
                .map(|(u, limit)| u.resident_bytes as f64 / limit as f64 * 100.0),
        };
        for change in diff(&mut firing, evaluate(&config, &inputs), now) {
            publish(&app, change).await;
        }
    }
}

/// One raise or clear: to the hub, the log, the metrics and the `alerts` table.
async fn publish(app: &App, change: AlertChange) {
    let rule = change.rule.clone();
    if change.firing {
        tracing::warn!(rule = %rule, severity = change.severity.as_str(), message = %change.message, "alert raised");
        metrics::counter!("exai_alerts_raised_total", "rule" => rule.clone(), "severity" => change.severity.as_str())
            .increment(1);
    } else {
        tracing::info!(rule = %rule, message = %change.message, "alert cleared");
    }
    metrics::gauge!("exai_alerts_firing", "rule" => rule).set(if change.firing { 1.0 } else { 0.0 });
    let record = AlertRecord {
        id: 0,
        at_ms: change.at_ms,
        rule: change.rule.clone(),
        severity: change.severity.as_str().to_owned(),
        message: change.message.clone(),
        firing: change.firing,
    };
    app.observe.record_alert(change);
    if let Err(e) = app.store.record_alert(&record).await {
        tracing::warn!(error = %e, rule = %record.rule, "cannot store the alert change");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TierLatency;

    fn config() -> AlertsConfig {
        AlertsConfig {
            enabled: true,
            interval: Duration::from_secs(1),
            window: Duration::from_secs(60),
            min_calls: 4,
            error_rate_percent: 5.0,
            p95: TierLatency {
                tier1: Duration::from_millis(100),
                simple: Duration::from_secs(10),
                files: Duration::from_secs(20),
                workflow: Duration::from_secs(30),
            },
            saturated_for: Duration::from_secs(30),
            cpu_percent: 80.0,
            memory_percent: 85.0,
        }
    }

    fn call(at_ms: i64, tool: &str, latency_ms: i64, status: &str) -> Execution {
        Execution {
            at_ms,
            tool: tool.into(),
            provider: None,
            model: None,
            latency_ms,
            status: status.into(),
            error_kind: None,
            tokens_in: None,
            tokens_out: None,
            session: None,
        }
    }

    fn tiers() -> HashMap<String, Tier> {
        HashMap::from([("version".into(), Tier::Tier1), ("chat".into(), Tier::Simple)])
    }

    fn rules(firing: &BTreeMap<String, Firing>) -> Vec<&str> {
        firing.keys().map(String::as_str).collect()
    }

    #[test]
    fn error_rate_fires_over_the_threshold_only_with_enough_calls() {
        let tiers = tiers();
        let now = 100_000;
        let two = [
            call(now - 10, "chat", 5, "ok"),
            call(now - 5, "chat", 5, "provider_error"),
        ];
        let inputs = Inputs::new(&two, now, &tiers);
        assert!(
            evaluate(&config(), &inputs).is_empty(),
            "one failure of two does not page"
        );

        let mut calls: Vec<Execution> = (0..19).map(|i| call(now - 1_000 + i, "chat", 5, "ok")).collect();
        calls.push(call(now - 1, "chat", 5, "timeout"));
        let inputs = Inputs::new(&calls, now, &tiers);
        assert!(evaluate(&config(), &inputs).is_empty(), "exactly 5 % is not above 5 %");

        calls.push(call(now, "chat", 5, "error"));
        calls.push(call(now - 70_000, "chat", 5, "ok")); // outside the window: not counted
        let inputs = Inputs::new(&calls, now, &tiers);
        let firing = evaluate(&config(), &inputs);
        assert_eq!(rules(&firing), ["error_rate"]);
        assert_eq!(firing["error_rate"].severity, Severity::Critical);
        assert!(
            firing["error_rate"].message.starts_with("2 of 21 calls failed"),
            "{:?}",
            firing
        );

        // A cancelled call is the client's choice, not an error.
        let cancelled: Vec<Execution> = (0..5).map(|i| call(now - i, "chat", 5, "cancelled")).collect();
        let inputs = Inputs::new(&cancelled, now, &tiers);
        assert!(evaluate(&config(), &inputs).is_empty());
    }

    #[test]
    fn p95_latency_is_judged_per_tier() {
        let tiers = tiers();
        let now = 100_000;
        // Chat at 8 s is fine for the simple tier; version at 150 ms is slow for tier 1.
        let mut calls: Vec<Execution> = (0..4).map(|i| call(now - i, "chat", 8_000, "ok")).collect();
        calls.extend((0..4).map(|i| call(now - i, "version", 150, "ok")));
        calls.push(call(now, "unknown_tool", 999_999, "ok"));
        let inputs = Inputs::new(&calls, now, &tiers);
        let firing = evaluate(&config(), &inputs);
        assert_eq!(rules(&firing), ["p95_latency_tier1"]);
        assert!(
            firing["p95_latency_tier1"]
                .message
                .contains("p95 latency 150 ms over 4 calls")
        );
        // Too few calls of the tier: quiet.
        let inputs = Inputs::new(&calls[3..], now, &tiers);
        assert_eq!(rules(&evaluate(&config(), &inputs)), ["p95_latency_tier1"]);
        let inputs = Inputs::new(&calls[5..], now, &tiers);
        assert!(evaluate(&config(), &inputs).is_empty());
    }

    #[test]
    fn circuits_cpu_and_memory() {
        let tiers = tiers();
        let inputs = Inputs {
            circuits: vec![
                ("glm/glm-4.6".into(), BreakerState::Open),
                ("kimi/k2".into(), BreakerState::Closed),
                ("glm/glm-4.5".into(), BreakerState::HalfOpen),
            ],
            cpu_percent: Some(80.5),
            memory_percent: Some(85.0),
            ..Inputs::new(&[], 0, &tiers)
        };
        let firing = evaluate(&config(), &inputs);
        assert_eq!(rules(&firing), ["circuit_open", "cpu"], "85 % memory is not above 85 %");
        assert_eq!(
            firing["circuit_open"].message,
            "circuit not closed for glm/glm-4.6, glm/glm-4.5 (half-open)"
        );
        let inputs = Inputs {
            circuits: vec![("kimi/k2".into(), BreakerState::Closed)],
            cpu_percent: Some(10.0),
            memory_percent: Some(90.0),
            ..Inputs::new(&[], 0, &tiers)
        };
        assert_eq!(rules(&evaluate(&config(), &inputs)), ["memory"]);
    }

    #[test]
    fn saturation_must_last_the_whole_duration() {
        let tiers = tiers();
        let mut s = Saturation::default();
        let full = |waiting| {
            vec![
                ("global".to_owned(), 24, 24, 0),
                ("provider glm".to_owned(), 1, 4, waiting),
            ]
        };
        let mut fires_at = |snapshot: Vec<(String, u32, u32, usize)>, now_ms| {
            let inputs = Inputs {
                saturated: s.observe(&snapshot, now_ms),
                ..Inputs::new(&[], now_ms, &tiers)
            };
            evaluate(&config(), &inputs).get("saturated").map(|f| f.message.clone())
        };
        assert_eq!(fires_at(full(0), 0), None);
        assert_eq!(fires_at(full(0), 20_000), None);
        let message = fires_at(full(2), 30_000).unwrap();
        assert!(
            message.contains("global for 30 s") && !message.contains("provider glm"),
            "{message}"
        );
        // A free moment restarts the clock.
        assert_eq!(fires_at(vec![("global".to_owned(), 3, 24, 0)], 40_000), None);
        assert_eq!(fires_at(full(2), 50_000), None);
        let message = fires_at(full(2), 80_000).unwrap();
        assert!(message.contains("global for 30 s, provider glm for 30 s"), "{message}");
    }

    #[test]
    fn diff_raises_then_clears_once() {
        let firing = |rule: &str| {
            BTreeMap::from([(
                rule.to_owned(),
                Firing {
                    severity: Severity::Critical,
                    message: "5 of 6 calls failed".into(),
                },
            )])
        };
        let mut before = BTreeMap::new();
        let raised = diff(&mut before, firing("error_rate"), 1);
        assert_eq!(raised.len(), 1);
        assert!(raised[0].firing && raised[0].rule == "error_rate" && raised[0].at_ms == 1);
        assert!(
            diff(&mut before, firing("error_rate"), 2).is_empty(),
            "still firing: no change"
        );
        let cleared = diff(&mut before, BTreeMap::new(), 3);
        assert_eq!(cleared.len(), 1);
        assert!(!cleared[0].firing);
        assert_eq!(cleared[0].message, "cleared (raised for: 5 of 6 calls failed)");
        assert!(diff(&mut before, BTreeMap::new(), 4).is_empty());
    }
}

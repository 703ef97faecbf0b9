//! The alert rules' thresholds (`alerts.*`) and the AI auditor's settings (`auditor.*`), read and checked.
//! A latency threshold at or past its tier's deadline never fires (such calls time out: `error_rate` sees them).

use std::time::Duration;

use super::validate::Reader;
use crate::models::ModelRegistry;

/// `alerts.*`: when each rule fires. Percentages are 0–100.
#[derive(Debug, Clone, Copy)]
pub struct AlertsConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub window: Duration,
    /// Fewest calls (in the window; per tier for latency) before the error-rate and latency rules may fire.
    pub min_calls: u32,
    pub error_rate_percent: f64,
    pub p95: TierLatency,
    /// How long a limit must stay saturated before `saturated` fires.
    pub saturated_for: Duration,
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// A p95 latency threshold per tool tier.
#[derive(Debug, Clone, Copy)]
pub struct TierLatency {
    pub tier1: Duration,
    pub simple: Duration,
    pub files: Duration,
    pub workflow: Duration,
}

/// `auditor.*`: the optional background model that reads the event stream.
#[derive(Debug, Clone)]
pub struct AuditorConfig {
    pub enabled: bool,
    /// The model as configured (resolved against the registry at start).
    pub model: String,
    pub batch_size: usize,
    pub rate_limit: Duration,
    /// Capacity of the bounded hand-off from the request path.
    pub queue: usize,
    pub timeout: Duration,
}

fn millis(r: &mut Reader<'_>, path: &str) -> Option<Duration> {
    let ms: u64 = r.parse(path, "a whole number of milliseconds, at least 1")?;
    if ms == 0 {
        r.problem(path, "expected a whole number of milliseconds, at least 1");
        return None;
    }
    r.capped(path, Duration::from_millis(ms))
}

fn percent(r: &mut Reader<'_>, path: &str) -> Option<f64> {
    let expected = "a percentage above 0 and at most 100, e.g. 80";
    let value: f64 = r.parse(path, expected)?;
    if !(value > 0.0 && value <= 100.0) {
        r.problem(path, format!("expected {expected}"));
        return None;
    }
    Some(value)
}

pub(super) fn alerts(r: &mut Reader<'_>) -> Option<AlertsConfig> {
    let enabled = r.bool("alerts.enabled");
    let interval = r.secs("alerts.interval_secs");
    let window = r.secs("alerts.window_secs");
    let min_calls = r.non_zero("alerts.min_calls");
    let error_rate_percent = percent(r, "alerts.error_rate_percent");
    let tier1 = millis(r, "alerts.p95_tier1_ms");
    let simple = millis(r, "alerts.p95_simple_ms");
    let files = millis(r, "alerts.p95_files_ms");
    let workflow = millis(r, "alerts.p95_workflow_ms");
    let saturated_for = r.secs("alerts.saturated_secs");
    let cpu_percent = percent(r, "alerts.cpu_percent");
    let memory_percent = percent(r, "alerts.memory_percent");
    Some(AlertsConfig {
        enabled: enabled?,
        interval: interval?,
        window: window?,
        min_calls: min_calls?.get(),
        error_rate_percent: error_rate_percent?,
        p95: TierLatency {
            tier1: tier1?,
            simple: simple?,
            files: files?,
            workflow: workflow?,
        },
        saturated_for: saturated_for?,
        cpu_percent: cpu_percent?,
        memory_percent: memory_percent?,
    })
}

pub(super) fn auditor(r: &mut Reader<'_>) -> Option<AuditorConfig> {
    let enabled = r.bool("auditor.enabled");
    let model = r.text("auditor.model").to_owned();
    if enabled == Some(true)
        && let Err(e) = ModelRegistry::builtin().resolve(&model)
    {
        r.problem("auditor.model", e.to_string());
    }
    let batch_size = r.non_zero("auditor.batch_size");
    let rate_limit = r.secs("auditor.rate_limit_secs");
    let queue = r.non_zero("auditor.queue");
    let timeout = r.secs("auditor.timeout_secs");
    Some(AuditorConfig {
        enabled: enabled?,
        model,
        batch_size: batch_size?.get() as usize,
        rate_limit: rate_limit?,
        queue: queue?.get() as usize,
        timeout: timeout?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, MapEnv};

    fn load(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::load(&MapEnv::new(pairs.iter().copied()), None, &[])
    }

    #[test]
    fn defaults_follow_the_issue() {
        let c = load(&[]).unwrap();
        assert!(c.alerts.enabled);
        assert_eq!(c.alerts.error_rate_percent, 5.0);
        assert_eq!((c.alerts.cpu_percent, c.alerts.memory_percent), (80.0, 85.0));
        assert!(!c.auditor.enabled);
        assert_eq!(c.auditor.model, "glm-4.5-flash");
        assert_eq!(c.auditor.batch_size, 10);
        assert_eq!(c.auditor.rate_limit.as_secs(), 5);
    }

    #[test]
    fn bad_thresholds_are_named() {
        let text = load(&[
            ("EXAI_ALERTS_ERROR_RATE_PERCENT", "150"),
            ("EXAI_ALERTS_CPU_PERCENT", "0"),
            ("EXAI_ALERTS_P95_TIER1_MS", "0"),
            ("AI_AUDITOR_BATCH_SIZE", "0"),
        ])
        .unwrap_err()
        .to_string();
        assert!(text.contains("EXAI_ALERTS_ERROR_RATE_PERCENT"), "{text}");
        assert!(text.contains("EXAI_ALERTS_CPU_PERCENT"), "{text}");
        assert!(text.contains("EXAI_ALERTS_P95_TIER1_MS"), "{text}");
        assert!(text.contains("AI_AUDITOR_BATCH_SIZE"), "{text}");
    }

    #[test]
    fn an_enabled_auditor_needs_a_known_model() {
        let text = load(&[("AI_AUDITOR_ENABLED", "true"), ("AI_AUDITOR_MODEL", "gpt-9")])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("AI_AUDITOR_MODEL") && text.contains("unknown model `gpt-9`"),
            "{text}"
        );
        // Disabled, the model is not checked.
        assert!(load(&[("AI_AUDITOR_MODEL", "gpt-9")]).is_ok());
    }
}

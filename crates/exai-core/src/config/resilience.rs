//! The resilience settings (`limits.max_*`, `retry.*`, `breaker.*`, `fallback.chains`, Kimi's per-mode
//! timeouts), read and checked against the outer deadlines they must fit in.

use std::time::Duration;

use super::Timeouts;
use super::validate::Reader;
use crate::models::ModelRegistry;
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::fallback::FallbackChains;
use crate::resilience::limits::QueuePolicy;
use crate::resilience::retry::RetryPolicy;

/// Kimi takes longer per mode; each is a cap on one request.
#[derive(Debug, Clone, Copy)]
pub struct KimiModeTimeouts {
    pub web_search: Duration,
    pub thinking: Duration,
    pub web_search_thinking: Duration,
}

#[derive(Debug, Clone)]
pub struct ResilienceConfig {
    pub queue: QueuePolicy,
    pub custom_max_inflight: u32,
    /// Requests a minute to GLM / Kimi, fleet-wide with a fleet (0: no limit).
    pub glm_rpm: u32,
    pub kimi_rpm: u32,
    pub retry: RetryPolicy,
    pub retry_budget_ratio: f64,
    pub breaker: BreakerConfig,
    pub fallback: FallbackChains,
    pub kimi_modes: KimiModeTimeouts,
}

fn millis(r: &mut Reader<'_>, path: &str) -> Option<Duration> {
    let ms: u64 = r.parse(path, "a whole number of milliseconds")?;
    r.capped(path, Duration::from_millis(ms))
}

pub(super) fn read(r: &mut Reader<'_>, timeouts: Option<&Timeouts>) -> Option<ResilienceConfig> {
    let max_waiters: Option<usize> = r.parse("limits.max_waiters", "a whole number of calls");
    let max_wait = millis(r, "limits.max_wait_ms");
    let custom = r.non_zero("limits.custom_max_inflight");
    let glm_rpm: Option<u32> = r.parse("limits.glm_rpm", "a whole number of requests a minute (0: no limit)");
    let kimi_rpm: Option<u32> = r.parse("limits.kimi_rpm", "a whole number of requests a minute (0: no limit)");
    let attempts = r.non_zero("retry.max_attempts");
    let base = millis(r, "retry.base_ms");
    let max_backoff = millis(r, "retry.max_backoff_ms");
    let ratio: Option<f64> = r.parse("retry.budget_ratio", "a fraction from 0 to 1, e.g. 0.2");
    let ratio = ratio.filter(|x| {
        let ok = (0.0..=1.0).contains(x);
        if !ok {
            r.problem("retry.budget_ratio", "expected a fraction from 0 to 1, e.g. 0.2");
        }
        ok
    });
    let failures = r.non_zero("breaker.failures");
    let window = r.secs("breaker.window_secs");
    let cooldown = r.secs("breaker.cooldown_secs");
    let probes = r.non_zero("breaker.half_open_probes");
    let close_after = r.non_zero("breaker.close_after");
    let fallback = match FallbackChains::parse(r.text("fallback.chains")) {
        Ok(chains) => Some(chains),
        Err(message) => {
            r.problem("fallback.chains", message);
            None
        }
    };
    if let Some(chains) = &fallback {
        let registry = ModelRegistry::builtin();
        let unknown: Vec<&String> = chains.models().filter(|m| registry.resolve(m).is_err()).collect();
        if !unknown.is_empty() {
            let names = unknown.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
            r.problem(
                "fallback.chains",
                format!("unknown model(s) {names}; chains name built-in models (see listmodels)"),
            );
        }
    }
    let kimi = KimiModeTimeouts {
        web_search: r.secs("providers.kimi.web_search_timeout_secs")?,
        thinking: r.secs("providers.kimi.thinking_timeout_secs")?,
        web_search_thinking: r.secs("providers.kimi.web_search_thinking_timeout_secs")?,
    };
    if let Some(t) = timeouts {
        for (key, path, inner) in [
            (
                "KIMI_WEB_SEARCH_TIMEOUT_SECS",
                "providers.kimi.web_search_timeout_secs",
                kimi.web_search,
            ),
            (
                "KIMI_THINKING_TIMEOUT_SECS",
                "providers.kimi.thinking_timeout_secs",
                kimi.thinking,
            ),
            (
                "KIMI_WEB_SEARCH_THINKING_TIMEOUT_SECS",
                "providers.kimi.web_search_thinking_timeout_secs",
                kimi.web_search_thinking,
            ),
        ] {
            if inner > t.simple_tool {
                r.problem(
                    path,
                    format!(
                        "{key} ({} s) is longer than SIMPLE_TOOL_TIMEOUT_SECS ({} s): the call would time out first",
                        inner.as_secs(),
                        t.simple_tool.as_secs()
                    ),
                );
            }
        }
    }
    Some(ResilienceConfig {
        queue: QueuePolicy {
            max_waiters: max_waiters?,
            max_wait: max_wait?,
        },
        custom_max_inflight: custom?.get(),
        glm_rpm: glm_rpm?,
        kimi_rpm: kimi_rpm?,
        retry: RetryPolicy {
            max_attempts: attempts?.get(),
            base: base?,
            max_backoff: max_backoff?,
            min_attempt: Duration::from_secs(1),
        },
        retry_budget_ratio: ratio?,
        breaker: BreakerConfig {
            failures: failures?.get(),
            window: window?,
            cooldown: cooldown?,
            half_open_probes: probes?.get(),
            close_after: close_after?.get(),
        },
        fallback: fallback?,
        kimi_modes: kimi,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, MapEnv};

    #[test]
    fn fallback_chains_and_mode_timeouts_are_checked() {
        let load = |pairs: &[(&str, &str)]| Config::load(&MapEnv::new(pairs.iter().copied()), None, &[]);
        let c = load(&[("EXAI_FALLBACK_CHAINS", "kimi-k2-0905-preview>glm-4.6")]).unwrap();
        assert_eq!(c.resilience.fallback.after("kimi-k2-0905-preview"), ["glm-4.6"]);
        let err = load(&[("EXAI_FALLBACK_CHAINS", "kimi>gpt-9")]).unwrap_err().to_string();
        assert!(
            err.contains("EXAI_FALLBACK_CHAINS") && err.contains("unknown model(s) gpt-9"),
            "{err}"
        );
        let err = load(&[("KIMI_WEB_SEARCH_THINKING_TIMEOUT_SECS", "900")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("KIMI_WEB_SEARCH_THINKING_TIMEOUT_SECS (900 s) is longer than SIMPLE_TOOL_TIMEOUT_SECS"),
            "{err}"
        );
        let err = load(&[("EXAI_RETRY_BUDGET_RATIO", "3")]).unwrap_err().to_string();
        assert!(err.contains("EXAI_RETRY_BUDGET_RATIO"), "{err}");
    }
}

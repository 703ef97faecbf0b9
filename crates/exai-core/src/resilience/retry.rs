//! Retries for retriable provider failures only: exponential backoff with full jitter (backon's schedule),
//! `Retry-After` honoured, bounded by attempts, by the call's budget and by a retry budget so a struggling
//! provider is not hammered.

use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use crate::provider::ProviderError;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
    /// An attempt is not started with less than this left in the budget.
    pub min_attempt: Duration,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp(&'static str),
}

impl RetryPolicy {
    /// The full-jitter delay before attempt `attempt + 1` (attempt counts from 1): uniform in
    /// `0..=min(max_backoff, base * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max_backoff)
            .with_max_times(attempt as usize)
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max_backoff);
        ceiling.mul_f64(fastrand::f64())
    }

    /// Whether to try again after `error` on attempt `attempt`, with `remaining` left in the call's budget.
    pub fn decide(&self, error: &ProviderError, attempt: u32, remaining: Duration, budget: &RetryBudget) -> Decision {
        if !error.is_retryable() {
            return Decision::GiveUp("not retriable");
        }
        if attempt >= self.max_attempts {
            return Decision::GiveUp("attempts exhausted");
        }
        let asked = match error {
            ProviderError::Http {
                retry_after: Some(after),
                ..
            } => *after,
            _ => Duration::ZERO,
        };
        let delay = self.backoff(attempt).max(asked);
        if delay + self.min_attempt > remaining {
            return Decision::GiveUp("no time left in the call's budget for another attempt");
        }
        if !budget.try_withdraw() {
            return Decision::GiveUp("retry budget exhausted");
        }
        Decision::RetryAfter(delay)
    }
}

/// A token bucket shared by all calls to one provider: each first attempt deposits `ratio` tokens (up to a
/// cap), each retry withdraws one, so retries stay a bounded fraction of traffic.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    cap: f64,
    tokens: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    pub fn new(ratio: f64, cap: f64) -> Self {
        Self {
            ratio,
            cap,
            tokens: Mutex::new((cap, Instant::now())),
        }
    }

    pub fn deposit(&self) {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        t.0 = (t.0 + self.ratio).min(self.cap);
    }

    pub fn try_withdraw(&self) -> bool {
        let mut t = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        // A slow refill (one token per second) so an idle provider regains a few retries.
        let refill = t.1.elapsed().as_secs_f64();
        t.0 = (t.0 + refill).min(self.cap);
        t.1 = Instant::now();
        if t.0 >= 1.0 {
            t.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            min_attempt: Duration::from_secs(1),
        }
    }

    fn http(status: u16, retry_after: Option<u64>) -> ProviderError {
        ProviderError::Http {
            provider: "glm".into(),
            status,
            message: "x".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_ceiling() {
        let p = policy();
        for attempt in 1..6 {
            let ceiling = (p.base * 2u32.pow(attempt - 1)).min(p.max_backoff);
            for _ in 0..200 {
                assert!(p.backoff(attempt) <= ceiling, "attempt {attempt}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_can_succeed_within_attempts_budget_and_time() {
        let p = policy();
        let budget = RetryBudget::new(0.2, 10.0);
        let long = Duration::from_secs(60);
        assert!(matches!(
            p.decide(&http(503, None), 1, long, &budget),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            p.decide(&http(400, None), 1, long, &budget),
            Decision::GiveUp("not retriable")
        );
        assert_eq!(
            p.decide(&http(503, None), 3, long, &budget),
            Decision::GiveUp("attempts exhausted")
        );
        assert_eq!(
            p.decide(&http(429, Some(7)), 1, long, &budget),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            p.decide(&http(429, Some(7)), 1, Duration::from_secs(5), &budget),
            Decision::GiveUp("no time left in the call's budget for another attempt")
        );
        let broken = ProviderError::StreamBroken {
            provider: "kimi".into(),
            received_chars: 10,
            message: "x".into(),
        };
        assert_eq!(p.decide(&broken, 1, long, &budget), Decision::GiveUp("not retriable"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_runs_dry_and_refills() {
        let budget = RetryBudget::new(0.5, 2.0);
        assert!(budget.try_withdraw() && budget.try_withdraw());
        assert!(!budget.try_withdraw(), "empty");
        budget.deposit();
        budget.deposit();
        assert!(budget.try_withdraw());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(budget.try_withdraw(), "refilled over time");
    }
}

//! Requests-per-minute limits per provider (`limits.glm_rpm`, `limits.kimi_rpm`), consulted before every upstream
//! request attempt. GCRA without burst: one request per `60 s / rpm`, so a burst is spaced out evenly. With a
//! fleet the schedule lives in Redis and holds for every replica together; without one (or when Redis fails
//! and `redis.on_failure` is `open`) each process keeps its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::budget::Budget;
use super::fleet::{FleetLink, FleetUnavailable, OnFailure};
use super::limits::{LimitError, OverCapacity};

/// The per-provider request rates.
#[derive(Debug)]
pub struct Rates {
    per_minute: HashMap<String, u32>,
    /// Theoretical arrival time of the next request, per provider (the local schedule).
    local: Mutex<HashMap<String, Instant>>,
    fleet: Option<Arc<FleetLink>>,
    max_wait: Duration,
}

impl Rates {
    /// `per_minute` maps a provider to its rate; 0 or absent means no rate limit.
    pub fn new(per_minute: HashMap<String, u32>, max_wait: Duration, fleet: Option<Arc<FleetLink>>) -> Self {
        Self {
            per_minute,
            local: Mutex::default(),
            fleet,
            max_wait,
        }
    }

    /// Waits until one more request to `provider` fits its rate, within `limits.max_wait_ms` and the budget;
    /// past either, fails with [`OverCapacity::RateLimited`] saying when to retry.
    pub async fn pace(&self, provider: &str, budget: &Budget) -> Result<(), LimitError> {
        let Some(&rpm) = self.per_minute.get(provider).filter(|r| **r > 0) else {
            return Ok(());
        };
        let limit = format!("rpm:{provider}");
        let interval = Duration::from_secs(60) / rpm;
        let start = Instant::now();
        loop {
            let wait = match &self.fleet {
                Some(link) => match link.pace(&limit, interval).await {
                    Ok(wait) => wait,
                    Err(error) => {
                        link.failed(&limit, &error);
                        if link.on_failure == OnFailure::Closed {
                            return Err(FleetUnavailable { limit, error }.into());
                        }
                        self.local_pace(provider, interval)
                    }
                },
                None => self.local_pace(provider, interval),
            };
            if wait.is_zero() {
                return Ok(());
            }
            if start.elapsed() + wait > self.max_wait || wait > budget.remaining() {
                metrics::counter!("mcp_semaphore_acquisition_failures_total", "limit" => limit.clone(), "reason" => "rate")
                    .increment(1);
                return Err(OverCapacity::RateLimited {
                    limit,
                    per_minute: rpm,
                    retry_after: wait,
                }
                .into());
            }
            budget
                .spend(format!("paced for the {limit} limit"), tokio::time::sleep(wait))
                .await;
        }
    }

    /// The local schedule: zero (and counted) when a request may go now, else how long until it may.
    fn local_pace(&self, provider: &str, interval: Duration) -> Duration {
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let tat = local.get(provider).copied().unwrap_or(now).max(now);
        if tat > now {
            return tat - now;
        }
        local.insert(provider.to_owned(), tat + interval);
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_spaced_at_the_rate_and_a_wait_past_the_limit_fails_naming_it() {
        let rates = Rates::new(
            HashMap::from([("glm".to_owned(), 60)]),
            Duration::from_millis(1_500),
            None,
        );
        let budget = Budget::new(Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            rates.pace("glm", &budget).await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2), "60 a minute: one a second");
        rates.pace("kimi", &budget).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2), "kimi has no rate limit");
        // Three at once: one goes in 1 s; the other two would wait 2 s in all, past the 1.5 s allowed.
        let rates = Arc::new(rates);
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (rates, budget) = (Arc::clone(&rates), budget.clone());
                tokio::spawn(async move { rates.pace("glm", &budget).await })
            })
            .collect();
        let mut refused = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                refused.push(e.to_string());
            }
        }
        assert_eq!(
            refused.len(),
            2,
            "a wait past limits.max_wait_ms is refused: {refused:?}"
        );
        assert!(
            refused[0].contains("rpm:glm limit (60 requests a minute)"),
            "{refused:?}"
        );
    }
}

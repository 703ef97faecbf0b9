//! Resilience, one small type per mechanism: a call's single time [`budget::Budget`], owned concurrency
//! permits ([`limits`]), retries with full jitter and a retry budget ([`retry`]), per-model circuit
//! breakers ([`breaker`]), fallback chains ([`fallback`]) and the fleet-wide leases behind the global and
//! provider limits when replicas share Redis ([`fleet`]). See NOTES.md for the invariants.

pub mod breaker;
pub mod budget;
pub mod fallback;
pub mod fleet;
pub mod limits;
pub mod rate;
pub mod retry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{Config, ResilienceConfig};
use breaker::Breakers;
use limits::Limits;
use retry::RetryBudget;

/// The process's resilience state, built once from config and shared through the app.
#[derive(Debug)]
pub struct Resilience {
    pub config: ResilienceConfig,
    pub limits: Limits,
    pub breakers: Breakers,
    /// Requests-per-minute limits per provider (`limits.glm_rpm`, `limits.kimi_rpm`).
    pub rates: rate::Rates,
    retry_budgets: Mutex<HashMap<String, Arc<RetryBudget>>>,
}

impl Resilience {
    /// With `fleet`, the global and provider limits hold for every replica together.
    pub fn from_config(config: &Config, fleet: Option<Arc<fleet::FleetLink>>) -> Self {
        let l = &config.limits;
        let r = &config.resilience;
        let per_provider = HashMap::from([
            ("glm".to_owned(), l.glm_max_inflight.get()),
            ("kimi".to_owned(), l.kimi_max_inflight.get()),
        ]);
        let limits = Limits::new(
            l.global_max_inflight.get(),
            l.session_max_inflight.get(),
            per_provider,
            r.custom_max_inflight,
            r.queue,
        );
        let rpm = HashMap::from([("glm".to_owned(), r.glm_rpm), ("kimi".to_owned(), r.kimi_rpm)]);
        Self {
            rates: rate::Rates::new(rpm, r.queue.max_wait, fleet.clone()),
            limits: match fleet {
                Some(fleet) => limits.with_fleet(fleet),
                None => limits,
            },
            breakers: Breakers::new(r.breaker),
            retry_budgets: Mutex::default(),
            config: r.clone(),
        }
    }

    /// The retry budget shared by all calls to `provider`.
    pub fn retry_budget(&self, provider: &str) -> Arc<RetryBudget> {
        let mut map = self.retry_budgets.lock().unwrap_or_else(|e| e.into_inner());
        let ratio = self.config.retry_budget_ratio;
        map.entry(provider.to_owned())
            .or_insert_with(|| Arc::new(RetryBudget::new(ratio, 10.0)))
            .clone()
    }
}

//! Circuit breakers per provider and model: closed → open after `failures` in `window` → half-open after
//! `cooldown` (a limited number of probes) → closed after `close_after` successes. Open circuits fail fast.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub failures: u32,
    pub window: Duration,
    pub cooldown: Duration,
    pub half_open_probes: u32,
    pub close_after: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed { failures: VecDeque<Instant> },
    Open { until: Instant },
    HalfOpen { probes: u32, successes: u32 },
}

/// The circuit is open: calls fail fast until `retry_in` has passed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit open for {target}: it failed repeatedly; next probe in {} s", .retry_in.as_secs().max(1))]
pub struct BreakerOpen {
    pub target: String,
    pub retry_in: Duration,
}

#[derive(Debug)]
pub struct Breaker {
    target: String,
    config: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    fn new(target: String, config: BreakerConfig) -> Self {
        Self {
            target,
            config,
            state: Mutex::new(State::Closed {
                failures: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= *until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// May a call go through now? In half-open, only `half_open_probes` calls at a time may.
    pub fn admit(&self) -> Result<(), BreakerOpen> {
        let mut state = self.lock();
        let now = Instant::now();
        if let State::Open { until } = *state {
            if now < until {
                return Err(BreakerOpen {
                    target: self.target.clone(),
                    retry_in: until - now,
                });
            }
            *state = State::HalfOpen {
                probes: 0,
                successes: 0,
            };
            tracing::info!(target = %self.target, "circuit half-open: probing");
        }
        if let State::HalfOpen { probes, .. } = &mut *state {
            if *probes >= self.config.half_open_probes {
                return Err(BreakerOpen {
                    target: self.target.clone(),
                    retry_in: Duration::from_secs(1),
                });
            }
            *probes += 1;
        }
        Ok(())
    }

    pub fn on_success(&self) {
        let mut state = self.lock();
        match &mut *state {
            State::Closed { failures } => failures.clear(),
            State::HalfOpen { probes, successes } => {
                *probes = probes.saturating_sub(1);
                *successes += 1;
                if *successes >= self.config.close_after {
                    tracing::info!(target = %self.target, "circuit closed: upstream recovered");
                    *state = State::Closed {
                        failures: VecDeque::new(),
                    };
                }
            }
            State::Open { .. } => {}
        }
        self.publish(&state);
    }

    pub fn on_failure(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        let open = match &mut *state {
            State::Closed { failures } => {
                failures.push_back(now);
                while failures.front().is_some_and(|t| now - *t > self.config.window) {
                    failures.pop_front();
                }
                failures.len() as u32 >= self.config.failures
            }
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
        };
        if open {
            tracing::warn!(target = %self.target, cooldown_s = self.config.cooldown.as_secs(), "circuit opened");
            metrics::counter!("exai_circuit_opened_total").increment(1);
            *state = State::Open {
                until: now + self.config.cooldown,
            };
        }
        self.publish(&state);
    }

    /// A call admitted but ended without a verdict (cancelled): frees its half-open probe slot.
    pub fn on_abandon(&self) {
        if let State::HalfOpen { probes, .. } = &mut *self.lock() {
            *probes = probes.saturating_sub(1);
        }
    }

    fn publish(&self, state: &State) {
        let open = matches!(state, State::Open { .. }) as u8 as f64;
        metrics::gauge!("exai_circuit_open", "target" => self.target.clone()).set(open);
    }

    fn reset(&self) {
        *self.lock() = State::Closed {
            failures: VecDeque::new(),
        };
    }
}

/// Every breaker, by `provider/model`.
#[derive(Debug)]
pub struct Breakers {
    config: BreakerConfig,
    map: Mutex<HashMap<String, Arc<Breaker>>>,
}

impl Breakers {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            map: Mutex::default(),
        }
    }

    pub fn get(&self, provider: &str, model: &str) -> Arc<Breaker> {
        let target = format!("{provider}/{model}");
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(target.clone())
            .or_insert_with(|| Arc::new(Breaker::new(target, self.config)))
            .clone()
    }

    /// `(target, state)` for every breaker that has seen traffic, by name.
    pub fn states(&self) -> Vec<(String, BreakerState)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = map.iter().map(|(k, b)| (k.clone(), b.state())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Closes every circuit (the admin reset). Returns how many were not closed.
    pub fn reset_all(&self) -> usize {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let tripped = map.values().filter(|b| b.state() != BreakerState::Closed).count();
        map.values().for_each(|b| b.reset());
        tripped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failures: 3,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(30),
            half_open_probes: 1,
            close_after: 2,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_the_window_then_probes_and_closes() {
        let breakers = Breakers::new(config());
        let b = breakers.get("glm", "glm-4.6");
        for _ in 0..2 {
            b.admit().unwrap();
            b.on_failure();
        }
        tokio::time::sleep(Duration::from_secs(11)).await; // the first two fall out of the window
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure();
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        let err = b.admit().unwrap_err();
        assert!(err.to_string().contains("circuit open for glm/glm-4.6"), "{err}");

        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.admit().unwrap();
        assert!(b.admit().is_err(), "one probe at a time");
        b.on_success();
        b.admit().unwrap();
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            breakers.states(),
            vec![("glm/glm-4.6".to_owned(), BreakerState::Closed)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_reset_closes_everything() {
        let breakers = Breakers::new(config());
        let b = breakers.get("kimi", "k2");
        for _ in 0..3 {
            b.on_failure();
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        b.admit().unwrap();
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(breakers.reset_all(), 1);
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap();
    }
}

//! The skip window: after a Redis failure, fleet asks go straight to the `redis.on_failure` fallback for a while
//! instead of each paying `redis.timeout_ms`, while one probe at a time tries Redis again; a success closes it.
//!
//! The window lasts [`SKIP_FIRST`] after the first failure and doubles after every failed probe up to
//! [`SKIP_MAX`]. Only transitions are logged (failing, answering again), never each skipped ask.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{FleetError, OnFailure};

/// How long asks skip Redis after it first fails.
pub const SKIP_FIRST: Duration = Duration::from_secs(1);
/// The longest the window grows to while probes keep failing (so Redis coming back is noticed within it).
pub const SKIP_MAX: Duration = Duration::from_secs(30);

/// Whether Redis is believed to answer, and when to try it again if not.
#[derive(Debug)]
pub struct SkipWindow {
    on_failure: OnFailure,
    state: Mutex<State>,
    skipped: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    failure: Option<Failure>,
    /// A probe is asking Redis now; other asks keep skipping until it settles.
    probing: bool,
}

#[derive(Debug, Clone)]
struct Failure {
    since: SystemTime,
    started: Instant,
    last_error: String,
    backoff: Duration,
    skip_until: Instant,
}

/// The window as the `health` tool shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    /// When the current run of failures began; `None` while Redis answers.
    pub failing_since: Option<SystemTime>,
    /// The last failure's message, while failing.
    pub last_error: Option<String>,
    /// How much longer asks skip Redis before the next probe (zero: the next ask probes).
    pub skip_remaining: Duration,
    /// The current window length (doubles after each failed probe).
    pub backoff: Duration,
    /// A probe is asking Redis now.
    pub probing: bool,
    /// Asks that skipped Redis since start.
    pub skipped: u64,
}

impl SkipWindow {
    pub fn new(on_failure: OnFailure) -> Self {
        Self {
            on_failure,
            state: Mutex::default(),
            skipped: AtomicU64::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May `operation` ask Redis now? `Ok` with a guard to settle with the outcome, or the error to fall back on
    /// (counted in `exai_fleet_skipped_total{operation}`) while the window is open or another probe runs.
    pub fn admit(&self, operation: &'static str) -> Result<Ask<'_>, FleetError> {
        let mut state = self.state();
        let Some(failure) = &state.failure else {
            return Ok(Ask {
                window: self,
                probe: false,
            });
        };
        let now = Instant::now();
        if now >= failure.skip_until && !state.probing {
            state.probing = true;
            return Ok(Ask {
                window: self,
                probe: true,
            });
        }
        let error = FleetError(format!(
            "Redis failed {:.1} s ago and is not asked again for {} ms ({})",
            now.duration_since(failure.started).as_secs_f64(),
            failure.skip_until.saturating_duration_since(now).as_millis(),
            failure.last_error
        ));
        drop(state);
        self.skipped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("exai_fleet_skipped_total", "operation" => operation).increment(1);
        Err(error)
    }

    fn settle(&self, probe: bool, error: Option<&FleetError>) {
        let mut state = self.state();
        if probe {
            state.probing = false;
        }
        let now = Instant::now();
        match (error, &mut state.failure) {
            (None, None) => {}
            (None, Some(failure)) => {
                tracing::info!(
                    failed_for_secs = now.duration_since(failure.started).as_secs_f64(),
                    "Redis answers again; fleet limits are shared through it again"
                );
                state.failure = None;
            }
            (Some(e), None) => {
                let action = match self.on_failure {
                    OnFailure::Open => "running on local limits (EXAI_REDIS_ON_FAILURE=open)",
                    OnFailure::Closed => "refusing calls that need a fleet limit (EXAI_REDIS_ON_FAILURE=closed)",
                };
                tracing::warn!(
                    error = %e,
                    "Redis failed; {action}, asking it again (one probe at a time) after {} s, backing off to {} s",
                    SKIP_FIRST.as_secs(),
                    SKIP_MAX.as_secs()
                );
                state.failure = Some(Failure {
                    since: SystemTime::now(),
                    started: now,
                    last_error: e.0.clone(),
                    backoff: SKIP_FIRST,
                    skip_until: now + SKIP_FIRST,
                });
            }
            (Some(e), Some(failure)) => {
                failure.last_error = e.0.clone();
                // Asks that were already in flight when Redis failed do not grow the window; failed probes do.
                if probe {
                    failure.backoff = (failure.backoff * 2).min(SKIP_MAX);
                    failure.skip_until = now + failure.backoff;
                    tracing::debug!(error = %e, backoff_ms = failure.backoff.as_millis() as u64, "Redis probe failed");
                }
            }
        }
    }

    /// The window now.
    pub fn snapshot(&self) -> WindowState {
        let state = self.state();
        let now = Instant::now();
        let failure = state.failure.as_ref();
        WindowState {
            failing_since: failure.map(|f| f.since),
            last_error: failure.map(|f| f.last_error.clone()),
            skip_remaining: failure.map_or(Duration::ZERO, |f| f.skip_until.saturating_duration_since(now)),
            backoff: failure.map_or(Duration::ZERO, |f| f.backoff),
            probing: state.probing,
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// Leave to ask Redis once. Settle it with the outcome; dropped unsettled (the call was cancelled), it only
/// frees the probe slot.
#[must_use]
pub struct Ask<'a> {
    window: &'a SkipWindow,
    probe: bool,
}

impl Ask<'_> {
    /// Records how the ask went: a success closes the window, a failure opens or (for a probe) widens it.
    pub fn settle<T>(mut self, outcome: &Result<T, FleetError>) {
        self.window.settle(self.probe, outcome.as_ref().err());
        self.probe = false;
    }
}

impl Drop for Ask<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.window.state().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Result<(), FleetError> {
        Err(FleetError("timed out".into()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_skips_asks_then_lets_one_probe_through_and_backs_off_until_a_success() {
        let w = SkipWindow::new(OnFailure::Open);
        w.admit("acquire").unwrap().settle(&Ok(()));
        assert_eq!(w.snapshot().failing_since, None);
        w.admit("acquire").unwrap().settle(&fail());
        let skipped = w.admit("acquire").err().expect("skips right after a failure");
        assert!(skipped.0.contains("timed out"), "{skipped}");
        tokio::time::advance(SKIP_FIRST).await;
        let probe = w.admit("acquire").expect("one probe after the window");
        assert!(w.admit("pace").is_err(), "one probe at a time");
        assert!(w.snapshot().probing);
        probe.settle(&fail());
        assert_eq!(
            w.snapshot().backoff,
            SKIP_FIRST * 2,
            "a failed probe doubles the window"
        );
        tokio::time::advance(SKIP_FIRST).await;
        assert!(w.admit("acquire").is_err(), "still inside the doubled window");
        for _ in 0..10 {
            tokio::time::advance(SKIP_MAX).await;
            w.admit("acquire").unwrap().settle(&fail());
        }
        assert_eq!(w.snapshot().backoff, SKIP_MAX, "capped");
        tokio::time::advance(SKIP_MAX).await;
        w.admit("acquire").unwrap().settle(&Ok(()));
        let s = w.snapshot();
        assert_eq!((s.failing_since, s.last_error, s.probing), (None, None, false));
        assert_eq!(s.skipped, 3);
        assert!(w.admit("acquire").is_ok(), "closed after a success");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_frees_the_probe_slot_and_late_failures_do_not_widen_the_window() {
        let w = SkipWindow::new(OnFailure::Closed);
        let in_flight = w.admit("acquire").unwrap();
        w.admit("acquire").unwrap().settle(&fail());
        in_flight.settle(&fail());
        assert_eq!(
            w.snapshot().backoff,
            SKIP_FIRST,
            "an ask begun before the failure does not double it"
        );
        tokio::time::advance(SKIP_FIRST).await;
        drop(w.admit("acquire").unwrap());
        assert!(!w.snapshot().probing);
        assert!(w.admit("acquire").is_ok(), "the next ask probes");
    }
}

//! Fleet-wide limits: the global and provider limits held for every replica together, through a shared
//! [`Fleet`] (Redis in `exai-fleet`; core knows only this trait). A fleet slot is a [`Lease`] that its holder
//! renews while the call runs and that lapses on its own when the holder dies, so a killed replica cannot leak
//! slots. The local limit still applies first; the lease is an extra permit held by the same [`super::limits::Permit`].
//!
//! When the fleet cannot be asked, `redis.on_failure` decides: `closed` refuses the call with
//! [`FleetUnavailable`], `open` carries on under the local limits alone. Either way the choice is logged
//! (rate-limited) and counted in `exai_fleet_fallbacks_total{limit,mode}`.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

/// A held fleet slot. Dropping it stops its renewal and gives the slot back.
pub struct Lease {
    _held: Box<dyn Send + Sync>,
}

impl Lease {
    /// Wraps whatever keeps the slot (its renewal and release on `Drop`).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self { _held: Box::new(held) }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

/// The fleet's store could not answer (unreachable, timed out, refused the command).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FleetError(pub String);

/// A call refused because the fleet limit could not be checked and `redis.on_failure` is `closed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "fleet unavailable: the {limit} limit is shared through Redis, which did not answer ({error}); \
     EXAI_REDIS_ON_FAILURE=closed refuses calls until it does"
)]
pub struct FleetUnavailable {
    pub limit: String,
    pub error: FleetError,
}

/// The shared store of fleet slots.
pub trait Fleet: Send + Sync + std::fmt::Debug {
    /// Asks once for a slot of `limit` (at most `capacity` held fleet-wide): `Some` when granted, `None` when
    /// the limit is full. Never waits for a slot to free up, and answers within the store's own timeout.
    fn try_acquire<'a>(&'a self, limit: &'a str, capacity: u32) -> BoxFuture<'a, Result<Option<Lease>, FleetError>>;

    /// Asks once to send one request under `limit`'s rate, one request per `interval` fleet-wide (GCRA, no
    /// burst): `Duration::ZERO` when it may go now (and it is counted), else how long until it may ask again.
    fn pace<'a>(&'a self, limit: &'a str, interval: Duration) -> BoxFuture<'a, Result<Duration, FleetError>>;
}

/// What to do when the fleet cannot be asked (`redis.on_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Refuse the call.
    Closed,
    /// Carry on under the local limits.
    Open,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Closed => "closed",
            OnFailure::Open => "open",
        }
    }
}

/// A fleet plus the failure policy, shared by the limiters that use it.
#[derive(Debug)]
pub struct FleetLink {
    pub fleet: std::sync::Arc<dyn Fleet>,
    pub on_failure: OnFailure,
    /// The response cache's shared layer, when the fleet's store offers one.
    pub cache: Option<std::sync::Arc<dyn crate::tools::model_call::cache::SharedCache>>,
    last_warning: Mutex<Option<Instant>>,
}

/// How often at most a fleet failure is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl FleetLink {
    pub fn new(fleet: std::sync::Arc<dyn Fleet>, on_failure: OnFailure) -> Self {
        Self {
            fleet,
            on_failure,
            cache: None,
            last_warning: Mutex::new(None),
        }
    }

    /// Shares the response cache through `cache` too.
    pub fn with_cache(mut self, cache: std::sync::Arc<dyn crate::tools::model_call::cache::SharedCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Logs (at most every 10 s) and counts that `limit` could not be checked, and what was done about it.
    pub(crate) fn failed(&self, limit: &str, error: &FleetError) {
        let mode = self.on_failure.as_str();
        metrics::counter!("exai_fleet_fallbacks_total", "limit" => limit.to_owned(), "mode" => mode).increment(1);
        let now = Instant::now();
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            *last = Some(now);
            match self.on_failure {
                OnFailure::Open => {
                    tracing::warn!(%limit, %error, "fleet limits unavailable; running on local limits (EXAI_REDIS_ON_FAILURE=open)")
                }
                OnFailure::Closed => {
                    tracing::warn!(%limit, %error, "fleet limits unavailable; refusing calls (EXAI_REDIS_ON_FAILURE=closed)")
                }
            }
        }
    }
}

/// The fleet limit's name for a local limiter: `global`, `provider:glm`, ...
pub fn limit_key(limiter_name: &str) -> String {
    limiter_name.replacen("provider ", "provider:", 1)
}

//! Fleet-wide limits: the global and provider limits held for every replica together, through a shared
//! [`Fleet`] (Redis in `exai-fleet`; core knows only this trait). A fleet slot is a [`Lease`] that its holder
//! renews while the call runs and that lapses on its own when the holder dies, so a killed replica cannot leak
//! slots. The local limit still applies first; the lease is an extra permit held by the same [`super::limits::Permit`].
//!
//! When the fleet cannot be asked, `redis.on_failure` decides: `closed` refuses the call with
//! [`FleetUnavailable`], `open` carries on under the local limits alone, counted in
//! `exai_fleet_fallbacks_total{limit,mode}`. After a failure the [`window`] skips Redis for a while (logged once).

pub mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::tools::model_call::cache::SharedCache;
use window::{SkipWindow, WindowState};

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

    /// Checks that the store answers, within its own timeout.
    fn ping(&self) -> BoxFuture<'_, Result<(), FleetError>>;
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

/// A fleet plus the failure policy and the skip window, shared by the limiters (and the response cache) that
/// use it. Every ask goes through here, so a failing Redis costs `redis.timeout_ms` once per window, not per call.
#[derive(Debug)]
pub struct FleetLink {
    fleet: Arc<dyn Fleet>,
    pub on_failure: OnFailure,
    /// The response cache's shared layer, when the fleet's store offers one (asked through the same window).
    pub cache: Option<Arc<dyn SharedCache>>,
    window: Arc<SkipWindow>,
    held: Arc<AtomicU64>,
    fallbacks: AtomicU64,
}

/// The fleet as the `health` tool and `/readyz` show it.
#[derive(Debug, Clone)]
pub struct LinkState {
    pub on_failure: OnFailure,
    pub window: WindowState,
    /// Fleet leases this replica holds now.
    pub leases_held: u64,
    /// Fleet limits not checked because Redis failed or was skipped, since start.
    pub fallbacks: u64,
}

impl FleetLink {
    pub fn new(fleet: Arc<dyn Fleet>, on_failure: OnFailure) -> Self {
        Self {
            fleet,
            on_failure,
            cache: None,
            window: Arc::new(SkipWindow::new(on_failure)),
            held: Arc::default(),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Shares the response cache through `cache` too, behind the same skip window.
    pub fn with_cache(mut self, cache: Arc<dyn SharedCache>) -> Self {
        self.cache = Some(Arc::new(WindowedCache {
            inner: cache,
            window: Arc::clone(&self.window),
        }));
        self
    }

    /// [`Fleet::try_acquire`], unless the skip window is open. A granted lease is counted as held by this replica.
    pub async fn try_acquire(&self, limit: &str, capacity: u32) -> Result<Option<Lease>, FleetError> {
        let ask = self.window.admit("acquire")?;
        let outcome = self.fleet.try_acquire(limit, capacity).await;
        ask.settle(&outcome);
        Ok(outcome?.map(|lease| {
            self.held.fetch_add(1, Ordering::Relaxed);
            Lease::new((lease, HeldCount(Arc::clone(&self.held))))
        }))
    }

    /// [`Fleet::pace`], unless the skip window is open.
    pub async fn pace(&self, limit: &str, interval: Duration) -> Result<Duration, FleetError> {
        let ask = self.window.admit("pace")?;
        let outcome = self.fleet.pace(limit, interval).await;
        ask.settle(&outcome);
        outcome
    }

    /// [`Fleet::ping`], unless the skip window is open; a success closes the window.
    pub async fn ping(&self) -> Result<(), FleetError> {
        let ask = self.window.admit("ping")?;
        let outcome = self.fleet.ping().await;
        ask.settle(&outcome);
        outcome
    }

    /// Counts that `limit` could not be checked and what was done about it (the skip window logs the failure,
    /// once per outage).
    pub(crate) fn failed(&self, limit: &str, error: &FleetError) {
        let mode = self.on_failure.as_str();
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("exai_fleet_fallbacks_total", "limit" => limit.to_owned(), "mode" => mode).increment(1);
        tracing::debug!(%limit, %error, mode, "fleet limit not checked");
    }

    /// The link now.
    pub fn state(&self) -> LinkState {
        LinkState {
            on_failure: self.on_failure,
            window: self.window.snapshot(),
            leases_held: self.held.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }
}

/// Counts a lease as held by this replica until it is dropped.
struct HeldCount(Arc<AtomicU64>);

impl Drop for HeldCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The shared cache behind the fleet's skip window: a skipped or failed Redis is a cache miss, paid once.
#[derive(Debug)]
struct WindowedCache {
    inner: Arc<dyn SharedCache>,
    window: Arc<SkipWindow>,
}

impl SharedCache for WindowedCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, FleetError>> {
        Box::pin(async move {
            let ask = self.window.admit("cache_get")?;
            let outcome = self.inner.get(key).await;
            ask.settle(&outcome);
            outcome
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: String, ttl: Duration) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let ask = self.window.admit("cache_set")?;
            let outcome = self.inner.set(key, value, ttl).await;
            ask.settle(&outcome);
            outcome
        })
    }
}

/// The fleet limit's name for a local limiter: `global`, `provider:glm`, ...
pub fn limit_key(limiter_name: &str) -> String {
    limiter_name.replacen("provider ", "provider:", 1)
}

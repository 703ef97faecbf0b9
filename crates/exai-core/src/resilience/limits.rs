//! Concurrency limits whose permits are owned guards: global, per session and per provider. Waiting is bounded
//! by a queue length, a maximum wait and the call's budget; past either, the call fails fast with
//! [`OverCapacity`] naming the limit and when to retry. Every permit comes from here; `Drop` releases it.
//! With a fleet (`EXAI_REDIS_URL`), the global and provider limiters also take a fleet lease once the local
//! permit is granted (see [`super::fleet`]); the lease lives in the same [`Permit`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::budget::Budget;
use super::fleet::{FleetLink, FleetUnavailable, Lease, OnFailure, limit_key};

/// Why a permit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverCapacity {
    #[error(
        "over capacity: the {limit} limit ({capacity} calls at once) is full and {waiting} calls are already \
         queued; retry in about {} s",
        .retry_after.as_secs().max(1)
    )]
    QueueFull {
        limit: String,
        capacity: u32,
        waiting: usize,
        retry_after: Duration,
    },
    #[error(
        "over capacity: waited {} ms for the {limit} limit ({capacity} calls at once) without a free slot; retry in \
         about {} s",
        .waited.as_millis(),
        .retry_after.as_secs().max(1)
    )]
    WaitedTooLong {
        limit: String,
        capacity: u32,
        waited: Duration,
        retry_after: Duration,
    },
    #[error(
        "over capacity: the {limit} limit ({per_minute} requests a minute) allows no request within the time this \
         call may wait; retry in about {} s",
        .retry_after.as_secs().max(1)
    )]
    RateLimited {
        limit: String,
        per_minute: u32,
        retry_after: Duration,
    },
}

impl OverCapacity {
    pub fn retry_after(&self) -> Duration {
        match self {
            OverCapacity::QueueFull { retry_after, .. }
            | OverCapacity::WaitedTooLong { retry_after, .. }
            | OverCapacity::RateLimited { retry_after, .. } => *retry_after,
        }
    }
}

/// Why [`Limiter::acquire`] gave no permit: the limit is full, or its fleet could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(transparent)]
    OverCapacity(#[from] OverCapacity),
    #[error(transparent)]
    FleetUnavailable(#[from] FleetUnavailable),
}

/// How long a caller may wait for a permit, and how many may wait.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    pub max_waiters: usize,
    pub max_wait: Duration,
}

/// The longest pause between a replica's asks for a fleet slot while the fleet is full (one asker per replica and
/// limit, so at most this many Redis calls a second per contended limit and replica: 1000 / 40 = 25).
const FLEET_POLL_MAX: Duration = Duration::from_millis(40);

/// How many times the leak check reads the counts before it calls a mismatch a leak.
const LEAK_READS: usize = 3;

/// One limit: a semaphore with a bounded queue.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    capacity: u32,
    sem: Arc<Semaphore>,
    queue: QueuePolicy,
    waiting: AtomicUsize,
    /// Set for limits held fleet-wide (global, providers); never for sessions.
    fleet: Option<Arc<FleetLink>>,
    /// This replica's calls waiting for a fleet slot, in arrival order (tokio's mutex is FIFO): only the first asks
    /// Redis, so a newcomer cannot overtake a call that has waited longer, and each replica has one asker per limit.
    fleet_turn: tokio::sync::Mutex<()>,
}

impl Limiter {
    pub fn new(name: impl Into<String>, capacity: u32, queue: QueuePolicy) -> Arc<Self> {
        Self::shared(name, capacity, queue, None)
    }

    /// A limiter that, with `fleet`, also holds its capacity across every replica.
    pub fn shared(
        name: impl Into<String>,
        capacity: u32,
        queue: QueuePolicy,
        fleet: Option<Arc<FleetLink>>,
    ) -> Arc<Self> {
        let limiter = Arc::new(Self {
            name: name.into(),
            capacity,
            sem: Arc::new(Semaphore::new(capacity as usize)),
            queue,
            waiting: AtomicUsize::new(0),
            fleet,
            fleet_turn: tokio::sync::Mutex::new(()),
        });
        metrics::gauge!("mcp_semaphore_expected_value", "limit" => limiter.label()).set(capacity as f64);
        limiter
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Permits held right now.
    pub fn in_use(&self) -> u32 {
        self.capacity - self.sem.available_permits() as u32
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The metrics label: per-session limiters share `session` so label sets stay bounded.
    fn label(&self) -> String {
        if self.name.starts_with("session ") {
            "session".to_owned()
        } else {
            self.name.clone()
        }
    }

    /// Waits (bounded) for a permit — and, for a fleet-wide limit, then for a fleet lease — recording the wait
    /// in `budget`. Both waits together stay within `limits.max_wait_ms` and the call's budget.
    pub async fn acquire(self: &Arc<Self>, budget: &Budget) -> Result<Permit, LimitError> {
        let start = Instant::now();
        let mut permit = self.acquire_local(budget).await?;
        if let Some(link) = &self.fleet {
            let max_wait = self.queue.max_wait.saturating_sub(start.elapsed());
            permit.lease = self.lease(link, budget, max_wait).await?;
        }
        Ok(permit)
    }

    /// Waits (bounded) for this replica's permit only, never asking the fleet: for calls that reach no model
    /// (`health`, `status`, ...), which must keep answering while Redis is down, even with
    /// `EXAI_REDIS_ON_FAILURE=closed`.
    pub async fn acquire_here(self: &Arc<Self>, budget: &Budget) -> Result<Permit, LimitError> {
        Ok(self.acquire_local(budget).await?)
    }

    /// Asks the fleet for a slot until granted, or `max_wait` (or the budget) runs out. A fleet that cannot be
    /// asked gives no lease (`open`) or refuses the call (`closed`).
    async fn lease(&self, link: &FleetLink, budget: &Budget, max_wait: Duration) -> Result<Option<Lease>, LimitError> {
        let limit = limit_key(&self.name);
        let start = Instant::now();
        let deadline = start + max_wait.min(budget.remaining());
        // Wait for this replica's turn first. An uncontended turn is taken even past `deadline` (the lock is tried
        // before the timer), so a call whose local wait used up the budget for waiting still gets one ask.
        let Ok(_turn) = tokio::time::timeout_at(deadline, self.fleet_turn.lock()).await else {
            return Err(self.waited_too_long(limit, start.elapsed(), budget));
        };
        // Every replica's asker polls at about the same short pace (10 ms, growing to `FLEET_POLL_MAX`), so a freed
        // slot goes to any of them with about equal chance; a long backoff would hand it to whoever came last.
        let mut pause = Duration::from_millis(10);
        loop {
            // Each ask is bounded by the fleet's own timeout and the call's budget; `deadline` only ends the
            // waiting, so a call whose local wait used up `limits.max_wait_ms` still gets one ask.
            let ask = link.try_acquire(&limit, self.capacity);
            let asked = tokio::time::timeout_at(budget.deadline(), ask).await;
            match asked {
                Ok(Ok(Some(lease))) => {
                    let waited = start.elapsed();
                    if waited >= Duration::from_millis(1) {
                        budget.record(format!("queued for the fleet {limit} limit"), waited);
                    }
                    metrics::counter!("exai_fleet_acquisitions_total", "limit" => limit, "outcome" => "granted")
                        .increment(1);
                    return Ok(Some(lease));
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    link.failed(&limit, &error);
                    return match link.on_failure {
                        OnFailure::Open => Ok(None),
                        OnFailure::Closed => Err(FleetUnavailable { limit, error }.into()),
                    };
                }
                Err(_) => break,
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let jittered = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
            tokio::time::sleep_until((now + jittered).min(deadline)).await;
            pause = (pause * 2).min(FLEET_POLL_MAX);
        }
        Err(self.waited_too_long(limit, start.elapsed(), budget))
    }

    /// The over-capacity answer of a call that waited `waited` for a fleet slot and got none.
    fn waited_too_long(&self, limit: String, waited: Duration, budget: &Budget) -> LimitError {
        budget.record(format!("queued for the fleet {limit} limit"), waited);
        metrics::counter!("exai_fleet_acquisitions_total", "limit" => limit.clone(), "outcome" => "timeout")
            .increment(1);
        OverCapacity::WaitedTooLong {
            limit: format!("fleet {limit}"),
            capacity: self.capacity,
            waited,
            retry_after: Duration::from_secs(1).max(self.queue.max_wait / 4),
        }
        .into()
    }

    async fn acquire_local(self: &Arc<Self>, budget: &Budget) -> Result<Permit, OverCapacity> {
        let label = self.label();
        if let Ok(permit) = self.sem.clone().try_acquire_owned() {
            return Ok(self.granted(permit, Duration::ZERO, label));
        }
        let retry_after = Duration::from_secs(1).max(self.queue.max_wait / 4);
        if self.waiting() >= self.queue.max_waiters {
            metrics::counter!("mcp_semaphore_acquisition_failures_total", "limit" => label, "reason" => "queue_full")
                .increment(1);
            return Err(OverCapacity::QueueFull {
                limit: self.name.clone(),
                capacity: self.capacity,
                waiting: self.waiting(),
                retry_after,
            });
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiter = WaiterGuard(self);
        let start = Instant::now();
        let wait = self.queue.max_wait.min(budget.remaining());
        let got = tokio::time::timeout(wait, self.sem.clone().acquire_owned()).await;
        let waited = start.elapsed();
        budget.record(format!("queued for the {} limit", self.name), waited);
        match got {
            Ok(Ok(permit)) => Ok(self.granted(permit, waited, label)),
            _ => {
                metrics::counter!("mcp_semaphore_acquisition_failures_total", "limit" => label, "reason" => "timeout")
                    .increment(1);
                Err(OverCapacity::WaitedTooLong {
                    limit: self.name.clone(),
                    capacity: self.capacity,
                    waited,
                    retry_after,
                })
            }
        }
    }

    fn granted(self: &Arc<Self>, permit: OwnedSemaphorePermit, waited: Duration, label: String) -> Permit {
        metrics::histogram!("mcp_semaphore_wait_seconds", "limit" => label).record(waited.as_secs_f64());
        self.publish();
        Permit {
            lease: None,
            _permit: Some(permit),
            limiter: Arc::clone(self),
        }
    }

    /// Publishes permits in use (and, for a provider limit, its concurrent upstream requests).
    fn publish(&self) {
        let in_use = self.in_use() as f64;
        metrics::gauge!("mcp_semaphore_current_value", "limit" => self.label()).set(in_use);
        if let Some(provider) = self.name.strip_prefix("provider ") {
            metrics::gauge!("mcp_concurrent_requests", "provider" => provider.to_owned()).set(in_use);
        }
    }
}

struct WaiterGuard<'a>(&'a Limiter);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A held slot of one limit. Dropping it — on any path — frees the slot.
#[derive(Debug)]
pub struct Permit {
    /// The fleet slot, for a fleet-wide limit whose fleet answered.
    lease: Option<Lease>,
    _permit: Option<OwnedSemaphorePermit>,
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        drop(self.lease.take());
        drop(self._permit.take());
        self.limiter.publish();
    }
}

/// Every limit of the process: one global, one per provider (created on first use), one per session.
#[derive(Debug)]
pub struct Limits {
    pub global: Arc<Limiter>,
    providers: Mutex<HashMap<String, Arc<Limiter>>>,
    provider_capacity: HashMap<String, u32>,
    default_provider_capacity: u32,
    session_capacity: u32,
    sessions: Mutex<HashMap<String, Weak<Limiter>>>,
    queue: QueuePolicy,
    fleet: Option<Arc<FleetLink>>,
}

impl Limits {
    /// `provider_capacity` names the providers with their own limits (`glm`, `kimi`); any other provider gets
    /// `default_provider_capacity`.
    pub fn new(
        global: u32,
        session: u32,
        provider_capacity: HashMap<String, u32>,
        default_provider_capacity: u32,
        queue: QueuePolicy,
    ) -> Self {
        Self {
            global: Limiter::new("global", global, queue),
            providers: Mutex::default(),
            provider_capacity,
            default_provider_capacity,
            session_capacity: session,
            sessions: Mutex::default(),
            queue,
            fleet: None,
        }
    }

    /// Holds the global and provider limits fleet-wide through `fleet` (session limits stay local).
    pub fn with_fleet(mut self, fleet: Arc<FleetLink>) -> Self {
        self.global = Limiter::shared("global", self.global.capacity, self.queue, Some(Arc::clone(&fleet)));
        self.fleet = Some(fleet);
        self
    }

    /// The fleet, when limits are held fleet-wide.
    pub fn fleet(&self) -> Option<&Arc<FleetLink>> {
        self.fleet.as_ref()
    }

    /// The limiter for `provider` (the resolved model's provider, never the tool).
    pub fn provider(&self, provider: &str) -> Arc<Limiter> {
        let mut map = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(provider.to_owned())
            .or_insert_with(|| {
                let cap = self
                    .provider_capacity
                    .get(provider)
                    .copied()
                    .unwrap_or(self.default_provider_capacity);
                Limiter::shared(format!("provider {provider}"), cap, self.queue, self.fleet.clone())
            })
            .clone()
    }

    /// The limiter for one client session; it lives while some call of the session holds it.
    pub fn session(&self, session: &str) -> Arc<Limiter> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = map.get(session).and_then(Weak::upgrade) {
            return l;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let l = Limiter::new(format!("session {session}"), self.session_capacity, self.queue);
        map.insert(session.to_owned(), Arc::downgrade(&l));
        l
    }

    /// Permits held across every provider limiter.
    pub fn provider_permits_in_use(&self) -> u32 {
        self.providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|l| l.in_use())
            .sum()
    }

    /// Snapshot of every non-session limit: (name, in use, capacity, waiting).
    pub fn snapshot(&self) -> Vec<(String, u32, u32, usize)> {
        let mut out = vec![(
            self.global.name.clone(),
            self.global.in_use(),
            self.global.capacity,
            self.global.waiting(),
        )];
        let providers = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&String> = providers.keys().collect();
        names.sort();
        for n in names {
            let l = &providers[n];
            out.push((l.name.clone(), l.in_use(), l.capacity, l.waiting()));
        }
        out
    }

    /// The built-in leak check: global permits in use can never exceed calls in flight (each call enters the
    /// in-flight count before taking its permit and leaves after dropping it). A violation is a bug.
    ///
    /// The two counts cannot be read at one instant: a call that enters and takes its permit between the reads
    /// looks like a leak for that moment. A leak persists, so only a mismatch seen on every one of a few fresh
    /// reads of `inflight` (the current count of calls in flight) is reported.
    pub fn check(&self, inflight: impl Fn() -> usize) -> bool {
        let (mut in_use, mut running) = (0, 0);
        for _ in 0..LEAK_READS {
            running = inflight();
            in_use = self.global.in_use() as usize;
            if in_use <= running {
                return true;
            }
        }
        tracing::error!(
            in_use,
            inflight = running,
            "permit accounting mismatch: more global permits held than calls running"
        );
        metrics::counter!("mcp_semaphore_invariant_violations_total").increment(1);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_waiters: usize, max_wait_ms: u64) -> QueuePolicy {
        QueuePolicy {
            max_waiters,
            max_wait: Duration::from_millis(max_wait_ms),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permits_free_on_every_exit_path_including_panic_and_cancel() {
        let l = Limiter::new("provider kimi", 2, queue(4, 1000));
        let b = Budget::new(Duration::from_secs(60));
        let p1 = l.acquire(&b).await.unwrap();
        assert_eq!(l.in_use(), 1);
        drop(p1);
        assert_eq!(l.in_use(), 0);

        // Panic while holding.
        let (l2, b2) = (l.clone(), b.clone());
        let r = tokio::spawn(async move {
            let _p = l2.acquire(&b2).await.unwrap();
            panic!("boom");
        })
        .await;
        assert!(r.is_err());
        assert_eq!(l.in_use(), 0);

        // Cancelled while holding (the task is aborted).
        let (l3, b3) = (l.clone(), b.clone());
        let task = tokio::spawn(async move {
            let _p = l3.acquire(&b3).await.unwrap();
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        assert_eq!(l.in_use(), 1);
        task.abort();
        let _ = task.await;
        assert_eq!(l.in_use(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_fails_fast_and_a_long_wait_gives_up_naming_the_limit() {
        let l = Limiter::new("provider glm", 1, queue(1, 500));
        let b = Budget::new(Duration::from_secs(60));
        let held = l.acquire(&b).await.unwrap();
        let (l2, b2) = (l.clone(), b.clone());
        let waiter = tokio::spawn(async move { l2.acquire(&b2).await.map(drop) });
        tokio::task::yield_now().await;
        assert_eq!(l.waiting(), 1);
        let full = l.acquire(&b).await.unwrap_err();
        assert!(
            matches!(full, LimitError::OverCapacity(OverCapacity::QueueFull { .. })),
            "{full}"
        );
        assert!(
            full.to_string().contains("provider glm limit (1 calls at once)"),
            "{full}"
        );
        let timed_out = waiter.await.unwrap().unwrap_err();
        assert!(
            matches!(timed_out, LimitError::OverCapacity(OverCapacity::WaitedTooLong { .. })),
            "{timed_out}"
        );
        assert_eq!(l.waiting(), 0);
        drop(held);
        assert!(
            b.ledger().contains("queued for the provider glm limit 500 ms"),
            "{}",
            b.ledger()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_never_outlasts_the_call_budget() {
        let l = Limiter::new("global", 1, queue(8, 60_000));
        let _held = l.acquire(&Budget::new(Duration::from_secs(600))).await.unwrap();
        let short = Budget::new(Duration::from_millis(200));
        let start = Instant::now();
        assert!(l.acquire(&short).await.is_err());
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn provider_and_session_limiters_are_shared_by_name() {
        let limits = Limits::new(4, 2, HashMap::from([("kimi".to_owned(), 3)]), 5, queue(4, 100));
        assert!(Arc::ptr_eq(&limits.provider("kimi"), &limits.provider("kimi")));
        assert_eq!(limits.provider("kimi").capacity(), 3);
        assert_eq!(limits.provider("ollama").capacity(), 5);
        let s = limits.session("abc");
        assert!(Arc::ptr_eq(&s, &limits.session("abc")));
        drop(s);
        assert_eq!(
            limits.session("abc").capacity(),
            2,
            "recreated after the last holder left"
        );
        let b = Budget::new(Duration::from_secs(1));
        let _p = limits.global.acquire(&b).await.unwrap();
        assert!(limits.check(|| 1));
        assert!(!limits.check(|| 0), "a permit held with no call in flight is a leak");
        // A call that entered between the two reads is counted on the next read: not a leak.
        let reads = std::cell::Cell::new(0);
        let arriving = || {
            reads.set(reads.get() + 1);
            if reads.get() == 1 { 0 } else { 1 }
        };
        assert!(limits.check(arriving), "a mismatch gone on the next read is not a leak");
    }

    /// A fleet in memory: `slots` free slots per limit, or down.
    #[derive(Debug)]
    struct MemFleet {
        free: Arc<Mutex<u32>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl super::super::fleet::Fleet for MemFleet {
        fn pace<'a>(
            &'a self,
            _limit: &'a str,
            _interval: Duration,
        ) -> futures::future::BoxFuture<'a, Result<Duration, super::super::fleet::FleetError>> {
            Box::pin(async { Ok(Duration::ZERO) })
        }

        fn ping(&self) -> futures::future::BoxFuture<'_, Result<(), super::super::fleet::FleetError>> {
            Box::pin(async { Ok(()) })
        }

        fn try_acquire<'a>(
            &'a self,
            _limit: &'a str,
            _capacity: u32,
        ) -> futures::future::BoxFuture<'a, Result<Option<Lease>, super::super::fleet::FleetError>> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Err(super::super::fleet::FleetError("connection refused".into()));
                }
                let mut free = self.free.lock().unwrap();
                if *free == 0 {
                    return Ok(None);
                }
                *free -= 1;
                struct Slot(Arc<Mutex<u32>>);
                impl Drop for Slot {
                    fn drop(&mut self) {
                        *self.0.lock().unwrap() += 1;
                    }
                }
                Ok(Some(Lease::new(Slot(Arc::clone(&self.free)))))
            })
        }
    }

    fn fleet_limits(free: u32, on_failure: OnFailure) -> (Limits, Arc<MemFleet>) {
        let mem = Arc::new(MemFleet {
            free: Arc::new(Mutex::new(free)),
            down: Default::default(),
        });
        let link = Arc::new(FleetLink::new(mem.clone(), on_failure));
        let limits = Limits::new(8, 8, HashMap::from([("glm".to_owned(), 4)]), 4, queue(8, 500)).with_fleet(link);
        (limits, mem)
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_limit_is_an_extra_lease_waited_for_within_the_limits_wait() {
        let (limits, mem) = fleet_limits(1, OnFailure::Closed);
        let b = Budget::new(Duration::from_secs(60));
        let held = limits.provider("glm").acquire(&b).await.unwrap();
        assert_eq!(*mem.free.lock().unwrap(), 0, "the permit holds a lease");
        let start = Instant::now();
        let full = limits.provider("glm").acquire(&b).await.unwrap_err();
        assert!(full.to_string().contains("fleet provider:glm limit"), "{full}");
        assert!(start.elapsed() <= Duration::from_millis(500), "{:?}", start.elapsed());
        assert_eq!(
            limits.provider("glm").in_use(),
            1,
            "the local permit went back with the refusal"
        );
        drop(held);
        assert_eq!(*mem.free.lock().unwrap(), 1, "dropping the permit frees the lease");
        let _again = limits.global.acquire(&b).await.unwrap();
        assert!(
            limits.session("s").acquire(&b).await.is_ok(),
            "sessions never ask the fleet"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_replicas_calls_get_fleet_slots_in_arrival_order() {
        let (limits, _mem) = fleet_limits(1, OnFailure::Closed);
        let limits = Arc::new(limits);
        let b = Budget::new(Duration::from_secs(60));
        let held = limits.provider("glm").acquire(&b).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for i in 1..=3 {
            let (limits, order) = (Arc::clone(&limits), Arc::clone(&order));
            calls.push(tokio::spawn(async move {
                let b = Budget::new(Duration::from_secs(60));
                let permit = limits.provider("glm").acquire(&b).await.unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(permit);
            }));
            // Later arrivals would poll sooner than a caller whose backoff has grown: they must still wait their turn.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(held);
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            [1, 2, 3],
            "fleet slots go first come, first served"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_that_cannot_be_asked_fails_closed_or_open_as_configured() {
        let b = Budget::new(Duration::from_secs(60));
        let (closed, mem) = fleet_limits(4, OnFailure::Closed);
        mem.down.store(true, Ordering::SeqCst);
        let err = closed.global.acquire(&b).await.unwrap_err();
        assert!(matches!(err, LimitError::FleetUnavailable(_)), "{err}");
        assert!(err.to_string().contains("EXAI_REDIS_ON_FAILURE=closed"), "{err}");
        assert_eq!(closed.global.in_use(), 0);

        let (open, mem) = fleet_limits(4, OnFailure::Open);
        mem.down.store(true, Ordering::SeqCst);
        let p = open
            .global
            .acquire(&b)
            .await
            .expect("open falls back to the local limit");
        assert_eq!(open.global.in_use(), 1);
        drop(p);
        mem.down.store(false, Ordering::SeqCst);
        let _p = open.global.acquire(&b).await.unwrap();
        assert_eq!(
            *mem.free.lock().unwrap(),
            4,
            "Redis is skipped for a while after a failure"
        );
        drop(_p);
        tokio::time::advance(super::super::fleet::window::SKIP_FIRST).await;
        let _p = open.global.acquire(&b).await.unwrap();
        assert_eq!(*mem.free.lock().unwrap(), 3, "back to fleet leases once it answers");
        assert_eq!(open.fleet().unwrap().state().leases_held, 1);
        drop(_p);
        assert_eq!(open.fleet().unwrap().state().leases_held, 0);
    }
}

//! `exai-fleet`: the global and provider limits held for every replica together, in Redis — the
//! [`exai_core::resilience::fleet::Fleet`] that `exai serve` uses when `EXAI_REDIS_URL` is set.
//!
//! Layout in Redis: one sorted set per limit, `<prefix>lease:<limit>` (`exai:lease:provider:glm`), whose members
//! are lease ids scored by their expiry in milliseconds of Redis's own clock (`TIME`, so the replicas' clocks
//! never matter). One Lua script drops expired members, checks the count against the capacity and adds the new
//! lease, atomically. A held [`RedisLease`] is renewed every third of the TTL (`ZADD XX`) until dropped, then
//! removed (`ZREM`, spawned); a replica killed with SIGKILL stops renewing, so its leases lapse within the TTL.
//! Request rates per provider (`limits.glm_rpm`) are one key each, `<prefix>rpm:<provider>`, holding the GCRA
//! schedule (the time the next request may go), moved on atomically by a second script.
//!
//! The response cache's shared layer ([`SharedCache`]) is plain keys on the same connection,
//! `<prefix>cache:<sha-256>`, holding the answer as JSON and expiring after `cache.ttl_secs`.
//!
//! Every command is bounded by `redis.timeout_ms`; the connection manager reconnects on its own, so Redis coming
//! back needs no restart.

use std::sync::Arc;
use std::time::Duration;

use exai_core::resilience::fleet::{Fleet, FleetError, Lease};
use exai_core::tools::model_call::cache::SharedCache;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Removes expired leases, then adds `ARGV[3]` if fewer than `ARGV[1]` remain. KEYS[1]: the limit's set;
/// ARGV[2]: the TTL in ms. Returns 1 when granted.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
  return 1
end
return 0
";

/// Pushes a held lease's expiry to now + TTL; returns 0 when the lease had already lapsed.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local renewed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return renewed
";

/// GCRA without burst: KEYS[1] holds the theoretical arrival time (ms, Redis clock) of the next request; ARGV[1]
/// is the interval between requests in ms. Returns 0 when the request may go now (and moves the schedule on),
/// else the ms to wait before asking again.
const PACE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat > now then
  return tat - now
end
redis.call('SET', KEYS[1], now + interval, 'PX', interval + 1000)
return 0
";

/// Leases of the limit that have not lapsed.
const HELD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
";

/// How the fleet talks to Redis.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prepended to every key (`redis.key_prefix`).
    pub key_prefix: String,
    /// `redis.lease_ttl_secs`.
    pub lease_ttl: Duration,
    /// `redis.timeout_ms`: the longest one command may take.
    pub timeout: Duration,
}

/// Fleet-wide leases in Redis.
#[derive(Clone)]
pub struct RedisFleet {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    options: Options,
    acquire: redis::Script,
    renew: redis::Script,
    held: redis::Script,
    pace: redis::Script,
}

impl std::fmt::Debug for RedisFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFleet")
            .field("key_prefix", &self.inner.options.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisFleet {
    /// A fleet on `url` that connects on first use and reconnects after failures. Fails only on a bad URL.
    pub fn new(url: &str, options: Options) -> Result<Self, FleetError> {
        let client = redis::Client::open(url).map_err(|e| FleetError(format!("invalid EXAI_REDIS_URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| FleetError(format!("cannot set up the Redis connection: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn,
                options,
                acquire: redis::Script::new(ACQUIRE),
                renew: redis::Script::new(RENEW),
                held: redis::Script::new(HELD),
                pace: redis::Script::new(PACE),
            }),
        })
    }

    /// Checks that Redis answers (`PING`) within the timeout.
    pub async fn ping(&self) -> Result<(), FleetError> {
        self.inner
            .bounded("ping", |mut conn| async move {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            })
            .await
            .map(drop)
    }

    /// Leases of `limit` held now across the fleet (lapsed ones not counted).
    pub async fn held(&self, limit: &str) -> Result<u32, FleetError> {
        let key = &self.inner.key(limit);
        let script = &self.inner.held;
        self.inner
            .bounded("held", |mut conn| async move {
                script.key(key).invoke_async::<u32>(&mut conn).await
            })
            .await
    }

    async fn next_slot(&self, limit: &str, interval: Duration) -> Result<Duration, FleetError> {
        let inner = &self.inner;
        let mut invocation = inner.pace.key(format!("{}{limit}", inner.options.key_prefix));
        invocation.arg(interval.as_millis().max(1) as u64);
        let invocation = &invocation;
        let wait_ms: u64 = inner
            .bounded(
                "pace",
                |mut conn| async move { invocation.invoke_async(&mut conn).await },
            )
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }

    async fn acquire(&self, limit: &str, capacity: u32) -> Result<Option<Lease>, FleetError> {
        let inner = &self.inner;
        let key = inner.key(limit);
        let id = uuid::Uuid::new_v4().to_string();
        let ttl_ms = inner.options.lease_ttl.as_millis() as u64;
        let mut invocation = inner.acquire.key(&key);
        invocation.arg(capacity).arg(ttl_ms).arg(&id);
        let invocation = &invocation;
        // Retried once on a dropped connection with the same lease id, so a lease added twice is still one.
        let granted: i64 = inner
            .bounded(
                "acquire",
                |mut conn| async move { invocation.invoke_async(&mut conn).await },
            )
            .await?;
        if granted != 1 {
            return Ok(None);
        }
        Ok(Some(Lease::new(RedisLease::start(Arc::clone(inner), limit, key, id))))
    }
}

impl Inner {
    fn key(&self, limit: &str) -> String {
        format!("{}lease:{limit}", self.options.key_prefix)
    }

    /// Runs one Redis command within `redis.timeout_ms`, counting failures by operation. A command that finds
    /// its connection dropped (Redis restarted since the last one) is sent once more, within the same timeout, on
    /// the connection the manager re-opens: otherwise the first ask after Redis returns always fails.
    async fn bounded<T, F, Fut>(&self, op: &'static str, mut work: F) -> Result<T, FleetError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let mut outcome = tokio::time::timeout_at(deadline, work(self.conn.clone())).await;
        if matches!(&outcome, Ok(Err(e)) if e.is_connection_dropped()) {
            outcome = tokio::time::timeout_at(deadline, work(self.conn.clone())).await;
        }
        let outcome = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => FleetError(format!("Redis {op} failed: {e}")),
            Err(_) => FleetError(format!(
                "Redis {op} took longer than EXAI_REDIS_TIMEOUT_MS ({} ms)",
                self.options.timeout.as_millis()
            )),
        };
        metrics::counter!("exai_fleet_failures_total", "operation" => op).increment(1);
        Err(outcome)
    }
}

impl Fleet for RedisFleet {
    fn try_acquire<'a>(&'a self, limit: &'a str, capacity: u32) -> BoxFuture<'a, Result<Option<Lease>, FleetError>> {
        Box::pin(self.acquire(limit, capacity))
    }

    fn pace<'a>(&'a self, limit: &'a str, interval: Duration) -> BoxFuture<'a, Result<Duration, FleetError>> {
        Box::pin(self.next_slot(limit, interval))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), FleetError>> {
        Box::pin(RedisFleet::ping(self))
    }
}

impl SharedCache for RedisFleet {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, FleetError>> {
        Box::pin(async move {
            let key = &format!("{}{key}", self.inner.options.key_prefix);
            self.inner
                .bounded("cache_get", |mut conn| async move {
                    redis::cmd("GET")
                        .arg(key)
                        .query_async::<Option<String>>(&mut conn)
                        .await
                })
                .await
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: String, ttl: Duration) -> BoxFuture<'a, Result<(), FleetError>> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        Box::pin(async move {
            let (key, value) = (&format!("{}{key}", self.inner.options.key_prefix), &value);
            self.inner
                .bounded("cache_set", |mut conn| async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async::<()>(&mut conn)
                        .await
                })
                .await
        })
    }
}

/// One held lease: renewed by a task until dropped, then removed from its set.
struct RedisLease {
    inner: Arc<Inner>,
    limit: String,
    key: String,
    id: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl RedisLease {
    fn start(inner: Arc<Inner>, limit: &str, key: String, id: String) -> Self {
        metrics::gauge!("exai_fleet_leases_held", "limit" => limit.to_owned()).increment(1.0);
        let renewal = tokio::spawn(renew(Arc::clone(&inner), key.clone(), id.clone()));
        Self {
            inner,
            limit: limit.to_owned(),
            key,
            id,
            renewal,
        }
    }
}

/// Renews a lease every third of its TTL, for as long as the lease is held (its task is aborted on drop).
async fn renew(inner: Arc<Inner>, key: String, id: String) {
    let ttl = inner.options.lease_ttl;
    let ttl_ms = ttl.as_millis() as u64;
    let mut every = tokio::time::interval(ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let mut invocation = inner.renew.key(&key);
        invocation.arg(ttl_ms).arg(&id);
        let invocation = &invocation;
        match inner
            .bounded("renew", |mut conn| async move {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await
        {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(%key, "a fleet lease lapsed before its renewal (Redis unreachable for longer than EXAI_REDIS_LEASE_TTL_SECS?)")
            }
            // Debug only: a Redis outage is logged once by the link's skip window, not per lease every TTL/3.
            Err(e) => {
                tracing::debug!(%key, error = %e, "cannot renew a fleet lease; it lapses unless Redis answers in time")
            }
        }
    }
}

impl Drop for RedisLease {
    fn drop(&mut self) {
        self.renewal.abort();
        metrics::gauge!("exai_fleet_leases_held", "limit" => self.limit.clone()).decrement(1.0);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime left: the lease lapses within its TTL.
        };
        let inner = Arc::clone(&self.inner);
        let (key, id) = (std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        runtime.spawn(async move {
            let (key, id) = (&key, &id);
            let removed = inner
                .bounded("release", |mut conn| async move {
                    redis::cmd("ZREM").arg(key).arg(id).query_async::<i64>(&mut conn).await
                })
                .await;
            if let Err(e) = removed {
                tracing::debug!(error = %e, "cannot release a fleet lease; it lapses within its TTL");
            }
        });
    }
}

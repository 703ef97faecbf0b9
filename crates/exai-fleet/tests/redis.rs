//! Fleet leases against the machine's real Redis (`EXAI_TEST_REDIS_URL`; in CI a missing or unreachable Redis
//! fails the run instead of skipping). Each test writes under its own key prefix, so tests run in parallel.

use std::time::{Duration, Instant};

use exai_core::resilience::fleet::Fleet;
use exai_fleet::{Options, RedisFleet};

/// The test Redis URL; `None` (skip) only outside CI.
fn redis_url() -> Option<String> {
    match std::env::var("EXAI_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_REDIS_URL must be set in CI"),
        Err(_) => {
            eprintln!("EXAI_TEST_REDIS_URL not set: skipping the Redis fleet test (scripts/test sets it)");
            None
        }
    }
}

fn options(test: &str, ttl: Duration) -> Options {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Options {
        key_prefix: format!("exai-test:{test}:{}:{nanos}:", std::process::id()),
        lease_ttl: ttl,
        timeout: Duration::from_millis(300),
    }
}

async fn fleet(url: &str, options: Options) -> RedisFleet {
    let fleet = RedisFleet::new(url, options).unwrap();
    fleet
        .ping()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required: {e}"));
    fleet
}

async fn wait_for_held(fleet: &RedisFleet, limit: &str, want: u32, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let held = fleet.held(limit).await.unwrap();
        if held == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{limit}: {held} leases held after {within:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_replicas_share_one_capacity_and_a_dropped_lease_frees_its_slot() {
    let Some(url) = redis_url() else { return };
    let opts = options("share", Duration::from_secs(10));
    let (a, b) = (fleet(&url, opts.clone()).await, fleet(&url, opts).await);
    let first = a.try_acquire("provider:glm", 2).await.unwrap().expect("a free slot");
    let second = b.try_acquire("provider:glm", 2).await.unwrap().expect("a free slot");
    assert!(
        a.try_acquire("provider:glm", 2).await.unwrap().is_none(),
        "the fleet holds 2"
    );
    assert!(
        b.try_acquire("provider:glm", 2).await.unwrap().is_none(),
        "for every replica"
    );
    assert!(b.try_acquire("global", 2).await.unwrap().is_some(), "limits are apart");
    assert_eq!(a.held("provider:glm").await.unwrap(), 2);
    drop(first);
    wait_for_held(&a, "provider:glm", 1, Duration::from_secs(2)).await;
    let third = b.try_acquire("provider:glm", 2).await.unwrap();
    assert!(third.is_some(), "the dropped lease's slot is free again");
    drop((second, third));
    wait_for_held(&a, "provider:glm", 0, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_held_lease_is_renewed_past_its_ttl_and_a_dead_holders_lease_lapses_within_it() {
    let Some(url) = redis_url() else { return };
    let opts = options("lapse", Duration::from_secs(1));
    let observer = fleet(&url, opts.clone()).await;

    let kept = observer.try_acquire("global", 4).await.unwrap().expect("a free slot");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(observer.held("global").await.unwrap(), 1, "renewed while held");

    // A "replica" whose runtime dies with the lease held: no renewal, no release (like SIGKILL).
    let (url2, opts2) = (url.clone(), opts.clone());
    let orphan = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let lease = rt.block_on(async {
            let dying = RedisFleet::new(&url2, opts2).unwrap();
            dying.try_acquire("global", 4).await.unwrap().expect("a free slot")
        });
        drop(rt);
        lease
    })
    .join()
    .unwrap();
    assert_eq!(observer.held("global").await.unwrap(), 2);
    let took = wait_for_held(&observer, "global", 1, Duration::from_millis(2_000)).await;
    assert!(took <= Duration::from_millis(1_200), "lapsed after {took:?}, TTL 1 s");
    drop(orphan);
    drop(kept);
    wait_for_held(&observer, "global", 0, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_within_the_timeout() {
    // Port 1 on loopback: connection refused at once; nothing listens there.
    let fleet = RedisFleet::new("redis://127.0.0.1:1", options("down", Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let err = fleet.try_acquire("global", 4).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1_000), "{:?}", start.elapsed());
    assert!(err.to_string().contains("Redis acquire"), "{err}");
    assert!(fleet.ping().await.is_err());
    assert!(RedisFleet::new("not a url", options("bad", Duration::from_secs(10))).is_err());
}

#[tokio::test]
async fn the_request_rate_spaces_a_burst_for_every_replica_together() {
    let Some(url) = redis_url() else { return };
    let opts = options("rpm", Duration::from_secs(10));
    let (a, b) = (fleet(&url, opts.clone()).await, fleet(&url, opts).await);
    let interval = Duration::from_secs(1); // 60 requests a minute
    assert_eq!(a.pace("rpm:glm", interval).await.unwrap(), Duration::ZERO);
    let wait = b.pace("rpm:glm", interval).await.unwrap();
    assert!(
        wait > Duration::from_millis(800) && wait <= interval,
        "the other replica waits about a second: {wait:?}"
    );
    assert_eq!(
        a.pace("rpm:kimi", interval).await.unwrap(),
        Duration::ZERO,
        "rates are per provider"
    );
    tokio::time::sleep(wait).await;
    assert_eq!(b.pace("rpm:glm", interval).await.unwrap(), Duration::ZERO);
}

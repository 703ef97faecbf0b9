//! Fleet-wide limits end to end: several `exai serve` replicas sharing Redis (`EXAI_TEST_REDIS_URL`; in CI a
//! missing or unreachable Redis fails the run), the simulator counting the upstream requests it answers at once,
//! a replica killed with SIGKILL, and a throwaway `redis-server` stopped and restarted under running replicas.
//! Every test uses its own key prefix, so tests run in parallel against the shared Redis. Redis failing (a black
//! hole, a dead or restarted server, the health report) is in [`outage`].

mod outage;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use exai_fleet::{Options, RedisFleet};
use exai_sim::{Delay, Script, SimHandle};
use serde_json::json;

use crate::chat::sim;
use crate::support::{Daemon, redis_url, stateless_call, unique_prefix};

/// Reads the fleet's leases as the replicas see them.
async fn observer(url: &str, prefix: &str) -> RedisFleet {
    let fleet = RedisFleet::new(
        url,
        Options {
            key_prefix: prefix.to_owned(),
            lease_ttl: Duration::from_secs(10),
            timeout: Duration::from_millis(500),
        },
    )
    .unwrap();
    fleet
        .ping()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is required: {e}"));
    fleet
}

/// A replica on `sim` sharing limits through `redis` under `prefix`.
async fn replica(sim: &SimHandle, redis: &str, prefix: &str, extra: &[(&str, &str)]) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let mut env = vec![
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_REDIS_URL", redis),
        ("EXAI_REDIS_KEY_PREFIX", prefix),
        ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
    ];
    env.extend_from_slice(extra);
    Daemon::start(&env, &[]).await
}

/// One stateless `chat` call to GLM as client `client`; the response body's text.
async fn chat(daemon: &Daemon, client: &str) -> String {
    let args = json!({"prompt": "q", "model": "glm"});
    stateless_call(&reqwest::Client::new(), &daemon.url("/mcp"), 1, "chat", args, client)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn slow_glm(sim: &SimHandle, ms: u64) {
    sim.state()
        .set_model_script("glm-4.6", Some(Script::echo().with_ttft_ms(Delay::Fixed(ms))));
}

async fn wait_for_held(fleet: &RedisFleet, limit: &str, want: impl Fn(u32) -> bool, within: Duration) -> u32 {
    let start = Instant::now();
    loop {
        let held = fleet.held(limit).await.unwrap_or(u32::MAX);
        if want(held) {
            return held;
        }
        assert!(start.elapsed() < within, "{limit}: {held} leases held after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn three_replicas_never_send_more_than_the_fleet_glm_limit_upstream() {
    let Some(url) = redis_url("fleet") else { return };
    let prefix = unique_prefix("three");
    let sim = sim().await;
    slow_glm(&sim, 250);
    // Each replica alone would allow 4 GLM calls at once: 12 for the three without the fleet.
    let limits = [
        ("EXAI_WS_GLM_MAX_INFLIGHT", "4"),
        ("EXAI_MAX_CONNECTIONS_PER_IP", "100"),
    ];
    let replicas = [
        replica(&sim, &url, &prefix, &limits).await,
        replica(&sim, &url, &prefix, &limits).await,
        replica(&sim, &url, &prefix, &limits).await,
    ];
    // The proof: 60 concurrent calls spread over the three replicas.
    let calls = (0..60).map(|i| {
        let daemon = &replicas[i % 3];
        async move { chat(daemon, &format!("client-{i}")).await }
    });
    let replies = futures::future::join_all(calls).await;
    let answered = replies.iter().filter(|r| r.contains("sim: q")).count();
    for r in &replies {
        assert!(r.contains("sim: q") || r.contains("over capacity"), "{r}");
    }
    let peak = sim.peak_chats_in_flight();
    assert!(
        peak <= 4,
        "the simulator saw {peak} GLM requests at once; the fleet limit is 4"
    );
    assert!(peak >= 2, "the calls overlapped (peak {peak})");
    assert!(answered >= 30, "{answered} of 60 answered");
    eprintln!("{answered} of 60 answered, the rest over capacity; upstream peak {peak}");
    let fleet = observer(&url, &prefix).await;
    wait_for_held(&fleet, "provider:glm", |n| n == 0, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn a_replica_killed_while_holding_leases_gives_them_back_within_the_ttl() {
    let Some(url) = redis_url("fleet") else { return };
    let prefix = unique_prefix("kill");
    let sim = sim().await;
    slow_glm(&sim, 20_000);
    let ttl = [("EXAI_REDIS_LEASE_TTL_SECS", "2"), ("EXAI_REDIS_TIMEOUT_MS", "300")];
    let mut doomed = replica(&sim, &url, &prefix, &ttl).await;
    let fleet = observer(&url, &prefix).await;
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let url = doomed.url("/mcp");
            tokio::spawn(async move {
                let args = json!({"prompt": "q", "model": "glm"});
                let _ = stateless_call(&reqwest::Client::new(), &url, i, "chat", args, "k")
                    .send()
                    .await;
            })
        })
        .collect();
    wait_for_held(&fleet, "provider:glm", |n| n == 3, Duration::from_secs(10)).await;
    assert_eq!(fleet.held("global").await.unwrap(), 3);
    // Held past one TTL: the live replica renews them.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        fleet.held("provider:glm").await.unwrap(),
        3,
        "renewed while the calls run"
    );
    doomed.kill().await;
    let killed = Instant::now();
    wait_for_held(&fleet, "provider:glm", |n| n == 0, Duration::from_secs(4)).await;
    wait_for_held(&fleet, "global", |n| n == 0, Duration::from_secs(1)).await;
    assert!(
        killed.elapsed() <= Duration::from_millis(2_500),
        "leases lapsed {:?} after the kill; TTL 2 s",
        killed.elapsed()
    );
    for c in calls {
        c.abort();
    }
}

/// A `redis-server` of this test's own on a fixed port, stopped and started at will (never the shared one).
struct Throwaway {
    port: u16,
    child: Option<std::process::Child>,
}

impl Throwaway {
    fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::at(port)
    }

    /// One on `port` (not started yet), e.g. where a black hole listened before.
    fn at(port: u16) -> Self {
        Self { port, child: None }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn metrics(daemon: &Daemon) -> String {
    reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn when_redis_stops_open_runs_locally_closed_refuses_and_both_recover_when_it_returns() {
    if redis_url("fleet").is_none() {
        return;
    }
    let mut redis = Throwaway::new();
    redis.start().await;
    let url = redis.url();
    let prefix = unique_prefix("outage");
    let sim = sim().await;
    let quick = [("EXAI_REDIS_LEASE_TTL_SECS", "2"), ("EXAI_REDIS_TIMEOUT_MS", "200")];
    let open = replica(
        &sim,
        &url,
        &prefix,
        &[quick[0], quick[1], ("EXAI_REDIS_ON_FAILURE", "open")],
    )
    .await;
    let closed = replica(
        &sim,
        &url,
        &prefix,
        &[quick[0], quick[1], ("EXAI_REDIS_ON_FAILURE", "closed")],
    )
    .await;
    assert!(chat(&open, "a").await.contains("sim: q"));
    assert!(chat(&closed, "b").await.contains("sim: q"));

    redis.stop();
    for _ in 0..3 {
        let reply = chat(&open, "a").await;
        assert!(
            reply.contains("sim: q"),
            "open keeps answering on local limits: {reply}"
        );
    }
    let m = metrics(&open).await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("exai_fleet_fallbacks_total{") && l.contains("mode=\"open\"")),
        "the fallback is counted:\n{m}"
    );
    let started = Instant::now();
    let reply = chat(&closed, "b").await;
    assert!(
        reply.contains("fleet unavailable") && reply.contains("EXAI_REDIS_ON_FAILURE=closed"),
        "{reply}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused promptly: {:?}",
        started.elapsed()
    );

    redis.start().await;
    let back = Instant::now();
    loop {
        if chat(&closed, "b").await.contains("sim: q") {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "closed did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fleet limiting is back: a running call holds a lease again, from either replica (once the open replica's
    // skip window has let a probe through; its health check is one).
    outage::wait_reachable(&open, Duration::from_secs(40)).await;
    slow_glm(&sim, 1_500);
    let fleet = observer(&url, &prefix).await;
    let (a, _) = tokio::join!(chat(&open, "a"), async {
        wait_for_held(&fleet, "provider:glm", |n| n == 1, Duration::from_secs(5)).await
    });
    assert!(a.contains("sim: q"), "{a}");
}

#[tokio::test]
async fn closed_refuses_to_start_without_redis_and_open_starts_anyway() {
    let closed = crate::support::std_command(&[
        ("EXAI_REDIS_URL", "redis://127.0.0.1:1"),
        ("EXAI_REDIS_ON_FAILURE", "closed"),
        ("EXAI_REDIS_TIMEOUT_MS", "200"),
    ])
    .args(["serve", "--port", "0"])
    .arg("--data-dir")
    .arg(tempfile::tempdir().unwrap().path())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(!closed.status.success());
    assert!(stderr.contains("EXAI_REDIS_ON_FAILURE=closed"), "{stderr}");

    let sim = sim().await;
    let open = replica(
        &sim,
        "redis://127.0.0.1:1",
        &unique_prefix("nostart"),
        &[("EXAI_REDIS_TIMEOUT_MS", "200")],
    )
    .await;
    assert!(chat(&open, "a").await.contains("sim: q"));
}

#[tokio::test]
async fn a_fleet_rpm_limit_spaces_a_burst_across_replicas() {
    let Some(url) = redis_url("fleet") else { return };
    let prefix = unique_prefix("rpm");
    let sim = sim().await;
    let rpm = [("EXAI_GLM_RPM", "60")];
    let (a, b) = (
        replica(&sim, &url, &prefix, &rpm).await,
        replica(&sim, &url, &prefix, &rpm).await,
    );
    let started = Instant::now();
    let (r1, r2, r3, r4) = tokio::join!(chat(&a, "1"), chat(&b, "2"), chat(&a, "3"), chat(&b, "4"));
    let took = started.elapsed();
    for r in [r1, r2, r3, r4] {
        assert!(r.contains("sim: q"), "{r}");
    }
    assert_eq!(sim.chat_requests().len(), 4);
    assert!(
        took >= Duration::from_millis(2_900),
        "4 requests at 60 a minute, fleet-wide, take at least 3 s: {took:?}"
    );
}

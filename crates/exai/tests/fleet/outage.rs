//! Redis failing under running replicas: a black hole (accepts, never answers) costs the timeout once per skip
//! window, not per call; the `health` tool and `/readyz` report the link; a `redis-server` killed and restarted
//! inside a loaded three-replica run, in `open` and in `closed` mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use exai_sim::SimHandle;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::{Throwaway, chat, metrics, observer, replica, slow_glm, wait_for_held};
use crate::chat::sim;
use crate::support::{Daemon, jsonrpc_reply, redis_url, stateless_call, unique_prefix};

/// A TCP listener posing as Redis that reads every command and answers none: the packet-dropping Redis.
struct BlackHole {
    port: u16,
    /// Connections on which at least one command arrived.
    with_requests: Arc<AtomicUsize>,
    /// RESP commands received (arrays starting a line), across connections.
    commands: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (with_requests, commands) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (w, c) = (Arc::clone(&with_requests), Arc::clone(&commands));
        let task = tokio::spawn(async move {
            // Dropped with the task, closing every connection it holds open.
            let mut open = tokio::task::JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let (w, c) = (Arc::clone(&w), Arc::clone(&c));
                open.spawn(async move {
                    let (mut buf, mut seen, mut line_start) = ([0u8; 4096], false, true);
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        if !seen {
                            seen = true;
                            w.fetch_add(1, Ordering::SeqCst);
                        }
                        for &b in &buf[..n] {
                            if line_start && b == b'*' {
                                c.fetch_add(1, Ordering::SeqCst);
                            }
                            line_start = b == b'\n';
                        }
                    }
                });
            }
        });
        Self {
            port,
            with_requests,
            commands,
            task,
        }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A tool's JSON-RPC reply over stateless HTTP.
async fn call(daemon: &Daemon, tool: &str) -> Value {
    let text = stateless_call(&reqwest::Client::new(), &daemon.url("/mcp"), 1, tool, json!({}), "ops")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    jsonrpc_reply(&text)
}

/// The `health` tool's `fleet` section.
async fn fleet_health(daemon: &Daemon) -> Value {
    let reply = call(daemon, "health").await;
    reply["result"]["structuredContent"]["fleet"].clone()
}

/// `/readyz`: its status code and body.
async fn readyz(daemon: &Daemon) -> (u16, Value) {
    let r = reqwest::get(daemon.url("/readyz")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn check<'a>(ready: &'a Value, name: &str) -> Option<&'a Value> {
    ready["checks"].as_array().unwrap().iter().find(|c| c["name"] == name)
}

/// The sum of a counter's series in a `/metrics` page (matching `filter` on the label set).
fn total(page: &str, name: &str, filter: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls until the replica's `health` says Redis answers (each poll may be the skip window's probe).
pub(super) async fn wait_reachable(daemon: &Daemon, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let health = fleet_health(daemon).await;
        if health["reachable"] == true {
            return health;
        }
        assert!(
            start.elapsed() < within,
            "Redis not reachable again after {within:?}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_black_hole_redis_costs_the_timeout_once_per_window_and_a_real_one_there_is_used_again() {
    if redis_url("fleet").is_none() {
        return;
    }
    let hole = BlackHole::start().await;
    let port = hole.port;
    let url = format!("redis://127.0.0.1:{port}");
    let sim = sim().await;
    let env = [
        ("EXAI_REDIS_TIMEOUT_MS", "300"),
        ("EXAI_REDIS_LEASE_TTL_SECS", "2"),
        ("EXAI_MAX_CONNECTIONS_PER_IP", "100"),
    ];
    let daemon = replica(&sim, &url, &unique_prefix("hole"), &env).await;
    let n = 20;
    let d = &daemon;
    let replies = futures::future::join_all((0..n).map(|i| async move { chat(d, &format!("c{i}")).await })).await;
    for r in &replies {
        assert!(r.contains("sim: q"), "open answers on local limits: {r}");
    }
    let m = metrics(&daemon).await;
    let failed = total(&m, "exai_fleet_failures_total", "");
    let skipped = total(&m, "exai_fleet_skipped_total", "");
    let (conns, commands) = (
        hole.with_requests.load(Ordering::SeqCst),
        hole.commands.load(Ordering::SeqCst),
    );
    eprintln!("black hole: {failed} failed asks, {skipped} skipped, {conns} connections with {commands} commands");
    // Without the window every call would ask twice (global and GLM limits), each waiting out the timeout: 40
    // failed asks. With it: the start-up ping, then one probe per window (1 s, then 2 s, ...) while the burst lasts,
    // a few even on a slow machine. The black hole sees each failed ask's connection plus the connection manager's
    // reconnect after it (the set-up commands on each time out): a handful, never one per call.
    assert!(
        failed <= 4.0,
        "{failed} Redis asks waited out the timeout for {n} calls (start-up ping plus a probe or two expected)"
    );
    assert!(skipped >= n as f64, "{skipped} asks skipped for {n} calls");
    let most = 2 * failed as usize + 2;
    assert!(
        (1..=most).contains(&conns),
        "the black hole saw {conns} connections with commands for {failed} failed asks"
    );
    assert!(
        commands <= 3 * conns,
        "the black hole saw {commands} commands on {conns} connections"
    );

    let health = fleet_health(&daemon).await;
    assert_eq!(health["configured"], true, "{health}");
    assert_eq!(health["on_failure"], "open", "{health}");
    assert_eq!(health["reachable"], false, "{health}");
    assert!(health["failing_since_unix_ms"].as_u64().is_some(), "{health}");
    assert!(
        health["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out") || e.contains("took longer")),
        "{health}"
    );
    assert!(health["fallbacks"].as_u64().unwrap() >= n as u64, "{health}");
    assert!(health["skipped"].as_u64().unwrap() >= n as u64, "{health}");
    let (status, ready) = readyz(&daemon).await;
    assert_eq!(status, 200, "open still serves, so it stays ready: {ready}");
    assert_eq!(check(&ready, "fleet").unwrap()["ok"], true, "{ready}");
    assert_eq!(ready["fleet"]["reachable"], false, "{ready}");
    assert!(
        ready["fleet"].get("last_error").is_none(),
        "no error detail for load balancers"
    );

    // A real Redis at the same address: the replica uses it again, without a restart.
    hole.stop().await;
    let mut redis = Throwaway::at(port);
    redis.start().await;
    let back = Instant::now();
    loop {
        assert!(chat(&daemon, "after").await.contains("sim: q"));
        let granted = total(
            &metrics(&daemon).await,
            "exai_fleet_acquisitions_total",
            "outcome=\"granted\"",
        );
        if granted > 0.0 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(45),
            "no fleet lease granted after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = wait_reachable(&daemon, Duration::from_secs(5)).await;
    assert!(health.get("failing_since_unix_ms").is_none(), "{health}");
    assert_eq!(health["skipping"], false, "{health}");
}

#[tokio::test]
async fn health_reports_the_fleet_without_redis_with_it_and_with_it_dead() {
    if redis_url("fleet").is_none() {
        return;
    }
    let sim = sim().await;
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let alone = Daemon::start(&[("GLM_BASE_URL", glm.as_str()), ("KIMI_BASE_URL", kimi.as_str())], &[]).await;
    let health = fleet_health(&alone).await;
    assert_eq!(health["configured"], false, "{health}");
    assert!(health.get("on_failure").is_none(), "{health}");
    let (status, ready) = readyz(&alone).await;
    assert_eq!(status, 200);
    assert!(
        check(&ready, "fleet").is_none(),
        "no fleet check without EXAI_REDIS_URL: {ready}"
    );
    assert_eq!(ready["fleet"]["configured"], false, "{ready}");

    let mut redis = Throwaway::new();
    redis.start().await;
    let prefix = unique_prefix("health");
    let env = |mode| {
        [
            ("EXAI_REDIS_TIMEOUT_MS", "300"),
            ("EXAI_REDIS_LEASE_TTL_SECS", "2"),
            ("EXAI_REDIS_ON_FAILURE", mode),
        ]
    };
    let closed = replica(&sim, &redis.url(), &prefix, &env("closed")).await;
    let open = replica(&sim, &redis.url(), &prefix, &env("open")).await;
    slow_glm(&sim, 1_500);
    let fleet = observer(&redis.url(), &prefix).await;
    let (answer, health) = tokio::join!(chat(&closed, "a"), async {
        wait_for_held(&fleet, "provider:glm", |n| n == 1, Duration::from_secs(5)).await;
        fleet_health(&closed).await
    });
    assert!(answer.contains("sim: q"), "{answer}");
    assert_eq!(health["reachable"], true, "{health}");
    assert_eq!(health["on_failure"], "closed", "{health}");
    assert_eq!(
        health["leases_held"], 2,
        "the global and GLM leases of the running call: {health}"
    );
    assert_eq!(health["fallbacks"], 0, "{health}");
    assert!(health.get("failing_since_unix_ms").is_none(), "{health}");
    assert_eq!(
        fleet_health(&closed).await["leases_held"],
        0,
        "given back after the call"
    );
    let (status, ready) = readyz(&closed).await;
    assert_eq!(
        (status, &check(&ready, "fleet").unwrap()["ok"]),
        (200, &json!(true)),
        "{ready}"
    );

    redis.stop();
    let refused = chat(&closed, "b").await;
    assert!(refused.contains("fleet unavailable"), "{refused}");
    let health = fleet_health(&closed).await;
    assert_eq!(health["reachable"], false, "{health}");
    assert!(health["failing_since_unix_ms"].as_u64().is_some(), "{health}");
    assert!(health["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{health}");
    assert!(health["fallbacks"].as_u64().unwrap() >= 1, "{health}");
    let (status, ready) = readyz(&closed).await;
    assert_eq!(
        status, 503,
        "closed refuses model calls without Redis, so it is not ready: {ready}"
    );
    assert_eq!(check(&ready, "fleet").unwrap()["ok"], false, "{ready}");
    assert_eq!(check(&ready, "database").unwrap()["ok"], true, "{ready}");
    let (status, ready) = readyz(&open).await;
    assert_eq!(status, 200, "open serves on local limits without Redis: {ready}");
    assert_eq!(ready["fleet"]["reachable"], false, "{ready}");
}

/// How one call of the loaded run ended.
struct Outcome {
    started: Instant,
    ended: Instant,
    /// `None`: no reply within the caller's deadline.
    reply: Option<String>,
}

/// The caller's deadline for one call (the server's own limits wait at most `EXAI_LIMIT_MAX_WAIT_MS`).
const DEADLINE: Duration = Duration::from_secs(20);

/// One `chat` call to `mcp` that gives up at [`DEADLINE`].
async fn timed_chat(mcp: String, client: String) -> Outcome {
    let started = Instant::now();
    let http = reqwest::Client::builder().timeout(DEADLINE).build().unwrap();
    let args = json!({"prompt": "q", "model": "glm"});
    let sent = stateless_call(&http, &mcp, 1, "chat", args, &client).send().await;
    let reply = match sent {
        Ok(r) => r.text().await.ok(),
        Err(_) => None,
    };
    Outcome {
        started,
        ended: Instant::now(),
        reply,
    }
}

/// `count` calls spread over `urls`, one every `every`, each its own task.
fn wave(urls: &[String], tag: &str, count: usize, every: Duration) -> Vec<tokio::task::JoinHandle<Outcome>> {
    (0..count)
        .map(|i| {
            let (mcp, client) = (urls[i % urls.len()].clone(), format!("{tag}-{i}"));
            tokio::spawn(async move {
                tokio::time::sleep(every * i as u32).await;
                timed_chat(mcp, client).await
            })
        })
        .collect()
}

async fn ended(calls: Vec<tokio::task::JoinHandle<Outcome>>) -> Vec<Outcome> {
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

async fn drained(sim: &SimHandle) {
    let start = Instant::now();
    while sim.state().chats_in_flight() > 0 {
        assert!(start.elapsed() < DEADLINE, "upstream calls still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three replicas sharing a throwaway Redis with a fleet GLM limit of 4; ~60 calls before, during and after
/// the Redis process is killed and started again on the same port.
async fn redis_killed_and_restarted_under_load(mode: &'static str) {
    if redis_url("fleet").is_none() {
        return;
    }
    let mut redis = Throwaway::new();
    redis.start().await;
    let prefix = unique_prefix(&format!("load-{mode}"));
    let sim = sim().await;
    slow_glm(&sim, 300);
    let env = [
        ("EXAI_WS_GLM_MAX_INFLIGHT", "4"),
        ("EXAI_MAX_CONNECTIONS_PER_IP", "200"),
        ("EXAI_REDIS_ON_FAILURE", mode),
        ("EXAI_REDIS_TIMEOUT_MS", "200"),
        ("EXAI_REDIS_LEASE_TTL_SECS", "2"),
        ("EXAI_LIMIT_MAX_WAIT_MS", "8000"),
    ];
    let replicas = [
        replica(&sim, &redis.url(), &prefix, &env).await,
        replica(&sim, &redis.url(), &prefix, &env).await,
        replica(&sim, &redis.url(), &prefix, &env).await,
    ];
    let urls: Vec<String> = replicas.iter().map(|d| d.url("/mcp")).collect();

    // Redis dies mid-run: once some of the first calls have reached the simulator, with more still coming.
    let before = wave(&urls, "before", 20, Duration::from_millis(50));
    assert!(
        sim.wait_for(DEADLINE, |r| r.len() >= 4).await,
        "the first calls reached the simulator"
    );
    redis.stop();
    let killed = Instant::now();
    // Calls made while it is down, all ended before it comes back.
    let during = ended(wave(&urls, "during", 20, Duration::from_millis(20))).await;
    redis.start().await;
    let restarted = Instant::now();
    let before = ended(before).await;

    // Recovered without a restart: each replica's health probe reaches Redis (closing its skip window).
    for d in &replicas {
        wait_reachable(d, Duration::from_secs(40)).await;
    }
    drained(&sim).await;
    sim.reset();
    let after = ended(wave(&urls, "after", 20, Duration::ZERO)).await;
    let peak = sim.peak_chats_in_flight();

    let all: Vec<&Outcome> = before.iter().chain(&during).chain(&after).collect();
    for o in &all {
        let reply = o.reply.as_deref().unwrap_or_else(|| {
            panic!(
                "a call hung past its {DEADLINE:?} deadline ({:?} after it started)",
                o.ended - o.started
            )
        });
        let clear = reply.contains("sim: q")
            || reply.contains("over capacity")
            || (mode == "closed"
                && reply.contains("fleet unavailable")
                && reply.contains("EXAI_REDIS_ON_FAILURE=closed"));
        assert!(clear, "{mode}: neither an answer nor a clear refusal: {reply}");
    }
    let answered = |o: &Outcome| o.reply.as_deref().is_some_and(|r| r.contains("sim: q"));
    // Calls that began and ended while Redis was down.
    let outage: Vec<&Outcome> = during
        .iter()
        .filter(|o| o.started >= killed && o.ended <= restarted)
        .collect();
    assert!(outage.len() >= 10, "{} calls ran inside the outage", outage.len());
    match mode {
        "open" => {
            assert!(
                outage.iter().filter(|o| answered(o)).count() >= outage.len() / 2,
                "open keeps answering on local limits during the outage"
            );
            assert!(
                all.iter()
                    .all(|o| !o.reply.as_deref().unwrap().contains("fleet unavailable")),
                "open never refuses for Redis"
            );
        }
        _ => {
            for o in &outage {
                let reply = o.reply.as_deref().unwrap();
                assert!(
                    reply.contains("fleet unavailable"),
                    "closed refuses during the outage: {reply}"
                );
            }
        }
    }
    assert!(
        peak <= 4,
        "{mode}: the simulator saw {peak} GLM requests at once after Redis came back; the fleet limit is 4"
    );
    assert!(peak >= 2, "the calls after recovery overlapped (peak {peak})");
    let after_answered = after.iter().filter(|o| answered(o)).count();
    assert!(after_answered >= 16, "{after_answered} of 20 answered after recovery");
    let fleet = observer(&redis.url(), &prefix).await;
    wait_for_held(&fleet, "provider:glm", |n| n == 0, Duration::from_secs(3)).await;
    eprintln!(
        "{mode}: before {}/20 answered, outage {}/{} answered, after {after_answered}/20 answered, peak after {peak}",
        before.iter().filter(|o| answered(o)).count(),
        outage.iter().filter(|o| answered(o)).count(),
        outage.len()
    );
}

#[tokio::test]
async fn open_redis_killed_and_restarted_under_load_answers_throughout_and_the_limit_holds_again() {
    redis_killed_and_restarted_under_load("open").await;
}

#[tokio::test]
async fn closed_redis_killed_and_restarted_under_load_refuses_clearly_then_the_limit_holds_again() {
    redis_killed_and_restarted_under_load("closed").await;
}

//! The response cache end to end: replicas of `exai serve` sharing Redis (`EXAI_TEST_REDIS_URL`; in CI a missing
//! Redis fails the run) and one simulator that records every upstream request. An identical deterministic `chat`
//! goes upstream once and is then served from the cache on any replica; concurrent identical misses share one
//! upstream request; calls that did not ask for the cache, or are not deterministic, always go upstream.
//! Every test uses its own key prefix, so tests run in parallel against the shared Redis.

use std::net::TcpListener;

use exai_sim::{Delay, Script, SimHandle};
use serde_json::{Value, json};

use crate::chat::sim;
use crate::support::{Daemon, redis_url, unique_prefix};

/// A replica on `sim`; with `redis`, sharing the cache through it under `prefix`.
async fn replica(sim: &SimHandle, redis: Option<(&str, &str)>, extra: &[(&str, &str)]) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let mut env = vec![
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
    ];
    if let Some((url, prefix)) = redis {
        env.extend([("EXAI_REDIS_URL", url), ("EXAI_REDIS_KEY_PREFIX", prefix)]);
    }
    env.extend_from_slice(extra);
    Daemon::start(&env, &[]).await
}

/// One stateless `chat` call with `arguments`; the JSON-RPC reply.
async fn chat(daemon: &Daemon, arguments: Value) -> Value {
    let http = reqwest::Client::new();
    let text = crate::support::stateless_call(&http, &daemon.url("/mcp"), 1, "chat", arguments, "cache-test")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    crate::support::jsonrpc_reply(&text)
}

/// The reply's `structuredContent`, asserting it is not an error.
fn answer(reply: &Value) -> &Value {
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    &reply["result"]["structuredContent"]
}

fn cached(reply: &Value) -> bool {
    answer(reply)["cached"] == true
}

fn deterministic(prompt: &str) -> Value {
    json!({"prompt": prompt, "model": "glm", "temperature": 0, "cache": true})
}

#[tokio::test]
async fn an_identical_deterministic_chat_goes_upstream_once_then_comes_from_any_replica() {
    let Some(url) = redis_url("cache") else { return };
    let prefix = unique_prefix("cache:replicas");
    let sim = sim().await;
    let one = replica(&sim, Some((&url, &prefix)), &[]).await;
    let two = replica(&sim, Some((&url, &prefix)), &[]).await;

    let first = chat(&one, deterministic("what is a cache?")).await;
    assert!(!cached(&first), "{first}");
    assert_eq!(sim.chat_requests().len(), 1);

    let again = chat(&two, deterministic("what is a cache?")).await;
    assert!(cached(&again), "the other replica answers from Redis: {again}");
    assert_eq!(answer(&again)["content"], answer(&first)["content"]);
    let text = again["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("cached"), "{text}");
    assert_eq!(sim.chat_requests().len(), 1, "no new upstream request");

    let local = chat(&two, deterministic("what is a cache?")).await;
    assert!(cached(&local), "{local}");
    assert_eq!(sim.chat_requests().len(), 1);

    // Metrics count hits apart, by layer.
    let metrics = reqwest::get(two.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("exai_cache_hits_total{layer=\"redis\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("exai_cache_hits_total{layer=\"memory\"} 1"),
        "{metrics}"
    );

    // A different temperature is a different, uncacheable request; no `cache` means no cache.
    let warm = chat(
        &one,
        json!({"prompt": "what is a cache?", "model": "glm", "temperature": 0.5, "cache": true}),
    )
    .await;
    assert!(!cached(&warm), "{warm}");
    assert_eq!(sim.chat_requests().len(), 2);
    for n in 3..5 {
        let plain = chat(
            &two,
            json!({"prompt": "what is a cache?", "model": "glm", "temperature": 0}),
        )
        .await;
        assert!(!cached(&plain), "{plain}");
        assert_eq!(sim.chat_requests().len(), n, "without `cache` every call goes upstream");
    }
}

#[tokio::test]
async fn concurrent_identical_calls_on_one_replica_share_one_upstream_request() {
    let Some(url) = redis_url("cache") else { return };
    let prefix = unique_prefix("cache:concurrent");
    let sim = sim().await;
    sim.state()
        .set_model_script("glm-4.6", Some(Script::echo().with_ttft_ms(Delay::Fixed(400))));
    let daemon = replica(&sim, Some((&url, &prefix)), &[]).await;
    let calls = (0..4).map(|_| chat(&daemon, deterministic("the same question")));
    let replies = futures::future::join_all(calls).await;
    assert_eq!(
        sim.chat_requests().len(),
        1,
        "one upstream request for four identical calls"
    );
    let served: Vec<bool> = replies.iter().map(cached).collect();
    assert_eq!(served.iter().filter(|c| !**c).count(), 1, "{served:?}");
    let contents: Vec<&Value> = replies.iter().map(|r| &answer(r)["content"]).collect();
    assert!(contents.iter().all(|c| *c == contents[0]), "{contents:?}");
}

#[tokio::test]
async fn cache_enabled_tools_caches_without_the_argument_and_a_dead_redis_is_only_a_miss() {
    // Needs no Redis: a closed port stands for one that is down.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("redis://{}", l.local_addr().unwrap())
    };
    let sim = sim().await;
    let daemon = replica(
        &sim,
        Some((&dead, "exai-test:cache:dead:")),
        &[("EXAI_CACHE_ENABLED_TOOLS", "chat")],
    )
    .await;
    let ask = json!({"prompt": "q", "model": "glm", "temperature": 0});
    let first = chat(&daemon, ask.clone()).await;
    assert!(!cached(&first), "{first}");
    let second = chat(&daemon, ask).await;
    assert!(cached(&second), "served from memory though Redis is down: {second}");
    assert_eq!(sim.chat_requests().len(), 1);
    let metrics = reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Failed, or skipped because Redis failed moments before (the fleet's skip window, opened at start-up).
    assert!(
        metrics.contains("exai_fleet_failures_total{operation=\"cache_get\"}")
            || metrics.contains("exai_fleet_skipped_total{operation=\"cache_get\"}"),
        "{metrics}"
    );
}

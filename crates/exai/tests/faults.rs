//! The resilience proof, over real transports against the simulator: a thousand sequential calls, five hundred
//! concurrent ones, then a burst of random faults and cancellations — after which no permit is held, no call
//! outlived its deadline and every call got an answer or a specific error; a hanging upstream ends at the deadline;
//! one session's slow call does not delay another's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use exai_sim::{Delay, Script};
use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

use crate::chat::{error_text, exai, sim, structured};
use crate::support::Daemon;

/// Short deadlines so faults resolve quickly; every provider cap fits inside the simple-tool deadline.
const SHORT: [(&str, &str); 10] = [
    ("SIMPLE_TOOL_TIMEOUT_SECS", "4"),
    ("EXAI_TIER1_TIMEOUT_SECS", "3"),
    ("EXAI_DB_TIMEOUT_SECS", "2"),
    ("GLM_TIMEOUT_SECS", "2"),
    ("KIMI_TIMEOUT_SECS", "2"),
    ("KIMI_WEB_SEARCH_TIMEOUT_SECS", "2"),
    ("KIMI_THINKING_TIMEOUT_SECS", "2"),
    ("KIMI_WEB_SEARCH_THINKING_TIMEOUT_SECS", "2"),
    ("EXAI_RETRY_BASE_MS", "50"),
    ("EXAI_BREAKER_FAILURES", "1000"),
];

fn chat(id: i64, prompt: &str) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"chat","arguments":{"prompt":prompt,"model":"flash"}}})
        .to_string()
}

/// An answer, or an error that names what went wrong.
fn answered_or_specific(reply: &Value) -> bool {
    let result = &reply["result"];
    if result["isError"] == false {
        return result["structuredContent"]["content"].is_string();
    }
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    [
        "HTTP 5",
        "HTTP 429",
        "stream broke",
        "no answer within",
        "timed out after",
        "over capacity",
        "circuit open",
        "cancelled",
    ]
    .iter()
    .any(|kind| text.contains(kind))
}

#[tokio::test]
async fn permits_all_return_after_sequential_concurrent_and_faulty_load() {
    let sim = sim().await;
    let mut env = SHORT.to_vec();
    env.extend([
        ("EXAI_WS_GLOBAL_MAX_INFLIGHT", "64"),
        ("EXAI_WS_SESSION_MAX_INFLIGHT", "64"),
        ("EXAI_WS_GLM_MAX_INFLIGHT", "16"),
        ("EXAI_LIMIT_MAX_WAITERS", "1000"),
        ("EXAI_LIMIT_MAX_WAIT_MS", "3000"),
    ]);
    let mut raw = exai(&sim, &env).await;

    // 1000 sequential calls: all answered.
    for id in 0..1000 {
        let (_, reply) = raw
            .call(id, "chat", json!({"prompt": format!("s{id}"), "model": "flash"}), false)
            .await;
        assert_eq!(structured(&reply)["content"], format!("sim: s{id}"));
    }

    // 500 concurrent calls on one pipe: every one answered or refused specifically.
    for id in 1000..1500 {
        raw.send(&chat(id, &format!("c{id}"))).await;
    }
    let mut replies = HashMap::new();
    while replies.len() < 500 {
        let msg = raw.next().await;
        if let Some(id) = msg["id"].as_i64() {
            replies.insert(id, msg);
        }
    }
    let ok = replies.values().filter(|r| r["result"]["isError"] == false).count();
    assert!(
        replies.values().all(answered_or_specific),
        "every concurrent call is answered or refused clearly"
    );
    assert!(ok >= 400, "only {ok} of 500 concurrent calls were answered");

    // A burst of faults with random cancellations.
    let faults = [
        Script::status(500),
        Script::rate_limited(1),
        Script::hang(),
        Script::reset_after_chunks(2).with_inter_token_ms(Delay::Fixed(10)),
        Script::echo().with_ttft_ms(Delay::Fixed(300)),
    ];
    let started = Instant::now();
    let mut cancelled = Vec::new();
    for id in 2000..2200i64 {
        sim.push_script("glm-4.5-flash", faults[(id as usize * 7) % faults.len()].clone());
        raw.send(&chat(id, "burst")).await;
        if fastrand::u8(..) < 40 {
            raw.send(
                &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":id}}).to_string(),
            )
            .await;
            cancelled.push(id);
        }
    }
    let mut burst = HashMap::new();
    let limit = Duration::from_secs(4 + 3 + 2); // deadline + queueing + tolerance
    while burst.len() + cancelled.iter().filter(|id| !burst.contains_key(*id)).count() < 200 {
        let Ok(msg) = tokio::time::timeout(Duration::from_secs(2), raw.next()).await else {
            break; // only cancelled calls are still silent
        };
        if let Some(id) = msg["id"].as_i64() {
            burst.insert(id, msg);
        }
    }
    assert!(
        started.elapsed() < limit + Duration::from_secs(4),
        "the burst took {:?}",
        started.elapsed()
    );
    for id in 2000..2200 {
        match burst.get(&id) {
            Some(reply) => assert!(answered_or_specific(reply), "call {id}: {reply}"),
            None => assert!(cancelled.contains(&id), "call {id} got no reply and was not cancelled"),
        }
    }

    // Afterwards: nothing held but this status call's own permits, and the books balance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, status) = raw.call(9999, "status", json!({}), false).await;
    let s = structured(&status);
    assert_eq!(s["inflight_calls"], 1, "{s}");
    assert_eq!(s["permits_consistent"], true, "{s}");
    for limit in s["limits"].as_array().unwrap() {
        let expected = if limit["name"] == "global" { 1 } else { 0 };
        assert_eq!(limit["in_use"], expected, "{limit}");
        assert_eq!(limit["waiting"], 0, "{limit}");
    }
}

#[tokio::test]
async fn a_hanging_upstream_ends_at_the_deadline_and_retries_never_overrun_it() {
    let sim = sim().await;
    let mut env = SHORT.to_vec();
    env.retain(|(k, _)| *k != "GLM_TIMEOUT_SECS");
    env.push(("GLM_TIMEOUT_SECS", "1"));
    let mut raw = exai(&sim, &env).await;
    for _ in 0..5 {
        sim.push_script("glm-4.5-flash", Script::hang());
    }
    let started = Instant::now();
    let (_, reply) = raw
        .call(1, "chat", json!({"prompt": "q", "model": "flash"}), false)
        .await;
    let took = started.elapsed();
    let text = error_text(&reply);
    assert!(
        took <= Duration::from_millis(4_500),
        "the call overran its 4 s deadline: {took:?}"
    );
    assert!(
        text.contains("no answer within") || text.contains("timed out after 4000 ms"),
        "{text}"
    );
    let attempts = sim.chat_requests().len();
    assert!(
        (2..=3).contains(&attempts),
        "1 s attempts retried within the 4 s budget: {attempts}"
    );
}

async fn http_client(daemon: &Daemon) -> rmcp::service::RunningService<rmcp::RoleClient, ClientConfig> {
    let config = StreamableHttpClientTransportConfig::with_uri(daemon.url("/mcp"));
    let mut info = ClientConfig::default();
    info.protocol_version = ProtocolVersion::V_2025_11_25;
    info.serve_with_lifecycle(
        StreamableHttpClientTransport::from_config(config),
        ClientLifecycleMode::Initialize,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_slow_call_in_one_session_does_not_delay_another_sessions_call() {
    let sim = sim().await;
    sim.push_script(
        "kimi-k2-0905-preview",
        Script::reply("slow").with_ttft_ms(Delay::Fixed(3_000)),
    );
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_WS_SESSION_MAX_INFLIGHT", "1"),
    ];
    let daemon = Daemon::start(&env, &[]).await;
    let (a, b) = (http_client(&daemon).await, http_client(&daemon).await);
    let slow_args = json!({"prompt": "take your time", "model": "kimi"})
        .as_object()
        .unwrap()
        .clone();
    let slow = tokio::spawn(async move {
        let r = a
            .call_tool(CallToolRequestParams::new("chat").with_arguments(slow_args))
            .await;
        (r, a)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let fast_args = json!({"prompt": "quick", "model": "flash"})
        .as_object()
        .unwrap()
        .clone();
    let fast = b
        .call_tool(CallToolRequestParams::new("chat").with_arguments(fast_args))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "blocked for {:?}",
        started.elapsed()
    );
    assert_eq!(fast.structured_content.unwrap()["content"], "sim: quick");
    let (slow, _a) = slow.await.unwrap();
    assert_eq!(slow.unwrap().structured_content.unwrap()["content"], "slow");
}

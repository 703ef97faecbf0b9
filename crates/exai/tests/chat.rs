//! `chat` end to end: the real binary over stdio, its providers calling the upstream simulator over real
//! HTTP. Streaming progress, heartbeats, continuation threads (SQLite and PostgreSQL), model switching,
//! files, every upstream failure as a clear tool error, and honest `sim` labelling.

use std::time::{Duration, Instant};

use exai_sim::{Delay, Script, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

pub(crate) use crate::support::Raw;

pub(crate) async fn sim() -> SimHandle {
    Simulator::start_local(SimConfig::default()).await.unwrap()
}

/// `exai stdio` whose GLM and Kimi base URLs point at `sim`, with keys set.
pub(crate) async fn exai(sim: &SimHandle, extra: &[(&str, &str)]) -> Raw {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let mut env = vec![("GLM_BASE_URL", glm.as_str()), ("KIMI_BASE_URL", kimi.as_str())];
    env.extend([("GLM_API_KEY", "test-glm-key"), ("KIMI_API_KEY", "test-kimi-key")]);
    env.extend_from_slice(extra);
    Raw::start(&env, &[]).await
}

pub(crate) fn structured(reply: &Value) -> &Value {
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    &reply["result"]["structuredContent"]
}

pub(crate) fn error_text(reply: &Value) -> String {
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    reply["result"]["content"][0]["text"].as_str().unwrap().to_owned()
}

/// Every message's text content, in order, as sent upstream.
fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            other => other.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn chat_answers_through_the_provider_and_says_who_answered() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[]).await;
    let (_, reply) = raw
        .call(1, "chat", json!({"prompt": "What is 2+2?", "model": "flash"}), false)
        .await;
    let s = structured(&reply);
    assert_eq!(s["content"], "sim: What is 2+2?");
    assert_eq!(
        s["provider"], "sim",
        "the simulator's answers are labelled as such even behind GLM_BASE_URL"
    );
    assert_eq!(s["model"], "glm-4.5-flash");
    assert!(s["usage"]["output_tokens"].as_u64().unwrap() > 0, "{s}");
    assert!(s["latency_ms"].is_u64() && s["continuation_id"].is_string(), "{s}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("glm-4.5-flash via sim") && text.contains("continuation_id: "),
        "{text}"
    );

    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r.path.ends_with("/api/paas/v4/chat/completions"), "{}", r.path);
    assert_eq!(r.bearer(), Some("test-glm-key"));
    let body = r.body.as_ref().unwrap();
    assert_eq!(
        (body["model"].as_str(), body["stream"].as_bool()),
        (Some("glm-4.5-flash"), Some(true))
    );
    assert_eq!(r.messages()[0]["role"], "system");
    assert_eq!(texts(r.messages()).last().unwrap(), "What is 2+2?");
}

#[tokio::test]
async fn streamed_text_arrives_as_progress_before_the_result() {
    let sim = sim().await;
    let script = Script::reply("The answer is forty-two, as computed.")
        .with_chunk_chars(4)
        .with_inter_token_ms(Delay::Fixed(60));
    sim.push_script("kimi-k2-turbo-preview", script);
    let mut raw = exai(&sim, &[]).await;
    let (progress, reply) = raw
        .call(2, "chat", json!({"prompt": "q", "model": "kimi-turbo"}), true)
        .await;
    let content = structured(&reply)["content"].as_str().unwrap().to_owned();
    assert_eq!(content, "The answer is forty-two, as computed.");
    assert!(
        progress.len() >= 3,
        "text should stream in several notifications: {progress:?}"
    );
    assert_eq!(
        progress.concat(),
        content,
        "the progress messages carry the answer as it arrives"
    );
}

#[tokio::test]
async fn a_slow_upstream_gets_heartbeats_so_client_timers_keep_resetting() {
    let sim = sim().await;
    sim.push_script(
        "glm-4.6",
        Script::reply("late but complete").with_ttft_ms(Delay::Fixed(3_500)),
    );
    let mut raw = exai(&sim, &[("EXAI_PROGRESS_HEARTBEAT_SECS", "1")]).await;
    raw.send(&json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"chat","arguments":{"prompt":"q","model":"glm"},"_meta":{"progressToken":"hb"}}}).to_string()).await;
    // A client that gives up after 1.6 s without news (standing in for the usual 60 s cap).
    let cap = Duration::from_millis(1_600);
    let mut last = Instant::now();
    let mut heartbeats = 0;
    let reply = loop {
        let msg = raw.next().await;
        assert!(last.elapsed() < cap, "{:?} passed without a message", last.elapsed());
        last = Instant::now();
        if msg["method"] == "notifications/progress" {
            heartbeats += msg["params"]["message"]
                .as_str()
                .unwrap()
                .starts_with("waiting for glm-4.6") as usize;
        } else {
            break msg;
        }
    };
    assert_eq!(structured(&reply)["content"], "late but complete");
    assert!(
        heartbeats >= 2,
        "expected heartbeats while upstream was silent, got {heartbeats}"
    );
}

/// Three turns across two providers; each request upstream carries the earlier turns.
async fn three_turn_thread(raw: &mut Raw, sim: &SimHandle) -> String {
    let (_, r1) = raw
        .call(10, "chat", json!({"prompt": "My name is Ada.", "model": "kimi"}), false)
        .await;
    let id = structured(&r1)["continuation_id"].as_str().unwrap().to_owned();
    let (_, r2) = raw
        .call(
            11,
            "chat",
            json!({"prompt": "And my name again?", "model": "glm-4.6", "continuation_id": id}),
            false,
        )
        .await;
    assert_eq!(structured(&r2)["continuation_id"], id.as_str());
    let (_, r3) = raw
        .call(
            12,
            "chat",
            json!({"prompt": "Third turn.", "model": "kimi", "continuation_id": id}),
            false,
        )
        .await;
    assert_eq!(structured(&r3)["model"], "kimi-k2-0905-preview");

    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs[1].body.as_ref().unwrap()["model"],
        "glm-4.6",
        "the thread switched model mid-way"
    );
    let second = texts(reqs[1].messages());
    assert_eq!(
        &second[1..],
        ["My name is Ada.", "sim: My name is Ada.", "And my name again?"]
    );
    let third = texts(reqs[2].messages());
    assert_eq!(
        &third[1..],
        [
            "My name is Ada.",
            "sim: My name is Ada.",
            "And my name again?",
            "sim: And my name again?",
            "Third turn."
        ]
    );
    id
}

#[tokio::test]
async fn continuation_threads_carry_earlier_turns_across_models_on_sqlite() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[]).await;
    three_turn_thread(&mut raw, &sim).await;
}

#[tokio::test]
async fn continuation_threads_carry_earlier_turns_across_models_on_postgres() {
    let url = match std::env::var("EXAI_TEST_DATABASE_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_DATABASE_URL must be set in CI"),
        Err(_) => return eprintln!("EXAI_TEST_DATABASE_URL not set: skipping (scripts/test sets it)"),
    };
    let schema = format!("exai_e2e_{}", std::process::id());
    let store = exai_store::PgStore::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required: {e}"));
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_DATABASE_URL", scoped.as_str())]).await;
    let id = three_turn_thread(&mut raw, &sim).await;
    use exai_core::store::Store;
    let stored = store
        .conversation(&id)
        .await
        .unwrap()
        .expect("the thread lives in PostgreSQL");
    assert_eq!(stored.turns.len(), 6);
    assert_eq!(stored.turns[3].model.as_deref(), Some("glm-4.6"));
    drop(raw);
    store.drop_schema(&schema).await.unwrap();
}

#[tokio::test]
async fn files_are_embedded_and_remembered_by_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lib.rs");
    std::fs::write(&file, "pub fn answer() -> u32 { 42 }\n").unwrap();
    let path = file.to_str().unwrap();
    let sim = sim().await;
    // Files must lie under an allowed root (default: the server's working directory).
    let mut raw = exai(&sim, &[("EXAI_ALLOWED_ROOTS", dir.path().to_str().unwrap())]).await;
    let (_, r1) = raw
        .call(20, "chat", json!({"prompt": "Review this.", "files": [path]}), false)
        .await;
    let id = structured(&r1)["continuation_id"].as_str().unwrap().to_owned();
    let (_, _) = raw
        .call(21, "chat", json!({"prompt": "Again?", "continuation_id": id}), false)
        .await;
    for req in sim.chat_requests() {
        let last = texts(req.messages()).pop().unwrap();
        assert!(
            last.contains("pub fn answer() -> u32 { 42 }") && last.contains(path),
            "{last}"
        );
    }
}

#[tokio::test]
async fn every_upstream_failure_is_a_clear_tool_error() {
    let sim = sim().await;
    // One attempt each, so every failure kind surfaces as itself (retries are tested in resilience.rs).
    let mut raw = exai(&sim, &[("GLM_TIMEOUT_SECS", "1"), ("EXAI_RETRY_MAX_ATTEMPTS", "1")]).await;
    let cases = [
        (Script::rate_limited(3), "HTTP 429"),
        (Script::status(500), "HTTP 500"),
        (
            Script::reset_after_chunks(3).with_inter_token_ms(Delay::Fixed(20)),
            "stream broke after",
        ),
        (Script::malformed(), "malformed response"),
        (Script::hang(), "no answer within 1000 ms"),
    ];
    for (i, (script, expected)) in cases.into_iter().enumerate() {
        sim.push_script("glm-4.5-flash", script);
        let (_, reply) = raw
            .call(30 + i as i64, "chat", json!({"prompt": "q", "model": "flash"}), false)
            .await;
        let text = error_text(&reply);
        assert!(text.contains(expected) && text.starts_with("glm: "), "case {i}: {text}");
    }
    // After all that, the next call works.
    let (_, ok) = raw
        .call(40, "chat", json!({"prompt": "fine?", "model": "flash"}), false)
        .await;
    assert_eq!(structured(&ok)["content"], "sim: fine?");
}

#[tokio::test]
async fn a_missing_key_is_named_and_nothing_is_sent_upstream() {
    let sim = sim().await;
    let glm = sim.base_url_glm();
    let mut raw = Raw::start(&[("GLM_BASE_URL", glm.as_str())], &[]).await;
    let (_, reply) = raw.call(1, "chat", json!({"prompt": "q", "model": "glm"}), false).await;
    assert_eq!(
        error_text(&reply),
        "GLM_API_KEY is not set: glm needs an API key (set GLM_API_KEY, or pick another model)"
    );
    assert!(
        sim.chat_requests().is_empty(),
        "no request may reach the provider without a key"
    );
}

#[tokio::test]
async fn bad_chat_arguments_get_specific_errors() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[]).await;
    let cases = [
        (
            json!({"prompt": "q", "model": "gpt-9"}),
            "unknown model `gpt-9`; valid models: glm-4.6, ",
        ),
        (
            json!({"prompt": "q", "continuation_id": "nope"}),
            "start a new conversation",
        ),
        (json!({"prompt": "q", "files": ["relative.rs"]}), "absolute paths"),
        (
            json!({"prompt": "q", "model": "kimi", "images": ["/tmp/x.png"]}),
            "cannot see images",
        ),
        (json!({"prompt": "q", "temperature": 7.5}), "outside"),
        (json!({"prompt": 5}), "invalid type"),
        (json!({}), "missing field `prompt`"),
    ];
    for (i, (args, expected)) in cases.into_iter().enumerate() {
        let (_, reply) = raw.call(50 + i as i64, "chat", args, false).await;
        let text = error_text(&reply);
        assert!(text.contains(expected), "case {i}: {text}");
    }
    assert!(sim.chat_requests().is_empty(), "no invalid call may reach the provider");
}

#[tokio::test]
async fn listmodels_shows_the_registry_and_which_providers_have_keys() {
    let mut raw = Raw::start(&[("GLM_API_KEY", "k")], &[]).await;
    let (_, reply) = raw.call(1, "listmodels", json!({}), false).await;
    let s = structured(&reply);
    let providers = s["providers"].as_array().unwrap();
    assert_eq!(providers[0], json!({"name": "glm", "has_key": true}));
    assert_eq!(providers[1], json!({"name": "kimi", "has_key": false}));
    let glm46 = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "glm-4.6")
        .unwrap();
    assert_eq!(
        (glm46["context_window"].as_u64(), glm46["available"].as_bool()),
        (Some(200_000), Some(true))
    );
    assert!(glm46["aliases"].as_array().unwrap().contains(&json!("glm")));
}

#[tokio::test]
async fn sim_flag_gives_a_keyless_demo_labelled_sim() {
    let mut raw = Raw::start(&[], &["--sim"]).await;
    let (_, reply) = raw.call(1, "chat", json!({"prompt": "hello there"}), false).await;
    let s = structured(&reply);
    assert_eq!(
        (s["provider"].as_str(), s["content"].as_str()),
        (Some("sim"), Some("sim: hello there"))
    );
    let (_, challenge) = raw
        .call(2, "challenge", json!({"prompt": "Rust has no GC"}), false)
        .await;
    let c = structured(&challenge);
    assert!(
        c["challenge_prompt"].as_str().unwrap().contains("\"Rust has no GC\""),
        "{c}"
    );
}

//! Black-box tests: start a simulator, talk to it over real HTTP with reqwest, and check every scripted
//! behaviour (shapes, reasoning, errors, hangs, resets, malformed bodies, web search, recording, queueing).

use std::time::{Duration, Instant};

use exai_sim::{
    Delay, Family, LatencyProfile, ModelSpec, Outcome, Script, ScriptSource, SimConfig, SimHandle, Simulator,
};
use serde_json::{Value, json};

const KEY: &str = "sk-test-key";

async fn start() -> SimHandle {
    Simulator::start_local(SimConfig::default())
        .await
        .expect("simulator starts")
}

fn client() -> reqwest::Client {
    // Workspace builds give reqwest no default rustls provider (exai-providers picks ring explicitly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn chat_body(model: &str, prompt: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": prompt},
    ]})
}

async fn post(sim: &SimHandle, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", sim.url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// The `data:` payloads of complete SSE events in `text`.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

/// Complete events (terminated by a blank line) in `text`.
fn complete_events(text: &str) -> usize {
    text.matches("\n\n").count()
}

fn parse_chunks(data: &[String]) -> Vec<Value> {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("chunk is JSON"))
        .collect()
}

fn joined(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"][field].as_str())
        .collect()
}

#[tokio::test]
async fn non_stream_echo_has_the_chat_completion_shape() {
    let sim = start().await;
    let resp = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("moonshot-v1-8k", "hello there", false),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-exai-simulator"], "1");
    let body: Value = resp.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("simcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "moonshot-v1-8k");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "sim: hello there");
    assert!(choice["message"].get("reasoning_content").is_none());
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &body["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), p + c);
    sim.shutdown().await;
}

#[tokio::test]
async fn kimi_stream_puts_usage_inside_the_final_choice() {
    let sim = start().await;
    let resp = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("kimi-k2-0905-preview", "stream me", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(resp.headers()["x-exai-simulator"], "1");
    let text = resp.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks = parse_chunks(&data);
    assert!(chunks.len() >= 3);
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c["id"].as_str().unwrap().starts_with("simcmpl-"));
        assert_eq!(c["model"], "kimi-k2-0905-preview");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(joined(&chunks, "content"), "sim: stream me");
    assert_eq!(joined(&chunks, "reasoning_content"), "");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last["choices"][0]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(
        last.get("usage").is_none(),
        "Kimi reports streaming usage inside the choice"
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn glm_stream_reasons_first_and_puts_usage_top_level() {
    let sim = start().await;
    let resp = post(
        &sim,
        "/api/paas/v4/chat/completions",
        &chat_body("glm-4.6", "think about it", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let chunks = parse_chunks(&sse_data(&resp.text().await.unwrap()));
    let reasoning = joined(&chunks, "reasoning_content");
    assert!(
        reasoning.contains("think about it"),
        "GLM-4.6 thinks by default: {reasoning:?}"
    );
    assert_eq!(joined(&chunks, "content"), "sim: think about it");
    let first_content = chunks.iter().position(|c| {
        c["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    });
    let last_reasoning = chunks
        .iter()
        .rposition(|c| c["choices"][0]["delta"]["reasoning_content"].is_string());
    assert!(
        last_reasoning.unwrap() < first_content.unwrap(),
        "reasoning precedes content"
    );
    assert!(chunks.iter().all(|c| c["choices"][0]["delta"]["role"] == "assistant"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

    // `thinking: disabled` switches reasoning off.
    let mut body = chat_body("glm-4.6", "no thinking", true);
    body["thinking"] = json!({"type": "disabled"});
    let chunks = parse_chunks(&sse_data(
        &post(&sim, "/api/paas/v4/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap(),
    ));
    assert_eq!(joined(&chunks, "reasoning_content"), "");
    assert_eq!(joined(&chunks, "content"), "sim: no thinking");
    sim.shutdown().await;
}

#[tokio::test]
async fn openai_family_streams_usage_only_when_asked() {
    let sim = start().await;
    let plain = parse_chunks(&sse_data(
        &post(&sim, "/chat/completions", &chat_body("sim-echo", "x", true))
            .await
            .text()
            .await
            .unwrap(),
    ));
    assert!(
        plain
            .iter()
            .all(|c| c.get("usage").is_none() && c["choices"][0].get("usage").is_none())
    );

    let mut body = chat_body("sim-echo", "x", true);
    body["stream_options"] = json!({"include_usage": true});
    let chunks = parse_chunks(&sse_data(
        &post(&sim, "/chat/completions", &body).await.text().await.unwrap(),
    ));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    sim.shutdown().await;
}

#[tokio::test]
async fn thinking_model_returns_reasoning_in_both_modes() {
    let sim = start().await;
    let body: Value = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("kimi-thinking-preview", "why?", false),
    )
    .await
    .json()
    .await
    .unwrap();
    let message = &body["choices"][0]["message"];
    assert!(message["reasoning_content"].as_str().unwrap().contains("why?"));
    assert_eq!(message["content"], "sim: why?");

    let script = Script::reply("answer")
        .with_reasoning("step one, step two")
        .with_chunk_chars(3);
    let resp = client()
        .post(format!("{}/v1/chat/completions", sim.url()))
        .bearer_auth(KEY)
        .header("x-sim-script", script.to_header_value())
        .json(&chat_body("kimi-k2-turbo-preview", "q", true))
        .send()
        .await
        .unwrap();
    let chunks = parse_chunks(&sse_data(&resp.text().await.unwrap()));
    assert_eq!(joined(&chunks, "reasoning_content"), "step one, step two");
    assert_eq!(joined(&chunks, "content"), "answer");
    let reasoning_chunks = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["reasoning_content"].is_string())
        .count();
    assert_eq!(reasoning_chunks, 6, "18 characters in chunks of 3");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_sends_retry_after_and_the_family_error_body() {
    let sim = start().await;
    sim.push_script("kimi-k2-0905-preview", Script::rate_limited(7));
    let resp = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("kimi-k2-0905-preview", "hi", false),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["x-exai-simulator"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_reached_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("exai-sim"));

    sim.push_script("glm-4.5", Script::rate_limited(3));
    let resp = post(&sim, "/api/paas/v4/chat/completions", &chat_body("glm-4.5", "hi", true)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "1302");

    for status in [400u16, 401, 500, 502, 503] {
        sim.push_script("*", Script::status(status).with_error_style(Family::OpenAi));
        let resp = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-32k", "hi", false)).await;
        assert_eq!(resp.status().as_u16(), status);
        assert!(resp.headers().get("retry-after").is_none());
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["message"].is_string() && body["error"]["type"].is_string());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn queued_scripts_fail_the_next_calls_then_succeed() {
    let sim = start().await;
    sim.push_script("glm-4.5-air", Script::status(503));
    sim.push_script("glm-4.5-air", Script::status(503));
    // Another model is unaffected by the queue.
    let other = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-128k", "a", false)).await;
    assert_eq!(other.status(), 200);
    let statuses = [
        post(
            &sim,
            "/api/paas/v4/chat/completions",
            &chat_body("glm-4.5-air", "a", false),
        )
        .await
        .status(),
        post(
            &sim,
            "/api/paas/v4/chat/completions",
            &chat_body("glm-4.5-air", "a", false),
        )
        .await
        .status(),
        post(
            &sim,
            "/api/paas/v4/chat/completions",
            &chat_body("glm-4.5-air", "a", false),
        )
        .await
        .status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [503, 503, 200]);
    assert_eq!(sim.state().queued(), 0);
    let sources: Vec<_> = sim.chat_requests().iter().map(|r| r.script_source).collect();
    assert_eq!(
        sources,
        [
            Some(ScriptSource::Default),
            Some(ScriptSource::Queued),
            Some(ScriptSource::Queued),
            Some(ScriptSource::Default)
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn script_precedence_is_queued_then_header_then_model_then_echo() {
    let config = SimConfig::default().with_model_script("sim-echo", Script::reply("from model"));
    let sim = Simulator::start_local(config).await.unwrap();
    let send = |header: Option<Script>| {
        let mut req = client()
            .post(format!("{}/v1/chat/completions", sim.url()))
            .bearer_auth(KEY);
        if let Some(s) = header {
            req = req.header("x-sim-script", s.to_header_value());
        }
        async move {
            let body: Value = req
                .json(&chat_body("sim-echo", "p", false))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["choices"][0]["message"]["content"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(send(None).await, "from model");
    assert_eq!(
        send(Some(Script::reply("from header ünïcode"))).await,
        "from header ünïcode"
    );
    sim.push_script("sim-echo", Script::reply("from queue"));
    assert_eq!(send(Some(Script::reply("from header"))).await, "from queue");
    sim.state().set_model_script("sim-echo", None);
    assert_eq!(send(None).await, "sim: p");

    let bad = client()
        .post(format!("{}/v1/chat/completions", sim.url()))
        .bearer_auth(KEY)
        .header("x-sim-script", r#"{"replyy": "typo"}"#)
        .json(&chat_body("sim-echo", "p", false))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("x-sim-script"));
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_or_empty_key_is_401_with_an_openai_error() {
    let sim = start().await;
    let url = format!("{}/v1/chat/completions", sim.url());
    let no_key = client()
        .post(&url)
        .json(&chat_body("sim-echo", "x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(no_key.headers()["x-exai-simulator"], "1");
    let body: Value = no_key.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].is_string() && body["error"]["code"].is_string());

    let empty = client()
        .post(&url)
        .header("authorization", "Bearer ")
        .json(&chat_body("sim-echo", "x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 401);
    let models = client().get(format!("{}/v1/models", sim.url())).send().await.unwrap();
    assert_eq!(models.status(), 401);
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.status == 401 && r.outcome == Outcome::Completed)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_times_out_the_client_and_records_the_hang_up() {
    let sim = start().await;
    sim.push_script("*", Script::hang());
    let started = Instant::now();
    let err = client()
        .post(format!("{}/v1/chat/completions", sim.url()))
        .bearer_auth(KEY)
        .timeout(Duration::from_millis(300))
        .json(&chat_body("kimi-k2-0905-preview", "anyone?", false))
        .send()
        .await
        .expect_err("a hanging upstream never answers");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let hung_up = sim
        .wait_for(Duration::from_secs(5), |reqs| reqs.len() == 1 && reqs[0].hung_up())
        .await;
    assert!(hung_up, "recorded: {:?}", sim.requests());
    assert_eq!(sim.requests()[0].status, 0, "no status was ever sent");
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_after_chunks_goes_silent_mid_stream() {
    let sim = start().await;
    sim.push_script("*", Script::hang_after_chunks(2));
    let mut resp = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("moonshot-v1-8k", "a long enough prompt", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    while complete_events(&text) < 2 {
        let chunk = resp.chunk().await.unwrap().expect("more body");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(complete_events(&text), 2);
    let next = tokio::time::timeout(Duration::from_millis(300), resp.chunk()).await;
    assert!(next.is_err(), "the stream should stall after 2 chunks, got {next:?}");
    drop(resp);
    assert!(sim.wait_for(Duration::from_secs(5), |r| r[0].hung_up()).await);
    assert_eq!(sim.requests()[0].chunks_sent, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_after_chunks_aborts_the_stream_without_done() {
    let sim = start().await;
    sim.push_script("*", Script::reset_after_chunks(3));
    let mut resp = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("kimi-k2-0905-preview", "reset me please", true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let error = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Ok(None) => panic!("stream ended cleanly after {text:?}"),
            Err(e) => break e,
        }
    };
    assert!(error.is_body() || error.is_decode() || error.is_request(), "{error:?}");
    assert_eq!(sse_data(&text).len(), 3);
    assert!(!text.contains("[DONE]"));
    let rec = &sim.requests()[0];
    assert_eq!(rec.outcome, Outcome::Aborted);
    assert_eq!(rec.chunks_sent, 3);

    // Non-streaming: half a JSON body, then the connection drops.
    sim.push_script("*", Script::reset_after_chunks(1));
    let resp = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("kimi-k2-0905-preview", "x", false),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_do_not_parse() {
    let sim = start().await;
    sim.push_script("*", Script::malformed());
    let resp = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-8k", "x", false)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.is_empty());
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    sim.push_script("*", Script::malformed());
    let text = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-8k", "y", true))
        .await
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    let invalid: Vec<_> = data
        .iter()
        .filter(|d| d.as_str() != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .collect();
    assert_eq!(invalid.len(), 1, "{data:?}");
    assert_eq!(data.last().unwrap(), "[DONE]");
    sim.shutdown().await;
}

#[tokio::test]
async fn web_search_round_trip_mirrors_kimi_builtin_functions() {
    let sim = start().await;
    let tools = json!([{"type": "builtin_function", "function": {"name": "$web_search"}}]);
    let mut body = chat_body("kimi-k2-0905-preview", "latest rust release?", false);
    body["tools"] = tools.clone();
    let header = Script::web_search().to_header_value();
    let send = |body: Value| {
        client()
            .post(format!("{}/v1/chat/completions", sim.url()))
            .bearer_auth(KEY)
            .header("x-sim-script", header.clone())
            .json(&body)
            .send()
    };

    let first: Value = send(body.clone()).await.unwrap().json().await.unwrap();
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "builtin_function");
    assert_eq!(call["function"]["name"], "$web_search");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["query"], "latest rust release?");
    assert!(args["search_result"]["search_id"].is_string());

    // Send the arguments back verbatim as the tool result, as Moonshot documents.
    let mut messages = body["messages"].as_array().unwrap().clone();
    messages.push(choice["message"].clone());
    messages.push(
        json!({"role": "tool", "tool_call_id": call["id"], "name": "$web_search",
        "content": call["function"]["arguments"]}),
    );
    let mut second_body = body.clone();
    second_body["messages"] = json!(messages);
    let second: Value = send(second_body.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    let content = second["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("sim: latest rust release?") && content.contains("web_search"),
        "{content}"
    );

    // A tool result for an unknown call id is rejected like Kimi does.
    let mut orphan = second_body.clone();
    orphan["messages"][3]["tool_call_id"] = json!("not-a-call");
    let resp = send(orphan).await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");

    // Streaming first leg: the tool call arrives as a delta.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = parse_chunks(&sse_data(&send(streamed).await.unwrap().text().await.unwrap()));
    let delta_call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .unwrap();
    assert_eq!(delta_call[0]["function"]["name"], "$web_search");
    assert_eq!(delta_call[0]["index"], 0);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
    sim.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_with_headers_body_and_path() {
    let sim = start().await;
    let resp = client()
        .post(format!("{}/api/paas/v4/chat/completions?x=1", sim.url()))
        .bearer_auth("glm-secret")
        .header("x-custom", "yes")
        .json(&chat_body("glm-4.5-flash", "record me", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = client()
        .get(format!("{}/v1/models", sim.url()))
        .bearer_auth("kimi-secret")
        .send()
        .await
        .unwrap();
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 2);
    let chat = &reqs[0];
    assert_eq!(
        (chat.seq, chat.method.as_str(), chat.path.as_str()),
        (1, "POST", "/api/paas/v4/chat/completions")
    );
    assert_eq!(chat.bearer(), Some("glm-secret"));
    assert_eq!(chat.header("Authorization"), Some("Bearer glm-secret"));
    assert_eq!(chat.header("x-custom"), Some("yes"));
    assert_eq!(chat.model.as_deref(), Some("glm-4.5-flash"));
    assert!(!chat.stream);
    assert_eq!(chat.messages().len(), 2);
    assert_eq!(chat.body.as_ref().unwrap()["messages"][1]["content"], "record me");
    assert_eq!((chat.status, chat.outcome), (200, Outcome::Completed));
    assert_eq!(reqs[1].path, "/v1/models");
    assert_eq!(reqs[1].bearer(), Some("kimi-secret"));
    assert_eq!(sim.chat_requests().len(), 1);

    sim.push_script("*", Script::status(500));
    sim.reset();
    assert!(sim.requests().is_empty());
    assert_eq!(sim.state().queued(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn client_hang_up_mid_stream_is_recorded() {
    let sim = start().await;
    let script = Script::reply("a fairly long answer that takes a while").with_inter_token_ms(Delay::Fixed(100));
    sim.push_script("*", script);
    let mut resp = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-8k", "x", true)).await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(resp);
    assert!(
        sim.wait_for(Duration::from_secs(5), |r| r[0].hung_up()).await,
        "{:?}",
        sim.requests()
    );
    let rec = &sim.requests()[0];
    assert!(rec.chunks_sent >= 1 && rec.chunks_sent < 10, "{rec:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn models_endpoint_lists_the_configured_models() {
    let sim = start().await;
    for path in ["/v1/models", "/api/paas/v4/models", "/models"] {
        let resp = client()
            .get(format!("{}{path}", sim.url()))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "list");
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        for id in [
            "glm-4.6",
            "glm-4.5v",
            "kimi-k2-0905-preview",
            "kimi-thinking-preview",
            "moonshot-v1-128k",
            "sim-echo",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert_eq!(body["data"][0]["owned_by"], "z-ai");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_models_and_paths_get_provider_style_errors() {
    let sim = start().await;
    let kimi = post(&sim, "/v1/chat/completions", &chat_body("kimi-nonexistent", "x", false)).await;
    assert_eq!(kimi.status(), 404);
    assert_eq!(
        kimi.json::<Value>().await.unwrap()["error"]["type"],
        "resource_not_found_error"
    );
    let glm = post(&sim, "/api/paas/v4/chat/completions", &chat_body("glm-9", "x", false)).await;
    assert_eq!(glm.status(), 400);
    assert_eq!(glm.json::<Value>().await.unwrap()["error"]["code"], "1211");
    let nowhere = post(&sim, "/v1/embeddings", &json!({})).await;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(nowhere.headers()["x-exai-simulator"], "1");
    let not_json = client()
        .post(format!("{}/v1/chat/completions", sim.url()))
        .bearer_auth(KEY)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    let open = Simulator::start_local(SimConfig::default().accepting_unknown_models())
        .await
        .unwrap();
    let resp = post(&open, "/v1/chat/completions", &chat_body("glm-5-future", "x", false)).await;
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
    open.shutdown().await;
}

#[tokio::test]
async fn scripted_delays_hold_back_the_first_token() {
    let sim = start().await;
    sim.push_script("*", Script::reply("ok").with_ttft_ms(Delay::Fixed(200)));
    let started = Instant::now();
    let resp = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-8k", "x", false)).await;
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(200));

    sim.push_script(
        "*",
        Script::reply("abcdef")
            .with_chunk_chars(2)
            .with_ttft_ms(Delay::Range([150, 160]))
            .with_inter_token_ms(Delay::Fixed(50)),
    );
    let started = Instant::now();
    let mut resp = post(&sim, "/v1/chat/completions", &chat_body("moonshot-v1-8k", "x", true)).await;
    let headers_at = started.elapsed();
    let _ = resp.chunk().await.unwrap().unwrap();
    let first_chunk_at = started.elapsed();
    assert!(
        headers_at < Duration::from_millis(150),
        "headers go out at once: {headers_at:?}"
    );
    assert!(first_chunk_at >= Duration::from_millis(150), "{first_chunk_at:?}");
    while resp.chunk().await.unwrap().is_some() {}
    assert!(started.elapsed() >= Duration::from_millis(150 + 3 * 50));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn realistic_profile_runs_under_paused_time() {
    let config = SimConfig::default().with_latency(LatencyProfile::Realistic);
    let sim = Simulator::start_local(config).await.unwrap();
    let started = tokio::time::Instant::now();
    let body: Value = post(
        &sim,
        "/v1/chat/completions",
        &chat_body("kimi-k2-0905-preview", "slow", false),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "sim: slow");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_990) && waited <= Duration::from_secs(11),
        "{waited:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_off_hanging_requests_promptly() {
    let sim = start().await;
    sim.push_script("*", Script::hang());
    let url = format!("{}/v1/chat/completions", sim.url());
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .bearer_auth(KEY)
            .json(&chat_body("sim-echo", "x", false))
            .send()
            .await
    });
    let state = sim.state().clone();
    assert!(state.wait_for(Duration::from_secs(5), |r| r.len() == 1).await);
    let started = Instant::now();
    sim.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let outcome = tokio::time::timeout(Duration::from_secs(3), pending)
        .await
        .expect("client finished")
        .unwrap();
    if let Ok(resp) = outcome {
        assert_eq!(resp.status(), 503);
    }
    assert!(!state.requests()[0].hung_up(), "shutdown is not a client hang-up");
}

#[tokio::test]
async fn router_can_be_mounted_and_custom_models_added() {
    let config = SimConfig::default().with_model(
        ModelSpec::new("glm-custom")
            .thinking()
            .with_script(Script::reply("custom")),
    );
    let state = exai_sim::SimState::new(config);
    let app = exai_sim::router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum_serve(listener, app).await });
    let resp = client()
        .post(format!("http://{addr}/api/paas/v4/chat/completions"))
        .bearer_auth(KEY)
        .json(&chat_body("glm-custom", "x", false))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "custom");
    assert!(body["choices"][0]["message"]["reasoning_content"].is_string());
    assert_eq!(body["request_id"], body["id"], "GLM bodies carry request_id");
    assert_eq!(state.requests().len(), 1);
    server.abort();
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    axum::serve(listener, app).await.unwrap();
}

#[tokio::test]
async fn the_peak_of_chat_requests_in_flight_is_recorded_streaming_or_not() {
    let sim = start().await;
    sim.state()
        .set_model_script("glm-4.6", Some(Script::echo().with_ttft_ms(Delay::Fixed(300))));
    assert_eq!(sim.peak_chats_in_flight(), 0);
    let bodies: Vec<Value> = (0..3).map(|i| chat_body("glm-4.6", "q", i % 2 == 0)).collect();
    let calls = bodies.iter().map(|b| post(&sim, "/api/paas/v4/chat/completions", b));
    for resp in futures::future::join_all(calls).await {
        resp.text().await.unwrap();
    }
    assert_eq!(sim.peak_chats_in_flight(), 3);
    assert_eq!(
        sim.state().chats_in_flight(),
        0,
        "every finished request left the count"
    );
    sim.reset();
    post(&sim, "/api/paas/v4/chat/completions", &chat_body("glm-4.6", "q", false))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(sim.peak_chats_in_flight(), 1, "reset starts the peak again");
}

//! The MCP Tasks extension (SEP-2663) end to end: `chat` against a slow simulated upstream, started as a task
//! over stdio and HTTP, polled to its result, cancelled (the upstream sees the hang-up), isolated per session,
//! and unchanged for clients that do not declare the extension.

use std::time::{Duration, Instant};

use exai_sim::{Delay, Recorded, Script, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

use crate::support::{Daemon, Raw};

pub(crate) const TASKS: &str = "io.modelcontextprotocol/tasks";

pub(crate) async fn sim() -> SimHandle {
    Simulator::start_local(SimConfig::default()).await.unwrap()
}

/// Provider settings pointing GLM and Kimi at `sim`, with a 1 s heartbeat so status messages move.
pub(crate) fn env(sim: &SimHandle) -> Vec<(&'static str, String)> {
    vec![
        ("GLM_BASE_URL", sim.base_url_glm()),
        ("KIMI_BASE_URL", sim.base_url_v1()),
        ("GLM_API_KEY", "test-glm-key".into()),
        ("KIMI_API_KEY", "test-kimi-key".into()),
        ("EXAI_PROGRESS_HEARTBEAT_SECS", "1".into()),
    ]
}

pub(crate) fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A slow model: the first token after `ms`.
pub(crate) fn slow(sim: &SimHandle, text: &str, ms: u64) {
    sim.push_script("glm-4.6", Script::reply(text).with_ttft_ms(Delay::Fixed(ms)));
}

pub(crate) fn chat_args() -> Value {
    json!({"prompt": "think hard", "model": "glm"})
}

/// Per-request capabilities declaring the extension (SEP-2575 `_meta`).
pub(crate) fn opt_in() -> Value {
    json!({"io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}})
}

/// Sends a request over stdio and returns its reply, skipping notifications.
async fn ask(raw: &mut Raw, id: i64, method: &str, params: Value) -> Value {
    raw.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string())
        .await;
    loop {
        let msg = raw.next().await;
        if msg["id"] == id {
            return msg;
        }
    }
}

/// Records one `tasks/get` reply's status message; true once the task is terminal.
fn terminal(reply: &Value, messages: &mut Vec<String>, started: Instant) -> bool {
    let task = &reply["result"];
    assert_eq!(task["resultType"], "complete", "{reply}");
    if let Some(m) = task["statusMessage"].as_str() {
        messages.push(m.to_owned());
    }
    if ["completed", "failed", "cancelled"].contains(&task["status"].as_str().unwrap_or_default()) {
        return true;
    }
    assert_eq!(task["status"], "working", "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "task never finished: {reply}"
    );
    false
}

/// Polls `tasks/get` over stdio (request ids from `n + 1`) until the task is terminal; returns every status
/// message seen and the last reply.
async fn poll_stdio(raw: &mut Raw, task_id: &str, mut n: i64) -> (Vec<String>, Value) {
    let (started, mut messages) = (Instant::now(), Vec::new());
    loop {
        n += 1;
        let reply = ask(raw, n, "tasks/get", json!({"taskId": task_id, "_meta": opt_in()})).await;
        if terminal(&reply, &mut messages, started) {
            return (messages, reply);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The same through any `tasks/get` call.
pub(crate) async fn poll<F, Fut>(get: F) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let (started, mut messages) = (Instant::now(), Vec::new());
    loop {
        let reply = get().await;
        if terminal(&reply, &mut messages, started) {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The task handle of a `tools/call` reply, after checking it is a flat `CreateTaskResult`.
pub(crate) fn handle(reply: &Value) -> String {
    let r = &reply["result"];
    assert_eq!(r["resultType"], "task", "{reply}");
    assert_eq!(r["status"], "working", "{reply}");
    assert!(r.get("content").is_none() && r.get("task").is_none(), "{reply}");
    assert!(
        r["ttlMs"].as_u64().unwrap() >= 300_000,
        "the TTL covers the chat deadline: {reply}"
    );
    assert!(r["pollIntervalMs"].as_u64().is_some(), "{reply}");
    r["taskId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_slow_chat_runs_as_a_task_and_is_polled_to_its_result() {
    let sim = sim().await;
    slow(&sim, "worth the wait", 2_500);
    let env = env(&sim);
    let mut raw = Raw::start(&borrowed(&env), &[]).await;
    let started = Instant::now();
    let params = json!({"name": "chat", "arguments": chat_args(), "_meta": opt_in()});
    let created = ask(&mut raw, 1, "tools/call", params).await;
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the handle comes back at once"
    );
    let id = handle(&created);

    let (messages, done) = poll_stdio(&mut raw, &id, 1).await;
    let task = &done["result"];
    assert_eq!(task["status"], "completed", "{done}");
    assert_eq!(task["taskId"], id.as_str());
    assert_eq!(task["result"]["isError"], false, "{done}");
    assert_eq!(task["result"]["structuredContent"]["content"], "worth the wait");
    assert!(
        messages.iter().any(|m| m.starts_with("waiting for glm-4.6")),
        "the status message follows the progress heartbeats: {messages:?}"
    );
    assert_eq!(sim.chat_requests().len(), 1);
}

#[tokio::test]
async fn cancelling_a_task_drops_the_upstream_request() {
    let sim = sim().await;
    slow(&sim, "never delivered", 60_000);
    let env = env(&sim);
    let mut raw = Raw::start(&borrowed(&env), &[]).await;
    let params = json!({"name": "chat", "arguments": chat_args(), "_meta": opt_in()});
    let id = handle(&ask(&mut raw, 1, "tools/call", params).await);
    let upstream = sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await;
    assert!(upstream, "the task reached the upstream");
    assert!(!sim.requests()[0].hung_up());

    let ack = ask(&mut raw, 2, "tasks/cancel", json!({"taskId": id, "_meta": opt_in()})).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "an empty ack: {ack}");
    let hung_up = sim
        .wait_for(Duration::from_secs(5), |r| r.iter().any(Recorded::hung_up))
        .await;
    assert!(hung_up, "the upstream request was closed: {:?}", sim.requests());

    let (_, done) = poll_stdio(&mut raw, &id, 2).await;
    assert_eq!(done["result"]["status"], "cancelled", "{done}");
    assert!(done["result"].get("result").is_none(), "{done}");
    // Cancelling a finished task is still an empty ack.
    let again = ask(&mut raw, 99, "tasks/cancel", json!({"taskId": id, "_meta": opt_in()})).await;
    assert_eq!(again["result"], json!({"resultType": "complete"}), "{again}");
}

#[tokio::test]
async fn a_client_without_the_extension_gets_a_plain_result() {
    let sim = sim().await;
    slow(&sim, "plain as before", 800);
    let env = env(&sim);
    let mut raw = Raw::start(&borrowed(&env), &[]).await;
    let (_, reply) = raw.call(1, "chat", chat_args(), false).await;
    let result = &reply["result"];
    assert!(result.get("taskId").is_none(), "{reply}");
    assert_ne!(result["resultType"], "task", "{reply}");
    assert_eq!(result["structuredContent"]["content"], "plain as before", "{reply}");

    // Tier-1 tools answer synchronously even for a client that declares the extension.
    let params = json!({"name": "version", "arguments": {}, "_meta": opt_in()});
    let version = ask(&mut raw, 2, "tools/call", params).await;
    assert_eq!(version["result"]["structuredContent"]["name"], "exai", "{version}");

    // The task methods need the extension: -32021, naming it.
    let err = ask(&mut raw, 3, "tasks/get", json!({"taskId": "nope"})).await;
    assert_eq!(err["error"]["code"], -32021, "{err}");
    assert!(
        err["error"]["data"]["requiredCapabilities"]["extensions"][TASKS].is_object(),
        "{err}"
    );
    // With it, an unknown task is invalid params.
    let err = ask(&mut raw, 4, "tasks/get", json!({"taskId": "nope", "_meta": opt_in()})).await;
    assert_eq!(err["error"]["code"], -32602, "{err}");
}

// ---- HTTP -------------------------------------------------------------------------------------------------

const ACCEPT: &str = "application/json, text/event-stream";

/// POSTs one JSON-RPC request and returns the reply (from a JSON or SSE body).
async fn post(daemon: &Daemon, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = reqwest::Client::new()
        .post(daemon.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let text = req.body(body.to_string()).send().await.unwrap().text().await.unwrap();
    crate::support::jsonrpc_reply(&text)
}

/// A stateless 2026-07-28 request declaring the extension; `name` is the `Mcp-Name` (tool or task id).
pub(crate) async fn stateless(daemon: &Daemon, method: &str, name: &str, mut params: Value) -> Value {
    let mut meta = opt_in();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2026-07-28");
    meta["io.modelcontextprotocol/clientInfo"] = json!({"name": "tasks-test", "version": "1"});
    params["_meta"] = meta;
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
        ("mcp-name", name),
    ];
    post(
        daemon,
        &headers,
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await
}

/// A 2025-11-25 session that declared the extension at `initialize`; returns its session id.
pub(crate) async fn session(daemon: &Daemon) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {"extensions": {TASKS: {}}}, "clientInfo": {"name": "tasks-test", "version": "1"}}});
    let resp = reqwest::Client::new()
        .post(daemon.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    let id = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let headers = [("mcp-session-id", id.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    reqwest::Client::new()
        .post(daemon.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .header(headers[0].0, headers[0].1)
        .header(headers[1].0, headers[1].1)
        .body(initialized.to_string())
        .send()
        .await
        .unwrap();
    id
}

pub(crate) async fn in_session(daemon: &Daemon, session: &str, method: &str, params: Value) -> Value {
    let headers = [("mcp-session-id", session), ("mcp-protocol-version", "2025-11-25")];
    post(
        daemon,
        &headers,
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
    )
    .await
}

#[tokio::test]
async fn over_stateless_http_a_task_outlives_its_request() {
    let sim = sim().await;
    slow(&sim, "answered later", 1_500);
    let env = env(&sim);
    let daemon = Daemon::start(&borrowed(&env), &[]).await;
    let discover = stateless(&daemon, "server/discover", "", json!({})).await;
    assert_eq!(
        discover["result"]["capabilities"]["extensions"],
        json!({TASKS: {}}),
        "{discover}"
    );

    let created = stateless(
        &daemon,
        "tools/call",
        "chat",
        json!({"name": "chat", "arguments": chat_args()}),
    )
    .await;
    let id = handle(&created);
    let done = poll(|| stateless(&daemon, "tasks/get", &id, json!({"taskId": id}))).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["content"],
        "answered later"
    );
}

#[tokio::test]
async fn a_session_sees_only_its_own_tasks() {
    let sim = sim().await;
    slow(&sim, "for session a", 1_000);
    let env = env(&sim);
    let daemon = Daemon::start(&borrowed(&env), &[]).await;
    let (a, b) = (session(&daemon).await, session(&daemon).await);
    let created = in_session(
        &daemon,
        &a,
        "tools/call",
        json!({"name": "chat", "arguments": chat_args()}),
    )
    .await;
    let id = handle(&created);

    for (who, reply) in [
        (
            "session b",
            in_session(&daemon, &b, "tasks/get", json!({"taskId": id})).await,
        ),
        (
            "session b",
            in_session(&daemon, &b, "tasks/cancel", json!({"taskId": id})).await,
        ),
        (
            "a stateless caller",
            stateless(&daemon, "tasks/get", &id, json!({"taskId": id})).await,
        ),
    ] {
        assert_eq!(reply["error"]["code"], -32602, "{who} must not see the task: {reply}");
    }
    let done = poll(|| in_session(&daemon, &a, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(done["result"]["status"], "completed", "session a still owns it: {done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["content"],
        "for session a"
    );
}

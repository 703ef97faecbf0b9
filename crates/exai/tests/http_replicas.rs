//! 2025-11-25 Streamable HTTP sessions (`initialize` + `Mcp-Session-Id`) served by any replica: raw JSON-RPC to
//! `exai serve` replicas sharing PostgreSQL (a schema of the test's own) or one SQLite file across a restart.

use std::time::{Duration, Instant};

use exai_sim::SimHandle;
use serde_json::{Value, json};

use crate::chat::sim;
use crate::replicas::{database_url, fresh_schema, replica};
use crate::support::{Daemon, jsonrpc_reply};

const ACCEPT: &str = "application/json, text/event-stream";
const TASKS: &str = "io.modelcontextprotocol/tasks";

async fn post(daemon: &Daemon, session: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(daemon.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", ACCEPT);
    if let Some(id) = session {
        req = req
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25");
    }
    req.body(body.to_string()).send().await.unwrap()
}

/// `initialize` (2025-11-25, declaring the tasks extension when `tasks`) and `notifications/initialized` on
/// `daemon`; returns the session id.
async fn open_session(daemon: &Daemon, tasks: bool) -> String {
    let capabilities = if tasks {
        json!({"extensions": {TASKS: {}}})
    } else {
        json!({})
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": capabilities, "clientInfo": {"name": "replicas-test", "version": "1"}}});
    let resp = post(daemon, None, &init).await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let reply = jsonrpc_reply(&resp.text().await.unwrap());
    assert_eq!(reply["result"]["protocolVersion"], "2025-11-25", "{reply}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(daemon, Some(&id), &initialized).await.status(), 202);
    id
}

/// A request in session `id` on `daemon`: the HTTP status and, when 200, the JSON-RPC reply.
async fn ask(daemon: &Daemon, id: &str, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let resp = post(daemon, Some(id), &body).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        if status == 200 {
            jsonrpc_reply(&text)
        } else {
            Value::Null
        },
    )
}

async fn delete(daemon: &Daemon, id: &str) -> u16 {
    reqwest::Client::new()
        .delete(daemon.url("/mcp"))
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn tool_names(reply: &Value) -> Vec<String> {
    reply["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {reply}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `tasks/get` in session `id` on `daemon` until the task ends.
async fn finished(daemon: &Daemon, id: &str, task: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, reply) = ask(daemon, id, "tasks/get", json!({"taskId": task})).await;
        assert_eq!(status, 200, "{reply}");
        if reply["result"]["status"] != "working" {
            return reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "task never finished: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// A replica on its own SQLite store in `data_dir` (a temporary one when `None`).
async fn sqlite_replica(sim: &SimHandle, data_dir: Option<&std::path::Path>) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
    ];
    match data_dir {
        Some(dir) => Daemon::start(&env, &["--data-dir", dir.to_str().unwrap()]).await,
        None => Daemon::start(&env, &[]).await,
    }
}

#[tokio::test]
async fn a_session_opened_on_one_replica_is_served_by_another_and_a_delete_ends_it_everywhere() {
    let Some(url) = database_url() else { return };
    let (scoped, _cleanup) = fresh_schema(&url, "http_replicas").await;
    let sim = sim().await;
    let (a, b, c) = (
        replica(&sim, &scoped).await,
        replica(&sim, &scoped).await,
        replica(&sim, &scoped).await,
    );

    // Opened on A, declaring the tasks extension; B has never seen it.
    let id = open_session(&a, true).await;
    let (status, listed) = ask(&b, &id, "tools/list", json!({})).await;
    assert_eq!(status, 200, "B serves a session opened on A");
    assert!(tool_names(&listed).contains(&"chat".to_owned()), "{listed}");

    // B remembers what the client declared at A's initialize: a model-backed call becomes a task.
    let (status, created) = ask(
        &b,
        &id,
        "tools/call",
        json!({"name": "chat", "arguments": {"prompt": "hello from replica b", "model": "glm"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        created["result"]["resultType"], "task",
        "the restored session keeps the tasks extension declared at initialize: {created}"
    );
    let task = created["result"]["taskId"].as_str().unwrap().to_owned();
    let done = finished(&b, &id, &task).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["content"],
        "sim: hello from replica b"
    );
    // Tasks stay owned by their session on the replica that restored it.
    let other = open_session(&b, true).await;
    let (_, foreign) = ask(&b, &other, "tasks/get", json!({"taskId": task})).await;
    assert_eq!(
        foreign["error"]["code"], -32602,
        "another session must not see the task: {foreign}"
    );

    // A still serves it too (it opened it); a call that is no task works on both.
    let version = json!({"name": "version", "arguments": {}});
    for replica in [&a, &b] {
        let (status, reply) = ask(replica, &id, "tools/call", version.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(reply["result"]["structuredContent"]["name"], "exai", "{reply}");
    }

    // DELETE on B: gone on B, on A (which held it in memory) and on C (which never saw it).
    assert_eq!(delete(&b, &id).await, 204);
    for (name, replica) in [("B", &b), ("A", &a), ("C", &c)] {
        let (status, _) = ask(replica, &id, "tools/list", json!({})).await;
        assert_eq!(status, 404, "a deleted session is gone on {name} (HTTP {status})");
    }
    // The other session is untouched.
    assert_eq!(ask(&a, &other, "tools/list", json!({})).await.0, 200);
}

#[tokio::test]
async fn replicas_that_share_no_store_do_not_share_sessions() {
    // The negative control: the same steps with two SQLite files fail on B, so the test above can fail.
    let sim = sim().await;
    let (a, b) = (sqlite_replica(&sim, None).await, sqlite_replica(&sim, None).await);
    let id = open_session(&a, false).await;
    assert_eq!(ask(&a, &id, "tools/list", json!({})).await.0, 200);
    assert_eq!(
        ask(&b, &id, "tools/list", json!({})).await.0,
        404,
        "B has no record of it"
    );
}

#[tokio::test]
async fn a_session_survives_a_daemon_restart_on_sqlite() {
    let sim = sim().await;
    let mut first = sqlite_replica(&sim, None).await;
    let id = open_session(&first, true).await;
    first.kill().await;

    // The same data directory (the first daemon's temporary one, alive until the end of the test).
    let second = sqlite_replica(&sim, Some(first.data_dir())).await;
    let (status, listed) = ask(&second, &id, "tools/list", json!({})).await;
    assert_eq!(
        status, 200,
        "the restarted daemon restores the session from its SQLite file"
    );
    assert!(tool_names(&listed).contains(&"chat".to_owned()), "{listed}");
    assert_eq!(delete(&second, &id).await, 204);
    assert_eq!(ask(&second, &id, "tools/list", json!({})).await.0, 404);
    assert_eq!(
        delete(&second, &id).await,
        204,
        "deleting an unknown session still answers as before"
    );
}

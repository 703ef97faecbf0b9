//! MCP tasks seen from every replica: two `exai serve` replicas sharing one PostgreSQL schema (in CI a missing
//! database fails the run) and one upstream simulator. A task started on replica A is polled to its result,
//! cancelled, and answered on replica B; replicas with stores of their own do not see each other's tasks.

use std::time::{Duration, Instant};

use exai_sim::{Recorded, SimHandle};
use serde_json::{Value, json};

use crate::replicas::{DropSchema, database_url, fresh_schema};
use crate::support::Daemon;
use crate::tasks::{borrowed, chat_args, env, handle, in_session, poll, session, sim, slow, stateless};

/// A replica on `sim` (1 s progress heartbeats) whose store is `database_url` (`None`: its own SQLite file).
async fn replica(sim: &SimHandle, database_url: Option<&str>, args: &[&str]) -> Daemon {
    let mut env = env(sim);
    if let Some(url) = database_url {
        env.push(("EXAI_DATABASE_URL", url.to_owned()));
    }
    Daemon::start(&borrowed(&env), args).await
}

/// Two replicas sharing one fresh schema.
async fn pair(sim: &SimHandle, url: &str, what: &str, args: &[&str]) -> (DropSchema, [Daemon; 2]) {
    let (scoped, cleanup) = fresh_schema(url, &format!("tasks_{what}")).await;
    let replicas = [
        replica(sim, Some(&scoped), args).await,
        replica(sim, Some(&scoped), args).await,
    ];
    assert_ne!(replicas[0].addr, replicas[1].addr, "two separate processes");
    (cleanup, replicas)
}

async fn get(daemon: &Daemon, id: &str) -> Value {
    stateless(daemon, "tasks/get", id, json!({"taskId": id})).await
}

/// A `tasks/get` result without `lastUpdatedAt` (the holder stamps its own copy a moment after the record's).
fn without_update_time(reply: &Value) -> Value {
    let mut result = reply["result"].clone();
    result.as_object_mut().unwrap().remove("lastUpdatedAt");
    result
}

#[tokio::test]
async fn a_task_started_on_one_replica_is_polled_to_its_result_on_another() {
    let Some(url) = database_url() else { return };
    let sim = sim().await;
    slow(&sim, "answered on replica a", 4_000);
    let (_cleanup, [a, b]) = pair(&sim, &url, "get", &[]).await;

    let created = stateless(
        &a,
        "tools/call",
        "chat",
        json!({"name": "chat", "arguments": chat_args()}),
    )
    .await;
    let id = handle(&created);
    let first = get(&b, &id).await;
    assert_eq!(first["result"]["taskId"], id.as_str(), "{first}");
    assert_eq!(
        first["result"]["status"], "working",
        "B knows the task as soon as A hands it out: {first}"
    );
    assert_eq!(first["result"]["ttlMs"], created["result"]["ttlMs"], "{first}");

    let (started, mut messages) = (Instant::now(), Vec::new());
    let done = loop {
        let reply = get(&b, &id).await;
        let task = &reply["result"];
        if let Some(m) = task["statusMessage"].as_str() {
            messages.push(m.to_owned());
        }
        if task["status"] != "working" {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never finished on B: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["content"],
        "answered on replica a"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("waiting for glm-4.6")),
        "B follows A's status messages: {messages:?}"
    );
    let on_a = get(&a, &id).await;
    assert_eq!(
        without_update_time(&done),
        without_update_time(&on_a),
        "B answers exactly as A does"
    );
    assert_eq!(sim.chat_requests().len(), 1, "one upstream call, from A");
}

#[tokio::test]
async fn a_task_of_a_session_stays_invisible_to_other_callers_on_any_replica() {
    let Some(url) = database_url() else { return };
    let sim = sim().await;
    slow(&sim, "for the session", 1_500);
    let (_cleanup, [a, b]) = pair(&sim, &url, "owner", &[]).await;
    let owner = session(&a).await;
    let created = in_session(
        &a,
        &owner,
        "tools/call",
        json!({"name": "chat", "arguments": chat_args()}),
    )
    .await;
    let id = handle(&created);
    for method in ["tasks/get", "tasks/cancel"] {
        let reply = stateless(&b, method, &id, json!({"taskId": id})).await;
        assert_eq!(reply["error"]["code"], -32602, "{method} on B must not see it: {reply}");
    }
    let done = poll(|| in_session(&a, &owner, "tasks/get", json!({"taskId": id}))).await;
    assert_eq!(done["result"]["status"], "completed", "not cancelled from B: {done}");
}

#[tokio::test]
async fn cancelling_on_another_replica_drops_the_upstream_request() {
    let Some(url) = database_url() else { return };
    let sim = sim().await;
    slow(&sim, "never delivered", 60_000);
    let (_cleanup, [a, b]) = pair(&sim, &url, "cancel", &[]).await;
    let created = stateless(
        &a,
        "tools/call",
        "chat",
        json!({"name": "chat", "arguments": chat_args()}),
    )
    .await;
    let id = handle(&created);
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await,
        "the task reached the upstream"
    );
    assert!(!sim.requests()[0].hung_up());

    let ack = stateless(&b, "tasks/cancel", &id, json!({"taskId": id})).await;
    assert_eq!(
        ack["result"],
        json!({"resultType": "complete"}),
        "an empty ack, as on A: {ack}"
    );
    let hung_up = sim
        .wait_for(Duration::from_secs(5), |r| r.iter().any(Recorded::hung_up))
        .await;
    assert!(hung_up, "A closed the upstream request: {:?}", sim.requests());

    let done = poll(|| get(&b, &id)).await;
    assert_eq!(done["result"]["status"], "cancelled", "{done}");
    assert!(done["result"].get("result").is_none(), "{done}");
    assert_eq!(get(&a, &id).await["result"]["status"], "cancelled");
    let again = stateless(&b, "tasks/cancel", &id, json!({"taskId": id})).await;
    assert_eq!(again["result"], json!({"resultType": "complete"}), "{again}");
    assert_eq!(sim.chat_requests().len(), 1);
}

#[tokio::test]
async fn input_requests_are_answered_on_another_replica() {
    let Some(url) = database_url() else { return };
    let sim = sim().await;
    let (_cleanup, [a, b]) = pair(&sim, &url, "update", &["--conformance-fixtures"]).await;
    let created = stateless(
        &a,
        "tools/call",
        "confirm_delete",
        json!({"name": "confirm_delete", "arguments": {"filename": "notes.txt"}}),
    )
    .await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let id = created["result"]["taskId"].as_str().unwrap().to_owned();

    let started = Instant::now();
    loop {
        let reply = get(&b, &id).await;
        if reply["result"]["status"] == "input_required" {
            let ask = &reply["result"]["inputRequests"]["confirm"];
            assert_eq!(ask["method"], "elicitation/create", "{reply}");
            assert_eq!(ask["params"]["message"], "Delete notes.txt?", "{reply}");
            break;
        }
        assert_eq!(reply["result"]["status"], "working", "{reply}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "B never saw the question: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer =
        json!({"taskId": id, "inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}}});
    let ack = stateless(&b, "tasks/update", &id, answer).await;
    assert_eq!(ack["result"], json!({"resultType": "complete"}), "{ack}");

    let started = Instant::now();
    let done = loop {
        let reply = get(&b, &id).await;
        if reply["result"]["status"] == "completed" {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never finished on B: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "notes.txt deleted",
        "{done}"
    );
}

/// The control: the same two calls with a store per replica. B does not know A's task, so the tests above can
/// fail, and pass only because the replicas share their records.
#[tokio::test]
async fn replicas_with_stores_of_their_own_do_not_see_each_others_tasks() {
    let sim = sim().await;
    slow(&sim, "only on a", 1_500);
    let (a, b) = (replica(&sim, None, &[]).await, replica(&sim, None, &[]).await);
    let created = stateless(
        &a,
        "tools/call",
        "chat",
        json!({"name": "chat", "arguments": chat_args()}),
    )
    .await;
    let id = handle(&created);
    for method in ["tasks/get", "tasks/cancel"] {
        let reply = stateless(&b, method, &id, json!({"taskId": id})).await;
        assert_eq!(reply["error"]["code"], -32602, "{method} on B: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("unknown task"), "{reply}");
    }
    let done = poll(|| get(&a, &id)).await;
    assert_eq!(done["result"]["status"], "completed", "A still has it: {done}");
}

//! WebSocket sessions across replicas: two `exai serve` replicas sharing one PostgreSQL schema (of this test's own,
//! dropped at the end; in CI a missing database fails the run) and one upstream simulator. A raw daemon-protocol
//! client that drops off replica A and says `hello { session_id }` to replica B carries on there, and so does
//! `exai shim` behind a relay standing for a load balancer when replica A is killed.

use std::collections::HashMap;
use std::time::Duration;

use exai_sim::SimHandle;
use serde_json::{Value, json};

use crate::chat::sim;
use crate::replicas::{DropSchema, database_url, fresh_schema};
use crate::shim::{Relay, Shim, chat as shim_chat, text};
use crate::support::Daemon;
use crate::ws::{Client, slow};

/// A fresh schema on the test database: the URL confined to it, and its cleanup. `None` (skip) only outside CI.
async fn shared_schema(tag: &str) -> Option<(String, DropSchema)> {
    let url = database_url()?;
    Some(fresh_schema(&url, &format!("ws_{tag}")).await)
}

/// The WebSocket token every replica of these tests shares (replicas need one set: each would make its own).
pub(crate) const REPLICA_TOKEN: &str = "replicas-share-this-websocket-token";

/// A replica on `sim` with a WebSocket grace period of `grace` seconds; its store is `database_url` when given,
/// else its own SQLite file.
async fn replica(sim: &SimHandle, database_url: Option<&str>, grace: &str) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let mut env = vec![
        ("EXAI_WS_TOKEN", REPLICA_TOKEN),
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_WS_SESSION_GRACE_SECS", grace),
    ];
    if let Some(url) = database_url {
        env.push(("EXAI_DATABASE_URL", url));
    }
    Daemon::start(&env, &[]).await
}

fn chat(id: &str, prompt: &str) -> Value {
    json!({"op": "call_tool", "request_id": id, "name": "chat", "arguments": {"prompt": prompt, "model": "glm-4.6"}})
}

/// Reads frames until every call in `ids` has its final frame; returns each call's frames in order.
async fn finals(c: &mut Client, ids: &[&str]) -> HashMap<String, Vec<Value>> {
    let mut calls: HashMap<String, Vec<Value>> = HashMap::new();
    let mut done = 0;
    while done < ids.len() {
        let f = c.frame().await;
        let Some(id) = f["request_id"].as_str().filter(|id| ids.contains(id)) else {
            continue;
        };
        if f["op"] == "call_tool_res" || f["op"] == "error" {
            done += 1;
        }
        calls.entry(id.to_owned()).or_default().push(f);
    }
    calls
}

#[tokio::test]
async fn a_result_that_finished_while_away_is_collected_on_another_replica() {
    let Some((url, _cleanup)) = shared_schema("away").await else {
        return;
    };
    let sim = sim().await;
    slow(&sim, "finished while you were away", 800);
    let a = replica(&sim, Some(&url), "30").await;
    let b = replica(&sim, Some(&url), "30").await;
    assert_ne!(a.ws_addr, b.ws_addr, "two separate processes");

    let (mut c, ack) = Client::hello(&a, json!({"op": "hello"})).await;
    let session = ack["session_id"].as_str().unwrap().to_owned();
    c.send(chat("away", "q")).await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await);
    drop(c);
    // The upstream answers after 800 ms: the call finishes on A with nobody attached.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(!sim.requests()[0].hung_up(), "the call kept running after the drop");

    let (mut c, ack) = Client::hello(&b, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["session_id"], session.as_str());
    assert_eq!(
        ack["resumed"], true,
        "replica B found A's session in the shared store: {ack}"
    );
    assert_eq!(ack["pending"], 1, "{ack}");
    assert_eq!(c.frame().await, json!({"op": "stream_complete", "request_id": "away"}));
    let res = c.frame().await;
    assert_eq!(res["op"], "call_tool_res", "{res}");
    assert_eq!(res["structured"]["content"], "finished while you were away");
    assert_eq!(
        sim.chat_requests().len(),
        1,
        "B delivered A's result; nothing was asked again"
    );

    // The result was delivered once: resuming on A now finds nothing more to deliver.
    drop(c);
    let (_, ack) = Client::hello(&a, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(
        (ack["resumed"].as_bool(), ack["pending"].as_u64()),
        (Some(true), Some(0)),
        "{ack}"
    );
}

#[tokio::test]
async fn a_call_still_running_on_the_old_replica_answers_on_the_new_one_and_can_be_cancelled_there() {
    let Some((url, _cleanup)) = shared_schema("running").await else {
        return;
    };
    let sim = sim().await;
    slow(&sim, "finished on A", 5_000);
    slow(&sim, "never seen", 60_000);
    // A's grace period (1 s) ends long before its calls do: the session is held by B by then, so they go on.
    let a = replica(&sim, Some(&url), "1").await;
    let b = replica(&sim, Some(&url), "30").await;

    let (mut c, ack) = Client::hello(&a, json!({"op": "hello"})).await;
    let session = ack["session_id"].as_str().unwrap().to_owned();
    c.send(chat("running", "first")).await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await);
    c.send(chat("stop", "second")).await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 2).await);
    drop(c);

    let (mut c, ack) = Client::hello(&b, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(
        (ack["resumed"].as_bool(), ack["pending"].as_u64()),
        (Some(true), Some(0)),
        "{ack}"
    );
    c.send(json!({"op": "cancel", "request_id": "stop"})).await;
    let calls = finals(&mut c, &["running", "stop"]).await;

    let stop = &calls["stop"];
    let last = stop.last().unwrap();
    assert_eq!(
        (last["op"].as_str(), last["code"].as_str()),
        (Some("error"), Some("CANCELLED")),
        "{stop:?}"
    );
    assert_eq!(stop[stop.len() - 2]["op"], "stream_complete", "{stop:?}");
    let hung_up = sim.wait_for(Duration::from_secs(10), |r| r[1].hung_up()).await;
    assert!(hung_up, "the cancel sent to B closed A's upstream request");

    let running = &calls["running"];
    let res = running.last().unwrap();
    assert_eq!(res["op"], "call_tool_res", "{running:?}");
    assert_eq!(res["structured"]["content"], "finished on A");
    assert_eq!(running[running.len() - 2]["op"], "stream_complete", "{running:?}");
    assert!(
        !sim.requests()[0].hung_up(),
        "A did not cancel the call when its own grace period ended"
    );
    assert_eq!(sim.chat_requests().len(), 2, "both calls ran on A only");
}

#[tokio::test]
async fn a_connection_left_open_on_the_old_replica_is_closed_when_the_session_resumes_on_another() {
    let Some((url, _cleanup)) = shared_schema("kick").await else {
        return;
    };
    let sim = sim().await;
    let a = replica(&sim, Some(&url), "30").await;
    let b = replica(&sim, Some(&url), "30").await;
    let (mut old, ack) = Client::hello(&a, json!({"op": "hello"})).await;
    let session = ack["session_id"].as_str().unwrap().to_owned();
    let (mut new, ack) = Client::hello(&b, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(ack["resumed"], true, "{ack}");
    // A notices at its next refresh of the session's record (every 10 s): the first frame A sends is the close.
    let (code, reason) = old.closed().await;
    assert_eq!(code, 4005, "{reason}");
    new.send(json!({"op": "ping"})).await;
    assert_eq!(new.frame().await["op"], "pong");
}

#[tokio::test]
async fn replicas_with_separate_stores_cannot_resume_each_others_sessions() {
    let sim = sim().await;
    let a = replica(&sim, None, "30").await;
    let b = replica(&sim, None, "30").await;
    let (c, ack) = Client::hello(&a, json!({"op": "hello"})).await;
    let session = ack["session_id"].as_str().unwrap().to_owned();
    drop(c);
    let (_, ack) = Client::hello(&b, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(ack["resumed"], false, "{ack}");
    assert_ne!(ack["session_id"], session.as_str());
    // The same session on its own replica still resumes: only the store differs.
    let (_, ack) = Client::hello(&a, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(ack["resumed"], true, "{ack}");
}

#[tokio::test]
async fn the_shim_carries_on_on_another_replica_when_its_replica_is_killed() {
    let Some((url, _cleanup)) = shared_schema("shim").await else {
        return;
    };
    let sim = sim().await;
    slow(&sim, "finished before the kill", 800);
    slow(&sim, "never seen", 60_000);
    let mut a = replica(&sim, Some(&url), "30").await;
    let b = replica(&sim, Some(&url), "30").await;
    // The relay stands for a load balancer: the shim always dials it; it sends connections to A, later to B.
    let lb = Relay::start(a.ws_addr.port()).await;
    let url = format!("ws://127.0.0.1:{}", lb.port);
    let env = [("EXAI_WS_TOKEN", REPLICA_TOKEN)];
    let (mut shim, _) = Shim::start_with(&url, None, &env, &[], std::process::Stdio::inherit()).await;
    shim.start_call(1, "chat", shim_chat("finishes"), false).await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await);
    shim.start_call(2, "chat", shim_chat("runs on"), false).await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 2).await);
    lb.cut();
    let completed = sim
        .wait_for(Duration::from_secs(10), |r| {
            r[0].outcome == exai_sim::Outcome::Completed
        })
        .await;
    assert!(completed, "call 1 finished on A while the shim was cut off");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill().await;
    lb.retarget(b.ws_addr.port());
    lb.reopen();

    // Call 1's result was in the store: B delivers it. Call 2 died with A: the shim says so, it does not hang.
    let (_, one) = shim.reply(1, Duration::from_secs(30)).await;
    assert_eq!(one["result"]["isError"], false, "{one}");
    assert_eq!(
        one["result"]["structuredContent"]["content"],
        "finished before the kill"
    );
    let (_, two) = shim.reply(2, Duration::from_secs(30)).await;
    let message = text(&two);
    assert!(
        message.contains("daemon") && message.contains("retry"),
        "a clear error for the call lost with A: {two}"
    );
    sim.push_script("glm-4.6", exai_sim::Script::reply("served by B"));
    let (_, three) = shim.call(3, "chat", shim_chat("again"), false).await;
    assert_eq!(
        three["result"]["structuredContent"]["content"], "served by B",
        "{three}"
    );
    assert_eq!(sim.chat_requests().len(), 3, "nothing was run twice");
}

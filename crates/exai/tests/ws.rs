//! The WebSocket daemon endpoint end to end: a real `exai serve` (models answered by the upstream simulator) and raw
//! WebSocket clients speaking the EX-AI daemon protocol and MCP JSON-RPC. Every wait is bounded.

use std::time::{Duration, Instant};

use exai_sim::{Delay, Recorded, Script, SimHandle};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chat::sim;
use crate::support::Daemon;

/// `exai serve` whose GLM and Kimi base URLs point at `sim`, with keys set.
async fn daemon(sim: &SimHandle, extra: &[(&str, &str)]) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let mut env = vec![("GLM_BASE_URL", glm.as_str()), ("KIMI_BASE_URL", kimi.as_str())];
    env.extend([("GLM_API_KEY", "test-glm-key"), ("KIMI_API_KEY", "test-kimi-key")]);
    env.extend_from_slice(extra);
    Daemon::start(&env, &[]).await
}

pub(crate) fn slow(sim: &SimHandle, text: &str, ttft_ms: u64) {
    sim.push_script("glm-4.6", Script::reply(text).with_ttft_ms(Delay::Fixed(ttft_ms)));
}

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server did next: a JSON frame, or a close with its code and reason.
#[derive(Debug)]
enum Next {
    Frame(Value),
    Closed(u16, String),
}

impl Client {
    /// Connects with no credentials on the upgrade request.
    async fn connect(d: &Daemon) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(d.ws_url())
            .await
            .expect("websocket connect");
        Self { ws }
    }

    /// Connects with the daemon's token as `Authorization: Bearer` (what MCP JSON-RPC clients send).
    async fn connect_authorized(d: &Daemon) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = d.ws_url().into_client_request().unwrap();
        let bearer = format!("Bearer {}", d.ws_token).parse().unwrap();
        request.headers_mut().insert("authorization", bearer);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connect");
        Self { ws }
    }

    /// Connects and says hello (with the daemon's token unless `hello` names one); returns the client and the
    /// `hello_ack`.
    pub(crate) async fn hello(d: &Daemon, mut hello: Value) -> (Self, Value) {
        let mut c = Self::connect(d).await;
        if hello.get("token").is_none() {
            hello["token"] = json!(d.ws_token);
        }
        c.send(hello).await;
        let ack = c.frame().await;
        assert_eq!(ack["op"], "hello_ack", "{ack}");
        (c, ack)
    }

    pub(crate) async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    async fn next(&mut self) -> Next {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("a frame within 15 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Next::Frame(serde_json::from_str(text.as_str()).expect("frames are JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| (f.code.into(), f.reason.to_string()));
                    return Next::Closed(code, reason);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Next::Closed(1006, e.to_string()),
                None => return Next::Closed(1006, "stream ended".into()),
            }
        }
    }

    pub(crate) async fn frame(&mut self) -> Value {
        match self.next().await {
            Next::Frame(v) => v,
            closed => panic!("expected a frame, got {closed:?}"),
        }
    }

    pub(crate) async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next().await {
                Next::Frame(_) => {}
                Next::Closed(code, reason) => return (code, reason),
            }
        }
    }

    /// Runs one call; returns every frame of it, the final one last.
    async fn call(&mut self, id: &str, name: &str, arguments: Value) -> Vec<Value> {
        self.send(json!({"op": "call_tool", "request_id": id, "name": name, "arguments": arguments}))
            .await;
        self.collect(id).await
    }

    /// The frames of call `id` up to and including its final one.
    pub(crate) async fn collect(&mut self, id: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let f = self.frame().await;
            if f["request_id"] != id {
                continue;
            }
            let last = f["op"] == "call_tool_res" || f["op"] == "error";
            frames.push(f);
            if last {
                return frames;
            }
        }
    }
}

fn ops(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(|f| f["op"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn hello_list_tools_and_a_call_with_progress_then_its_result() {
    let sim = sim().await;
    let text = "The answer streams in several pieces so progress has something to carry along the way.";
    sim.push_script(
        "glm-4.6",
        Script::reply(text)
            .with_chunk_chars(8)
            .with_inter_token_ms(Delay::Fixed(40)),
    );
    let d = daemon(&sim, &[("EXAI_WS_TOKEN", "s3cret")]).await;
    let (mut c, ack) = Client::hello(&d, json!({"op": "hello", "token": "s3cret"})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["resumed"], false);
    assert!(ack["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{ack}");

    c.send(json!({"op": "list_tools", "request_id": "t"})).await;
    let list = c.frame().await;
    assert_eq!(list["op"], "list_tools_res", "{list}");
    assert_eq!(list["request_id"], "t");
    let names: Vec<&str> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"chat") && names.contains(&"version"), "{names:?}");
    assert!(list["tools"][0]["inputSchema"].is_object(), "real definitions: {list}");

    let frames = c.call("r1", "chat", json!({"prompt": "q", "model": "glm-4.6"})).await;
    let ops = ops(&frames);
    assert!(ops.iter().filter(|o| **o == "stream_chunk").count() >= 2, "{frames:?}");
    assert_eq!(
        &ops[ops.len() - 2..],
        ["stream_complete", "call_tool_res"],
        "{frames:?}"
    );
    let chunks: String = frames
        .iter()
        .filter(|f| f["op"] == "stream_chunk")
        .map(|f| f["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(chunks, text, "stream_chunk frames carry the answer as it streams");
    assert!(
        frames
            .iter()
            .filter(|f| f["op"] == "progress")
            .all(|f| !f["message"].as_str().unwrap_or("").contains("streams")),
        "answer text is not repeated in progress frames: {frames:?}"
    );
    let res = frames.last().unwrap();
    assert_eq!(res["outputs"][0]["type"], "text");
    assert!(res["outputs"][0]["text"].as_str().unwrap().contains(text), "{res}");
    assert_eq!(res["structured"]["content"], text);
    assert_eq!(res["is_error"], false);

    let frames = c.call("r2", "nope", json!({})).await;
    let last = frames.last().unwrap();
    assert_eq!(last["code"], "TOOL_NOT_FOUND", "{last}");
    let frames = c.call("r3", "chat", json!({"prompt": 5})).await;
    assert_eq!(frames.last().unwrap()["code"], "VALIDATION_ERROR", "{frames:?}");
}

#[tokio::test]
async fn wrong_token_missing_hello_and_hello_timeout_close_with_their_codes() {
    let sim = sim().await;
    let d = daemon(
        &sim,
        &[("EXAI_WS_TOKEN", "s3cret"), ("EXAI_WS_HELLO_TIMEOUT_SECS", "1")],
    )
    .await;

    let (mut c, ack) = Client::hello(&d, json!({"op": "hello", "token": "guess"})).await;
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["error"], "unauthorized");
    assert_eq!(c.closed().await.0, 4003);

    let mut c = Client::connect(&d).await;
    c.send(json!({"op": "list_tools"})).await;
    let (code, reason) = c.closed().await;
    assert_eq!(code, 4001, "{reason}");
    assert!(reason.contains("hello"), "{reason}");

    let mut c = Client::connect(&d).await;
    let started = Instant::now();
    let (code, reason) = c.closed().await;
    assert_eq!(code, 4002, "{reason}");
    assert!(reason.contains("EXAI_WS_HELLO_TIMEOUT_SECS"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // JSON-RPC has no hello: with a token set it must come on the upgrade request.
    let mut c = Client::connect(&d).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(c.closed().await.0, 4003);
}

#[tokio::test]
async fn connection_and_session_limits_refuse_with_1008_and_a_reason() {
    let sim = sim().await;
    let d = daemon(&sim, &[("EXAI_WS_MAX_SESSIONS", "1")]).await;
    let (_a, ack) = Client::hello(&d, json!({"op": "hello"})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let (mut b, ack) = Client::hello(&d, json!({"op": "hello"})).await;
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["error"], "too_many_sessions");
    assert!(
        ack["message"].as_str().unwrap().contains("EXAI_WS_MAX_SESSIONS"),
        "{ack}"
    );
    assert_eq!(b.closed().await.0, 1008);

    // A fresh daemon, so no slot is still being given back: two connections from this address, then a refusal.
    let d = daemon(&sim, &[("EXAI_MAX_CONNECTIONS_PER_IP", "2")]).await;
    let (_a, _) = Client::hello(&d, json!({"op": "hello"})).await;
    let _b = Client::connect(&d).await;
    let mut c = Client::connect(&d).await;
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("EXAI_MAX_CONNECTIONS_PER_IP"), "{reason}");
}

#[tokio::test]
async fn calls_on_two_connections_overlap_in_time() {
    let sim = sim().await;
    slow(&sim, "first", 1_500);
    slow(&sim, "second", 1_500);
    let d = daemon(&sim, &[]).await;
    let (mut a, _) = Client::hello(&d, json!({"op": "hello"})).await;
    let (mut b, _) = Client::hello(&d, json!({"op": "hello"})).await;
    let started = Instant::now();
    let args = json!({"prompt": "q", "model": "glm-4.6"});
    a.send(json!({"op": "call_tool", "request_id": 1, "name": "chat", "arguments": args}))
        .await;
    b.send(json!({"op": "call_tool", "request_id": 1, "name": "chat", "arguments": args}))
        .await;
    // A tier-1 call on a third connection answers at once while both slow calls run.
    let (mut c, _) = Client::hello(&d, json!({"op": "hello"})).await;
    let quick = Instant::now();
    let version = c.call("v", "version", json!({})).await;
    assert_eq!(version.last().unwrap()["op"], "call_tool_res");
    assert!(quick.elapsed() < Duration::from_millis(800), "{:?}", quick.elapsed());
    let (fa, fb) = tokio::join!(
        async {
            let f = a.collect_num(1).await;
            (f, started.elapsed())
        },
        async {
            let f = b.collect_num(1).await;
            (f, started.elapsed())
        }
    );
    assert_eq!(fa.0.last().unwrap()["op"], "call_tool_res", "{:?}", fa.0);
    assert_eq!(fb.0.last().unwrap()["op"], "call_tool_res", "{:?}", fb.0);
    assert!(
        fa.1.max(fb.1) < Duration::from_millis(2_900),
        "both 1.5 s calls ran at once: {:?} / {:?}",
        fa.1,
        fb.1
    );
}

impl Client {
    async fn collect_num(&mut self, id: i64) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let f = self.frame().await;
            if f["request_id"] != id {
                continue;
            }
            let last = f["op"] == "call_tool_res" || f["op"] == "error";
            frames.push(f);
            if last {
                return frames;
            }
        }
    }
}

#[tokio::test]
async fn pongs_keep_flowing_while_twenty_slow_calls_run() {
    let sim = sim().await;
    for _ in 0..20 {
        slow(&sim, "slow", 2_000);
    }
    let limits = [
        ("EXAI_WS_SESSION_MAX_INFLIGHT", "24"),
        ("EXAI_WS_GLM_MAX_INFLIGHT", "24"),
        ("EXAI_PROGRESS_HEARTBEAT_SECS", "1"),
    ];
    let d = daemon(&sim, &limits).await;
    let (mut c, _) = Client::hello(&d, json!({"op": "hello"})).await;
    for i in 0..20 {
        let args = json!({"prompt": format!("q{i}"), "model": "glm-4.6"});
        c.send(json!({"op": "call_tool", "request_id": format!("c{i}"), "name": "chat", "arguments": args}))
            .await;
    }
    assert!(
        sim.wait_for(Duration::from_secs(10), |r| r.len() == 20).await,
        "all 20 calls run at once"
    );
    let mut results = 0;
    let mut worst = Duration::ZERO;
    for p in 0..10 {
        let sent = Instant::now();
        c.send(json!({"op": "ping", "request_id": format!("p{p}")})).await;
        loop {
            let f = c.frame().await;
            match f["op"].as_str().unwrap() {
                "pong" => {
                    assert_eq!(f["request_id"], format!("p{p}"));
                    break;
                }
                "call_tool_res" => results += 1,
                "error" => panic!("{f}"),
                _ => {}
            }
        }
        worst = worst.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(worst < Duration::from_millis(300), "a pong took {worst:?}");
    while results < 20 {
        let f = c.frame().await;
        assert_ne!(f["op"], "error", "{f}");
        if f["op"] == "call_tool_res" {
            results += 1;
        }
    }
}

#[tokio::test]
async fn cancel_drops_the_call_and_closes_the_upstream_request() {
    let sim = sim().await;
    slow(&sim, "never delivered", 60_000);
    let d = daemon(&sim, &[]).await;
    let (mut c, _) = Client::hello(&d, json!({"op": "hello"})).await;
    c.send(
        json!({"op": "call_tool", "request_id": "x", "name": "chat", "arguments": {"prompt": "q", "model": "glm-4.6"}}),
    )
    .await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await);
    assert!(!sim.requests()[0].hung_up());
    let started = Instant::now();
    c.send(json!({"op": "cancel", "request_id": "x"})).await;
    let frames = c.collect("x").await;
    let last = frames.last().unwrap();
    assert_eq!(last["code"], "CANCELLED", "{frames:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let hung_up = sim
        .wait_for(Duration::from_secs(5), |r| r.iter().any(Recorded::hung_up))
        .await;
    assert!(hung_up, "the upstream request was closed: {:?}", sim.requests());
    // The id is free again once the call ended.
    let frames = c.call("x", "version", json!({})).await;
    assert_eq!(frames.last().unwrap()["op"], "call_tool_res");
}

#[tokio::test]
async fn garbage_unknown_ops_and_oversize_frames_do_not_hurt_other_connections() {
    let sim = sim().await;
    let d = daemon(&sim, &[("EXAI_WS_MAX_FRAME_BYTES", "4096")]).await;
    let (mut bystander, _) = Client::hello(&d, json!({"op": "hello"})).await;
    let (mut c, _) = Client::hello(&d, json!({"op": "hello"})).await;

    c.send_text("{not json".into()).await;
    let e = c.frame().await;
    assert_eq!(
        (e["op"].as_str(), e["code"].as_str()),
        (Some("error"), Some("VALIDATION_ERROR")),
        "{e}"
    );
    c.send(json!({"op": "dance"})).await;
    let e = c.frame().await;
    assert_eq!(e["code"], "UNKNOWN_OP", "{e}");
    assert!(e["message"].as_str().unwrap().contains("dance"), "{e}");
    c.send(json!({"op": "call_tool", "name": "version"})).await;
    let e = c.frame().await;
    assert_eq!(e["code"], "VALIDATION_ERROR", "{e}");
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(c.frame().await["code"], "VALIDATION_ERROR");
    c.send(json!({"op": "ping"})).await;
    assert_eq!(c.frame().await["op"], "pong", "the connection keeps serving");

    c.send_text(format!("{{\"op\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(8192)))
        .await;
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("EXAI_WS_MAX_FRAME_BYTES"), "{reason}");

    bystander.send(json!({"op": "ping", "request_id": 1})).await;
    assert_eq!(bystander.frame().await, json!({"op": "pong", "request_id": 1}));
    let frames = bystander.call("v", "version", json!({})).await;
    assert_eq!(frames.last().unwrap()["op"], "call_tool_res");
}

#[tokio::test]
async fn a_reconnect_within_the_grace_period_collects_a_result_that_finished_while_away() {
    let sim = sim().await;
    slow(&sim, "finished while you were away", 800);
    let d = daemon(&sim, &[("EXAI_WS_SESSION_GRACE_SECS", "30")]).await;
    let (mut c, ack) = Client::hello(&d, json!({"op": "hello"})).await;
    let session = ack["session_id"].as_str().unwrap().to_owned();
    c.send(json!({"op": "call_tool", "request_id": "away", "name": "chat", "arguments": {"prompt": "q", "model": "glm-4.6"}}))
        .await;
    assert!(sim.wait_for(Duration::from_secs(10), |r| r.len() == 1).await);
    drop(c);
    // Wait until the upstream answered (and the call finished with nobody attached).
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert!(!sim.requests()[0].hung_up(), "the call kept running after the drop");

    let (mut c, ack) = Client::hello(&d, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["session_id"], session.as_str());
    assert_eq!(ack["resumed"], true, "{ack}");
    assert_eq!(ack["pending"], 1, "{ack}");
    assert_eq!(c.frame().await, json!({"op": "stream_complete", "request_id": "away"}));
    let res = c.frame().await;
    assert_eq!(res["op"], "call_tool_res", "{res}");
    assert_eq!(res["structured"]["content"], "finished while you were away");

    // Resuming a session another connection holds moves it; the old connection is told why.
    let (mut taker, ack) = Client::hello(&d, json!({"op": "hello", "session_id": session})).await;
    assert_eq!(
        (ack["resumed"].as_bool(), ack["pending"].as_u64()),
        (Some(true), Some(0)),
        "{ack}"
    );
    let (code, reason) = c.closed().await;
    assert_eq!(code, 4005, "{reason}");
    taker.send(json!({"op": "ping"})).await;
    assert_eq!(taker.frame().await["op"], "pong");

    let (_, ack) = Client::hello(&d, json!({"op": "hello", "session_id": "no-such-session"})).await;
    assert_eq!(ack["resumed"], false, "{ack}");
    assert_ne!(ack["session_id"], "no-such-session");
}

#[tokio::test]
async fn mcp_json_rpc_over_the_websocket_lists_the_full_tool_set() {
    let sim = sim().await;
    let d = daemon(&sim, &[]).await;
    let (mut daemon_client, _) = Client::hello(&d, json!({"op": "hello"})).await;
    daemon_client.send(json!({"op": "list_tools"})).await;
    let expected = daemon_client.frame().await["tools"].clone();

    let mut c = Client::connect_authorized(&d).await;
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "ws", "version": "1"}}}))
        .await;
    let init = c.frame().await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let list = c.frame().await;
    assert_eq!(list["id"], 2, "{list}");
    assert_eq!(list["result"]["tools"], expected, "the same full tool list");
    assert!(expected.as_array().unwrap().len() >= 5, "{expected}");

    c.send_text("{oops".into()).await;
    let e = c.frame().await;
    assert_eq!(e["error"]["code"], -32700, "{e}");
    c.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "version", "arguments": {}}}))
        .await;
    let v = c.frame().await;
    assert_eq!(v["id"], 3, "{v}");
    assert_eq!(v["result"]["isError"], false, "{v}");
}

#[tokio::test]
async fn the_server_pings_and_closes_silent_or_idle_connections_with_a_reason() {
    let sim = sim().await;
    let keepalive = [
        ("EXAI_WS_PING_INTERVAL_SECS", "1"),
        ("EXAI_WS_PING_TIMEOUT_SECS", "1"),
        ("EXAI_WS_IDLE_TIMEOUT_SECS", "3"),
    ];
    let d = daemon(&sim, &keepalive).await;
    // A client that reads answers the server's pings (tungstenite does it) and stays up past the ping timeout,
    // until it has been idle (only keepalives) for the idle timeout.
    let (mut alive, _) = Client::hello(&d, json!({"op": "hello"})).await;
    // A client that never reads never pongs.
    let (mut silent, _) = Client::hello(&d, json!({"op": "hello"})).await;
    let started = Instant::now();
    let mut pinged = 0;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), alive.ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Ping(_))) => pinged += 1,
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pinged >= 2, "pinged {pinged} times");
    assert_eq!(u16::from(closed.code), 1000);
    assert!(closed.reason.contains("EXAI_WS_IDLE_TIMEOUT_SECS"), "{closed:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );
    let (code, reason) = silent.closed().await;
    assert_eq!(code, 4004, "{reason}");
    assert!(reason.contains("EXAI_WS_PING_TIMEOUT_SECS"), "{reason}");
}

//! The JSON shape limits over every transport of the real binary (stdio, HTTP, the WebSocket daemon protocol and MCP
//! over the WebSocket): tool arguments nested 64 levels reach the tool; one level more, or far past serde_json's own
//! limit, is refused with an error naming the limit (and, for JSON-RPC, the request's id); so is a message of more
//! than 100,000 items, before it is parsed.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Daemon, Raw, stateless_call};

/// exai's documented limits (`exai_server::json_limits::MAX_ARGUMENT_DEPTH`, `MAX_ITEMS`).
const LIMIT: usize = 64;
const MAX_ITEMS: usize = 100_000;
const TOKEN: &str = "nesting-test-token";

/// Arguments nesting exactly `depth` levels: the `arguments` object is level 1, then `depth - 1` arrays.
fn arguments(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 1..depth {
        value = Value::Array(vec![value]);
    }
    json!({ "deep": value })
}

/// The reply of a call that reached the `version` tool, which refuses the unknown `deep` argument itself.
fn assert_reached_the_tool(reply: &Value, id: i64) {
    assert_eq!(reply["id"], id, "{reply}");
    assert_eq!(reply["result"]["isError"], true, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("unknown field `deep`"), "{reply}");
}

/// The JSON-RPC refusal of arguments nested too deep: -32602 with the request's id, naming the limit.
fn assert_refused(reply: &Value, id: i64) {
    assert_eq!(reply["id"], id, "{reply}");
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("at most {LIMIT} levels")), "{reply}");
}

/// A `tools/call` of `version` whose arguments nest `depth` levels, written as text (a `Value` thousands of levels
/// deep would overflow the test's own stack).
fn tools_call(id: i64, depth: usize) -> String {
    let deep = format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"version","arguments":{{"deep":{deep}}}}}}}"#
    )
}

#[tokio::test]
async fn stdio_accepts_arguments_up_to_the_limit_and_names_it_past_it() {
    let mut raw = Raw::start(&[], &[]).await;
    for (id, depth) in [(1, 2), (2, LIMIT), (3, LIMIT + 1), (4, 130), (5, 5000)] {
        raw.send(&tools_call(id, depth)).await;
        let reply = raw.next().await;
        if depth <= LIMIT {
            assert_reached_the_tool(&reply, id);
        } else {
            assert_refused(&reply, id);
        }
    }
}

#[tokio::test]
async fn http_accepts_arguments_up_to_the_limit_and_names_it_past_it() {
    let daemon = Daemon::start(&[], &[]).await;
    let http = reqwest::Client::new();
    for (id, depth) in [(1, LIMIT), (2, LIMIT + 1), (3, 130)] {
        let response = stateless_call(&http, &daemon.url("/mcp"), id, "version", arguments(depth), "nesting")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let reply = crate::support::jsonrpc_reply(&response.text().await.unwrap());
        if depth <= LIMIT {
            assert_eq!(status, 200, "{reply}");
            assert_reached_the_tool(&reply, id);
        } else {
            assert_eq!(status, 400, "{reply}");
            assert_refused(&reply, id);
        }
    }
}

use crate::support::WsSocket as Socket;

async fn connect(daemon: &Daemon) -> Socket {
    let mut request = daemon.ws_url().into_client_request().unwrap();
    let bearer = format!("Bearer {TOKEN}").parse().unwrap();
    request.headers_mut().insert("authorization", bearer);
    tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket connect")
        .0
}

async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn websocket_daemon_protocol_accepts_arguments_up_to_the_limit_and_names_it_past_it() {
    let daemon = Daemon::start(&[("EXAI_WS_TOKEN", TOKEN)], &[]).await;
    let mut socket = connect(&daemon).await;
    let hello = json!({"op": "hello", "token": TOKEN}).to_string();
    socket.send(Message::text(hello)).await.unwrap();
    assert_eq!(next_frame(&mut socket).await["ok"], true);
    for depth in [LIMIT, LIMIT + 1, 130] {
        let id = format!("r{depth}");
        let frame = json!({"op": "call_tool", "request_id": id, "name": "version", "arguments": arguments(depth)});
        socket.send(Message::text(frame.to_string())).await.unwrap();
        let mut reply = next_frame(&mut socket).await;
        if depth <= LIMIT {
            // Accepted: the call runs and the tool itself refuses the unknown argument.
            assert_eq!(reply["op"], "stream_complete", "{reply}");
            reply = next_frame(&mut socket).await;
            assert_eq!(
                (&reply["op"], &reply["request_id"]),
                (&json!("error"), &json!(id)),
                "{reply}"
            );
            assert!(
                reply["message"].as_str().unwrap().contains("unknown field `deep`"),
                "{reply}"
            );
        } else {
            assert_eq!(reply["op"], "error", "{reply}");
            assert_eq!(reply["code"], "VALIDATION_ERROR", "{reply}");
            let message = reply["message"].as_str().unwrap();
            assert!(message.contains(&format!("at most {LIMIT} levels")), "{reply}");
        }
    }
}

#[tokio::test]
async fn websocket_mcp_accepts_arguments_up_to_the_limit_and_names_it_past_it() {
    let daemon = Daemon::start(&[("EXAI_WS_TOKEN", TOKEN)], &[]).await;
    let mut socket = connect(&daemon).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {}, "clientInfo": {"name": "nesting", "version": "1"}}});
    socket.send(Message::text(initialize.to_string())).await.unwrap();
    assert_eq!(next_frame(&mut socket).await["id"], 0);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    socket.send(Message::text(initialized)).await.unwrap();
    for (id, depth) in [(1, LIMIT), (2, LIMIT + 1), (3, 130)] {
        socket.send(Message::text(tools_call(id, depth))).await.unwrap();
        let reply = next_frame(&mut socket).await;
        if depth <= LIMIT {
            assert_reached_the_tool(&reply, id);
        } else {
            assert_refused(&reply, id);
        }
    }
}

/// The first frame picks the protocol by a scan, not a parse: a first JSON-RPC frame nested far past serde's own
/// recursion limit (and one behind a byte-order mark) is still answered by MCP with the limit named and its id,
/// not closed as "expected a hello frame" (4001).
#[tokio::test]
async fn a_first_websocket_frame_nested_too_deep_is_refused_by_mcp_naming_the_limit() {
    let daemon = Daemon::start(&[("EXAI_WS_TOKEN", TOKEN)], &[]).await;
    for (id, prefix) in [(7, ""), (8, "\u{feff}")] {
        let mut socket = connect(&daemon).await;
        let frame = format!("{prefix}{}", tools_call(id, 5_000));
        socket.send(Message::text(frame)).await.unwrap();
        assert_refused(&next_frame(&mut socket).await, id);
    }
}

/// `version` arguments holding `items` empty arrays (plus the few items of the envelope).
fn many_items(items: usize) -> String {
    format!("{{\"many\":[{}]}}", vec!["[]"; items].join(","))
}

#[tokio::test]
async fn a_message_of_too_many_items_is_refused_by_name_on_http_and_the_websocket() {
    let daemon = Daemon::start(&[("EXAI_WS_TOKEN", TOKEN)], &[]).await;
    let http = reqwest::Client::new();
    for (id, items, refused) in [(1, MAX_ITEMS - 100, false), (2, MAX_ITEMS + 1, true)] {
        let arguments: Value = serde_json::from_str(&many_items(items)).unwrap();
        let response = stateless_call(&http, &daemon.url("/mcp"), id, "version", arguments, "items")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let reply = crate::support::jsonrpc_reply(&response.text().await.unwrap());
        if refused {
            assert_eq!(
                (status.as_u16(), &reply["id"], &reply["error"]["code"]),
                (400, &json!(id), &json!(-32602))
            );
            let message = reply["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("at most {MAX_ITEMS} items")), "{message}");
        } else {
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["result"]["isError"], true, "reached the tool: {reply}");
        }
    }
    let mut socket = connect(&daemon).await;
    let hello = json!({"op": "hello", "token": TOKEN}).to_string();
    socket.send(Message::text(hello)).await.unwrap();
    assert_eq!(next_frame(&mut socket).await["ok"], true);
    let frame = format!(
        r#"{{"op":"call_tool","request_id":"big","name":"version","arguments":{}}}"#,
        many_items(MAX_ITEMS + 1)
    );
    socket.send(Message::text(frame)).await.unwrap();
    let reply = next_frame(&mut socket).await;
    assert_eq!(
        (&reply["op"], &reply["code"]),
        (&json!("error"), &json!("VALIDATION_ERROR")),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains(&format!("at most {MAX_ITEMS} items")),
        "{reply}"
    );
}

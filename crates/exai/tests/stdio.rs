//! `exai stdio` as a child process: rmcp's client in both protocol eras, and raw JSON-RPC lines for every
//! kind of bad input, progress notifications, and the server staying up after each.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::service::ServiceError;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

use crate::support::{Raw, STANDARD_TOOLS, command};

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn rmcp_client_over_stdio_in_both_eras() {
    for (version, lifecycle) in [
        (ProtocolVersion::V_2025_11_25, ClientLifecycleMode::Initialize),
        (
            ProtocolVersion::V_2026_07_28,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = command(&[]);
        cmd.arg("stdio").arg("--data-dir").arg(dir.path());
        let transport = TokioChildProcess::builder(cmd).stderr(Stdio::null()).spawn().unwrap().0;
        let mut info = ClientConfig::default();
        info.protocol_version = version.clone();
        let client = info
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .expect("client starts");
        let server = client.peer_info().expect("server info");
        assert_eq!(server.protocol_version, version);
        assert_eq!(server.server_info.as_ref().map(|i| i.name.as_str()), Some("exai"));

        let tools = client.list_all_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, STANDARD_TOOLS, "{version}");
        for t in &tools {
            assert!(t.title.is_some() && t.output_schema.is_some(), "{}", t.name);
            let a = t.annotations.as_ref().unwrap();
            let calls_a_model = ["chat", "thinkdeep", "debug", "codereview"].contains(&t.name.as_ref());
            assert_eq!(
                (a.read_only_hint, a.open_world_hint),
                (Some(true), Some(calls_a_model)),
                "{}",
                t.name
            );
        }

        let v = client.call_tool(CallToolRequestParams::new("version")).await.unwrap();
        let s = v.structured_content.unwrap();
        assert_eq!(s["name"], "exai");
        assert_eq!(
            s["protocol_versions"],
            json!(["2026-07-28", "2025-11-25", "2025-06-18"])
        );

        let err = client
            .call_tool(CallToolRequestParams::new("teleport"))
            .await
            .unwrap_err();
        match err {
            ServiceError::McpError(e) => {
                assert_eq!(e.code.0, -32602);
                assert!(e.message.contains("unknown tool `teleport`"), "{}", e.message);
            }
            other => panic!("expected a JSON-RPC error, got {other:?}"),
        }

        let bad = client
            .call_tool(CallToolRequestParams::new("status").with_arguments(args(json!({"verbose": true}))))
            .await
            .unwrap();
        assert_eq!(bad.is_error, Some(true));
        assert!(
            format!("{:?}", bad.content).contains("unknown field `verbose`"),
            "{:?}",
            bad.content
        );

        let status = client.call_tool(CallToolRequestParams::new("status")).await.unwrap();
        let s = status.structured_content.unwrap();
        assert_eq!(s["inflight_calls"], 1, "only this call is running: {s}");
        assert_eq!(
            s["calls_total"], 3,
            "version, the rejected status and this one; unknown tools never start: {s}"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn every_bad_stdio_input_gets_its_json_rpc_error_and_the_server_keeps_serving() {
    let mut raw = Raw::start(&[("EXAI_MAX_REQUEST_BYTES", "2048")], &[]).await;
    let big = json!({"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"version","arguments":{"pad":"a".repeat(5000)}}});
    let lines = [
        "{garbage".to_owned(),
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_owned(),
        big.to_string(),
        r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":5}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":12,"method":"no/such/method"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"nope"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"status","arguments":{"verbose":"yes"}}}"#
            .to_owned(),
        r#"{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"version","arguments":{}}}"#.to_owned(),
    ];
    for line in &lines {
        raw.send(line).await;
    }
    let mut anonymous = Vec::new();
    let mut by_id = HashMap::new();
    while anonymous.len() < 3 || by_id.len() < 5 {
        let reply = raw.next().await;
        match reply["id"].as_i64() {
            Some(id) => by_id.insert(id, reply),
            None => {
                anonymous.push(reply);
                None
            }
        };
    }
    let code = |v: &Value| v["error"]["code"].as_i64().unwrap();
    let msg = |v: &Value| v["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(code(&anonymous[0]), -32700, "{}", anonymous[0]);
    assert_eq!(code(&anonymous[1]), -32600);
    assert!(msg(&anonymous[1]).contains("batches"));
    assert_eq!(code(&anonymous[2]), -32600);
    assert!(msg(&anonymous[2]).contains("2048-byte limit"), "{}", anonymous[2]);
    assert_eq!(code(&by_id[&11]), -32602);
    assert!(msg(&by_id[&11]).contains("tools/call"));
    assert_eq!(code(&by_id[&12]), -32601);
    assert!(msg(&by_id[&12]).contains("no/such/method"));
    assert_eq!(code(&by_id[&13]), -32602);
    assert_eq!(by_id[&14]["result"]["isError"], true);
    assert_eq!(by_id[&15]["result"]["structuredContent"]["name"], "exai");
    assert!(!by_id.contains_key(&99), "the oversize request must not run");

    // Closing stdin ends the server cleanly.
    drop(raw.stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), raw.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn progress_token_gets_progress_notifications_before_the_result() {
    let mut raw = Raw::start(&[], &["--conformance-fixtures"]).await;
    raw.send(&json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"p1"}}}).to_string()).await;
    let mut progress = Vec::new();
    let result = loop {
        let msg = raw.next().await;
        if msg["method"] == "notifications/progress" {
            assert_eq!(msg["params"]["progressToken"], "p1");
            progress.push(msg["params"]["progress"].as_f64().unwrap());
        } else {
            break msg;
        }
    };
    assert_eq!(result["id"], 5);
    assert_eq!(progress, [0.0, 50.0, 100.0]);

    // Without a token, no notifications: the next line is the result itself.
    raw.send(
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"test_tool_with_progress","arguments":{}}}"#,
    )
    .await;
    assert_eq!(raw.next().await["id"], 6);
}

//! `exai serve` on port 0: rmcp's Streamable HTTP client in both eras, and raw HTTP for DNS-rebinding
//! protection, bearer auth, body limits, malformed JSON-RPC, legacy sessions and the health routes.

use rmcp::model::{CallToolRequestParams, ClientConfig, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::{Value, json};

use crate::support::{Daemon, STANDARD_TOOLS};

const ACCEPT: &str = "application/json, text/event-stream";

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}})
}

async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).send().await.unwrap()
}

/// The JSON-RPC message in a JSON or SSE response body.
async fn jsonrpc(resp: reqwest::Response) -> Value {
    crate::support::jsonrpc_reply(&resp.text().await.unwrap())
}

pub(crate) async fn rmcp_client(
    daemon: &Daemon,
    version: ProtocolVersion,
    lifecycle: ClientLifecycleMode,
    token: Option<&str>,
) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>, rmcp::service::ClientInitializeError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(daemon.url("/mcp"));
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let mut info = ClientConfig::default();
    info.protocol_version = version;
    info.serve_with_lifecycle(StreamableHttpClientTransport::from_config(config), lifecycle)
        .await
}

#[tokio::test]
async fn rmcp_client_over_streamable_http_in_both_eras() {
    let daemon = Daemon::start(&[], &[]).await;
    for (version, lifecycle) in [
        (ProtocolVersion::V_2025_11_25, ClientLifecycleMode::Initialize),
        (
            ProtocolVersion::V_2026_07_28,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        ),
    ] {
        let client = rmcp_client(&daemon, version.clone(), lifecycle, None)
            .await
            .expect("client starts");
        assert_eq!(client.peer_info().unwrap().protocol_version, version);
        let listed = client.list_all_tools_with_cache_hint().await.unwrap();
        let names: Vec<&str> = listed.items.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, STANDARD_TOOLS);
        let health = client.call_tool(CallToolRequestParams::new("health")).await.unwrap();
        let report = health.structured_content.unwrap();
        assert_eq!(report["ready"], true, "{report}");
        assert_eq!(report["checks"][0]["name"], "database");
        let err = client.call_tool(CallToolRequestParams::new("nope")).await.unwrap_err();
        assert!(err.to_string().contains("unknown tool `nope`"), "{err}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn discover_advertises_versions_and_list_results_carry_cache_hints() {
    let daemon = Daemon::start(&[], &[]).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "server/discover"),
    ];
    let body = json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta": meta}});
    let resp = post(&daemon.url("/mcp"), &headers, body.to_string()).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("mcp-session-id").is_none(),
        "2026-07-28 is stateless"
    );
    let v = jsonrpc(resp).await;
    assert_eq!(
        v["result"]["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18"]),
        "{v}"
    );
    assert_eq!(
        v["result"]["capabilities"],
        json!({"tools": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}}),
        "tools, and the tasks extension for `chat`"
    );

    let headers = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list")];
    let body = json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta": meta}});
    let v = jsonrpc(post(&daemon.url("/mcp"), &headers, body.to_string()).await).await;
    assert_eq!(v["result"]["ttlMs"], 300_000, "{v}");
    assert_eq!(v["result"]["cacheScope"], "public");
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn bad_http_input_gets_specific_errors_and_the_server_keeps_serving() {
    let daemon = Daemon::start(&[("EXAI_MAX_REQUEST_BYTES", "4096")], &[]).await;
    let url = daemon.url("/mcp");

    let resp = post(&url, &[], "{not json").await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].as_i64()),
        (Value::Null, Some(-32700)),
        "{v}"
    );

    let resp = post(&url, &[], json!([initialize()]).to_string()).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32600);

    let resp = post(&url, &[], format!("{{\"pad\":\"{}\"}}", "a".repeat(10_000))).await;
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("4096-byte limit"),
        "{v}"
    );

    let resp = post(&url, &[("host", "evil.example:80")], initialize().to_string()).await;
    assert_eq!(resp.status(), 403, "DNS-rebinding protection: foreign Host");
    let resp = post(&url, &[("origin", "http://evil.example")], initialize().to_string()).await;
    assert_eq!(resp.status(), 403, "foreign Origin");
    let resp = post(
        &url,
        &[("origin", &format!("http://localhost:{}", daemon.addr.port()))],
        initialize().to_string(),
    )
    .await;
    assert_eq!(resp.status(), 200, "loopback Origin is allowed");

    // After all that, a normal session still works.
    let resp = post(&url, &[], initialize().to_string()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(jsonrpc(resp).await["result"]["serverInfo"]["name"], "exai");
}

#[tokio::test]
async fn bearer_token_is_required_and_no_tool_runs_without_it() {
    let daemon = Daemon::start(&[("EXAI_HTTP_TOKEN", "s3cret")], &[]).await;
    let resp = post(&daemon.url("/mcp"), &[], initialize().to_string()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"exai\"");
    let resp = post(
        &daemon.url("/mcp"),
        &[("authorization", "Bearer wrong")],
        initialize().to_string(),
    )
    .await;
    assert_eq!(resp.status(), 401);

    let lifecycle = || ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    assert!(
        rmcp_client(&daemon, ProtocolVersion::V_2026_07_28, lifecycle(), None)
            .await
            .is_err()
    );
    let client = rmcp_client(&daemon, ProtocolVersion::V_2026_07_28, lifecycle(), Some("s3cret"))
        .await
        .unwrap();
    let status = client.call_tool(CallToolRequestParams::new("status")).await.unwrap();
    assert_eq!(
        status.structured_content.unwrap()["calls_total"],
        1,
        "no unauthenticated call ran"
    );
    client.cancel().await.unwrap();

    // Health routes stay open for load balancers.
    let health = reqwest::get(daemon.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn legacy_sessions_have_ids_a_get_stream_and_delete() {
    let daemon = Daemon::start(&[], &[]).await;
    let url = daemon.url("/mcp");
    let resp = post(&url, &[], initialize().to_string()).await;
    let session = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(jsonrpc(resp).await["result"]["protocolVersion"], "2025-11-25");
    let h = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let resp = post(&url, &h, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    assert_eq!(resp.status(), 202);

    let client = reqwest::Client::new();
    let get = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header(h[0].0, h[0].1)
        .header(h[1].0, h[1].1);
    let stream = get.send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(stream);

    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"version","arguments":{}}});
    let v = jsonrpc(post(&url, &h, call.to_string()).await).await;
    assert_eq!(v["result"]["structuredContent"]["name"], "exai");

    let del = client
        .delete(&url)
        .header(h[0].0, h[0].1)
        .header(h[1].0, h[1].1)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let after = post(&url, &h, call.to_string()).await;
    assert_eq!(after.status(), 404, "a deleted session is gone");
}

#[tokio::test]
async fn health_routes_report_liveness_and_readiness() {
    let daemon = Daemon::start(&[], &[]).await;
    let live: Value = reqwest::get(daemon.url("/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(live, json!({"status": "ok", "live": true}));
    let ready = reqwest::get(daemon.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["checks"], json!([{"name": "database", "ok": true}]));
}

#[tokio::test]
async fn initialize_negotiates_each_supported_era_and_counters_unknown_ones() {
    let daemon = Daemon::start(&[], &[]).await;
    for (asked, agreed) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2025-11-25"),
    ] {
        let mut body = initialize();
        body["params"]["protocolVersion"] = json!(asked);
        let v = jsonrpc(post(&daemon.url("/mcp"), &[], body.to_string()).await).await;
        assert_eq!(v["result"]["protocolVersion"], agreed, "asked {asked}: {v}");
    }
}

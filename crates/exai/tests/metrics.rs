//! `GET /metrics` after real calls (one `chat` through the simulator, one `status`): the Prometheus text behind
//! the bearer token, and the `tool_executions` rows those calls left in the daemon's SQLite database.

use std::time::Duration;

use exai_core::store::Store;
use rmcp::ClientLifecycleMode;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::json;

use crate::http::rmcp_client;
use crate::support::Daemon;

/// The value of the first sample line starting with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_are_exported_and_every_call_is_recorded() {
    let daemon = Daemon::start(&[("EXAI_HTTP_TOKEN", "s3cret")], &["--sim"]).await;
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = rmcp_client(&daemon, ProtocolVersion::V_2026_07_28, lifecycle, Some("s3cret"))
        .await
        .unwrap();
    let args = json!({"prompt": "hello there"}).as_object().cloned().unwrap();
    let chat = client
        .call_tool(CallToolRequestParams::new("chat").with_arguments(args))
        .await
        .unwrap();
    assert_ne!(chat.is_error, Some(true), "{chat:?}");
    client.call_tool(CallToolRequestParams::new("status")).await.unwrap();
    client.cancel().await.unwrap();

    let resp = reqwest::get(daemon.url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 401, "the token guards /metrics");
    let resp = reqwest::Client::new()
        .get(daemon.url("/metrics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let calls = text
        .lines()
        .find(|l| l.starts_with("exai_tool_calls_total{") && l.contains("tool=\"chat\"") && l.contains("status=\"ok\""))
        .unwrap_or_else(|| panic!("no chat call counted in\n{text}"));
    assert!(calls.ends_with(" 1"), "{calls}");
    assert!(text.contains("# HELP exai_tool_calls_total "), "{text}");
    assert!(text.contains("# TYPE exai_tool_latency_seconds histogram"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("exai_tool_latency_seconds_bucket{") && l.contains("tool=\"status\"")),
        "{text}"
    );
    assert!(text.contains("exai_upstream_latency_seconds_bucket{"), "{text}");
    assert!(text.contains("exai_tokens_total{"), "{text}");
    assert_eq!(
        sample(&text, "mcp_semaphore_expected_value{limit=\"global\"}"),
        Some(24.0),
        "{text}"
    );
    assert!(
        sample(&text, "process_resident_memory_bytes").unwrap_or(0.0) > 0.0,
        "{text}"
    );

    // Both calls reach the table (written in the background, so give it a moment).
    let store = exai_store::SqliteStore::open(daemon.data_dir()).await.unwrap();
    let mut rows = Vec::new();
    for _ in 0..50 {
        rows = store.recent_executions(10).await.unwrap();
        if rows.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tools: Vec<&str> = rows.iter().map(|r| r.tool.as_str()).collect();
    assert_eq!(tools, ["status", "chat"], "{rows:?}");
    let chat = &rows[1];
    assert_eq!(
        (chat.status.as_str(), chat.provider.as_deref()),
        ("ok", Some("sim")),
        "{chat:?}"
    );
    assert!(
        chat.model.is_some() && chat.tokens_in.is_some() && chat.tokens_out.is_some(),
        "{chat:?}"
    );
    assert_eq!(
        (rows[0].provider.as_deref(), rows[0].error_kind.as_deref()),
        (None, None)
    );
    assert!(rows.iter().all(|r| r.session.is_some()), "{rows:?}");
}

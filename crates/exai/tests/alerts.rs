//! Alerts and the AI auditor end to end: `exai serve` against the simulator over real HTTP. Upstream 500s raise
//! `error_rate` and `circuit_open` (in `/metrics` and the `alerts` table) and healthy calls clear them; the
//! auditor's scripted answers become `auditor_observations` rows, and a malformed answer is counted and skipped
//! while the server keeps serving.

use std::time::{Duration, Instant};

use exai_core::store::Store;
use exai_sim::{Script, SimHandle};
use rmcp::ClientLifecycleMode;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use serde_json::json;

use crate::chat::sim;
use crate::http::rmcp_client;
use crate::support::Daemon;

type Client = rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>;

/// `exai serve` with GLM and Kimi pointed at `sim`, plus `extra` settings.
async fn daemon(sim: &SimHandle, extra: &[(&str, &str)]) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let mut env = vec![
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "test-glm-key"),
        ("KIMI_API_KEY", "test-kimi-key"),
    ];
    env.extend_from_slice(extra);
    Daemon::start(&env, &[]).await
}

async fn client(daemon: &Daemon) -> Client {
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    rmcp_client(daemon, ProtocolVersion::V_2026_07_28, lifecycle, None)
        .await
        .unwrap()
}

async fn chat(client: &Client, prompt: &str) -> CallToolResult {
    let args = json!({"prompt": prompt, "model": "glm"}).as_object().cloned().unwrap();
    client
        .call_tool(CallToolRequestParams::new("chat").with_arguments(args))
        .await
        .unwrap()
}

/// The sum of the samples of `name` whose labels contain every one of `labels` (0 when there is none).
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(daemon: &Daemon) -> String {
    reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls `/metrics` until `ready` holds (or fails the test after `within`); returns the text that satisfied it.
async fn metrics_until(daemon: &Daemon, within: Duration, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = metrics(daemon).await;
        if ready(&text) {
            return text;
        }
        assert!(started.elapsed() < within, "{what} not seen within {within:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn firing(text: &str, rule: &str) -> f64 {
    sample(text, "exai_alerts_firing", &[&format!("rule=\"{rule}\"")])
}

#[tokio::test]
async fn failing_calls_raise_error_rate_and_circuit_alerts_which_clear_when_healthy() {
    let sim = sim().await;
    let daemon = daemon(
        &sim,
        &[
            ("EXAI_ALERTS_INTERVAL_SECS", "1"),
            ("EXAI_ALERTS_WINDOW_SECS", "4"),
            ("EXAI_ALERTS_MIN_CALLS", "3"),
            ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
            ("EXAI_BREAKER_FAILURES", "3"),
            ("EXAI_BREAKER_COOLDOWN_SECS", "1"),
            ("EXAI_BREAKER_CLOSE_AFTER", "1"),
        ],
    )
    .await;
    let client = client(&daemon).await;
    let text = metrics(&daemon).await;
    assert_eq!(firing(&text, "error_rate"), 0.0, "every rule starts at 0:\n{text}");
    assert!(text.contains("exai_alerts_firing{rule=\"memory\"} 0"), "{text}");

    for i in 0..3 {
        sim.push_script("glm-4.6", Script::status(500));
        let failed = chat(&client, &format!("q{i}")).await;
        assert_eq!(failed.is_error, Some(true), "{failed:?}");
    }
    let text = metrics_until(
        &daemon,
        Duration::from_secs(5),
        "error_rate and circuit_open firing",
        |t| firing(t, "error_rate") == 1.0 && firing(t, "circuit_open") == 1.0,
    )
    .await;
    assert_eq!(
        sample(
            &text,
            "exai_alerts_raised_total",
            &["rule=\"error_rate\"", "severity=\"critical\""]
        ),
        1.0,
        "{text}"
    );

    // After the cooldown a healthy probe closes the circuit; once the failures leave the window and healthy
    // calls fill it, the error rate clears too.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let healthy = Instant::now();
    loop {
        let ok = chat(&client, "fine?").await;
        assert_ne!(ok.is_error, Some(true), "{ok:?}");
        let text = metrics(&daemon).await;
        if firing(&text, "error_rate") == 0.0 && firing(&text, "circuit_open") == 0.0 {
            break;
        }
        assert!(
            healthy.elapsed() < Duration::from_secs(12),
            "alerts did not clear:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    client.cancel().await.unwrap();

    let store = exai_store::SqliteStore::open(daemon.data_dir()).await.unwrap();
    let stored = store.recent_alerts(50).await.unwrap();
    for rule in ["error_rate", "circuit_open"] {
        let changes: Vec<bool> = stored
            .iter()
            .rev()
            .filter(|a| a.rule == rule)
            .map(|a| a.firing)
            .collect();
        assert_eq!(changes, [true, false], "{rule} raised then cleared: {stored:?}");
    }
    let raised = stored.iter().find(|a| a.rule == "error_rate" && a.firing).unwrap();
    assert_eq!(raised.severity, "critical");
    assert!(raised.message.contains("calls failed"), "{raised:?}");
    let circuit = stored.iter().find(|a| a.rule == "circuit_open" && a.firing).unwrap();
    assert!(circuit.message.contains("glm/glm-4.6"), "{circuit:?}");
}

#[tokio::test]
async fn the_auditor_stores_observations_and_skips_malformed_answers() {
    let sim = sim().await;
    let daemon = daemon(
        &sim,
        &[
            ("AI_AUDITOR_ENABLED", "true"),
            ("AI_AUDITOR_BATCH_SIZE", "2"),
            ("AI_AUDITOR_RATE_LIMIT", "1"),
            ("EXAI_ALERTS_ENABLED", "false"),
            ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    let client = client(&daemon).await;
    let answer = r#"```json
[{"severity": "warning", "category": "errors", "message": "chat on glm-4.6 failed with HTTP 500",
  "evidence": "1 of 2 chat calls: status provider_error"},
 {"severity": "info", "category": "usage", "message": "only chat is used", "evidence": "2 calls, both chat"},
 {"severity": "severe", "category": "errors", "message": "not a known severity", "evidence": "x"}]
```"#;
    sim.push_script("glm-4.5-flash", Script::reply(answer));
    sim.push_script("glm-4.6", Script::status(500));
    assert_eq!(chat(&client, "first").await.is_error, Some(true));
    assert_ne!(chat(&client, "second").await.is_error, Some(true));

    let store = exai_store::SqliteStore::open(daemon.data_dir()).await.unwrap();
    let started = Instant::now();
    let mut observations = Vec::new();
    while observations.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "no observations stored: {observations:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        observations = store.observations(10).await.unwrap();
    }
    let mut seen: Vec<(&str, &str)> = observations
        .iter()
        .map(|o| (o.severity.as_str(), o.category.as_str()))
        .collect();
    seen.sort();
    assert_eq!(seen, [("info", "usage"), ("warning", "errors")], "{observations:?}");
    assert!(observations.iter().all(|o| !o.acknowledged && !o.evidence.is_empty()));

    // The auditor asked its model directly, with the calls in the prompt...
    let asked = sim
        .chat_requests()
        .into_iter()
        .find(|r| r.body.as_ref().is_some_and(|b| b["model"] == "glm-4.5-flash"))
        .expect("the auditor's request reached the simulator");
    let prompt = asked.body.unwrap()["messages"].to_string();
    assert!(
        prompt.contains(r#"\"tool\":\"chat\""#) && prompt.contains(r#"\"error_kind\""#),
        "{prompt}"
    );
    // ...so its own request is not a tool execution.
    let executions = store.recent_executions(10).await.unwrap();
    assert_eq!(executions.len(), 2, "{executions:?}");
    let text = metrics(&daemon).await;
    assert_eq!(
        sample(&text, "exai_auditor_invalid_outputs_total", &["what=\"item\""]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "exai_auditor_observations_total", &["severity=\"warning\""]),
        1.0,
        "{text}"
    );
    let invalid_before = sample(&text, "exai_auditor_invalid_outputs_total", &["what=\"output\""]);

    // A malformed answer is logged, counted and skipped; the server keeps serving.
    sim.push_script("glm-4.5-flash", Script::reply("Everything looks fine to me!"));
    for prompt in ["third", "fourth"] {
        assert_ne!(chat(&client, prompt).await.is_error, Some(true));
    }
    metrics_until(&daemon, Duration::from_secs(8), "the malformed answer counted", |t| {
        sample(t, "exai_auditor_invalid_outputs_total", &["what=\"output\""]) > invalid_before
    })
    .await;
    assert_eq!(
        store.observations(10).await.unwrap().len(),
        2,
        "no row from the malformed answer"
    );
    let after = chat(&client, "still there?").await;
    assert_ne!(after.is_error, Some(true), "{after:?}");
    client.cancel().await.unwrap();
}

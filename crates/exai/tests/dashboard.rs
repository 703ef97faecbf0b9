//! The dashboard against the real daemon (`exai serve --sim`): the token (header, or the cookie `?token=` sets),
//! the snapshot agreeing with `/metrics` after real calls, the live stream (snapshots, a `call` event for a call
//! made after connecting, counted as one open stream), bad input, the auditor's observations (seeded through the
//! store) filtered and acknowledged, and the separate `MONITORING_DASHBOARD_PORT` listener.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use exai_core::store::{Observation, Store};
use rmcp::ClientLifecycleMode;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::http::rmcp_client;
use crate::support::{self, Daemon};

const TOKEN: &str = "s3cret";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_json(daemon: &Daemon, path: &str) -> (u16, Value) {
    let resp = client().get(daemon.url(path)).bearer_auth(TOKEN).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `exai_tool_calls_total` summed by tool: (calls, errors), errors being statuses other than ok and cancelled.
fn tool_totals(metrics: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("exai_tool_calls_total{")) {
        let label = |k: &str| {
            let start = line.find(&format!("{k}=\""))? + k.len() + 2;
            Some(line[start..].split('"').next()?.to_owned())
        };
        let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let entry: &mut (u64, u64) = out.entry(label("tool").unwrap()).or_default();
        entry.0 += value;
        if !matches!(label("status").as_deref(), Some("ok" | "cancelled")) {
            entry.1 += value;
        }
    }
    out
}

async fn metrics_text(daemon: &Daemon) -> String {
    let resp = client()
        .get(daemon.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

/// Three `status` calls, one `chat` through the simulator and one `chat` with an unknown argument (an error).
async fn drive_calls(daemon: &Daemon) {
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = rmcp_client(daemon, ProtocolVersion::V_2026_07_28, lifecycle, Some(TOKEN))
        .await
        .unwrap();
    for _ in 0..3 {
        client.call_tool(CallToolRequestParams::new("status")).await.unwrap();
    }
    let args = |v: Value| v.as_object().cloned().unwrap();
    let ok = client
        .call_tool(CallToolRequestParams::new("chat").with_arguments(args(json!({"prompt": "hi"}))))
        .await
        .unwrap();
    assert_ne!(ok.is_error, Some(true), "{ok:?}");
    let bad = client
        .call_tool(CallToolRequestParams::new("chat").with_arguments(args(json!({"prompt": "hi", "bogus": 1}))))
        .await
        .unwrap();
    assert_eq!(bad.is_error, Some(true), "{bad:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_token_is_required_as_header_or_cookie() {
    let daemon = Daemon::start(&[("EXAI_HTTP_TOKEN", TOKEN)], &["--sim"]).await;
    let c = client();
    for path in [
        "/dashboard",
        "/dashboard/app.js",
        "/dashboard/api/snapshot",
        "/dashboard/stream",
    ] {
        let resp = c.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        assert!(resp.headers().contains_key("www-authenticate"), "{path}");
    }
    let page = c
        .get(daemon.url("/dashboard"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/dashboard?token="), "the sign-in page says how: {page}");
    let wrong = c.get(daemon.url("/dashboard?token=nope")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let wrong = c
        .get(daemon.url("/dashboard/api/snapshot"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let (status, snapshot) = get_json(&daemon, "/dashboard/api/snapshot").await;
    assert_eq!(status, 200, "{snapshot}");

    let signed_in = c
        .get(daemon.url(&format!("/dashboard?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/dashboard");
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/dashboard"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    // Browsers do not keep cookies apart by port: every other server on this host name (another user's on
    // 127.0.0.1:9999, a team host's other services) is sent this one, so it must open the dashboard and nothing
    // else. It is not the token, and /mcp and /admin refuse it.
    let value = pair.split_once('=').unwrap().1.to_owned();
    assert!(!cookie.contains(TOKEN), "the cookie carries EXAI_HTTP_TOKEN: {cookie}");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {}, "clientInfo": {"name": "cookie", "version": "1"}}});
    let mcp = c
        .post(daemon.url("/mcp"))
        .bearer_auth(&value)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 401, "the cookie's value opened /mcp");
    let admin = c
        .post(daemon.url("/admin/reset-circuits"))
        .bearer_auth(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401, "the cookie's value reset the circuits");
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/api/snapshot", "application/json"),
    ] {
        let resp = c.get(daemon.url(path)).header("cookie", &pair).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            resp.headers()["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
    }
    let resp = c
        .get(daemon.url("/dashboard"))
        .header("cookie", "exai_dashboard=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // The same Host and Origin allow-lists as /mcp: no rebound names, no cross-site acknowledging.
    let rebound = c
        .get(daemon.url("/dashboard/api/snapshot"))
        .header("host", "evil.example:80")
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let cross_site = c
        .post(daemon.url("/dashboard/api/observations/1/ack"))
        .header("origin", "http://evil.example")
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
}

#[tokio::test]
async fn the_snapshot_agrees_with_metrics_and_bad_input_is_refused() {
    let daemon = Daemon::start(&[("EXAI_HTTP_TOKEN", TOKEN)], &["--sim"]).await;
    drive_calls(&daemon).await;
    let metrics = metrics_text(&daemon).await;
    let expected = tool_totals(&metrics);
    assert_eq!(expected["status"], (3, 0), "{metrics}");
    assert_eq!(expected["chat"], (2, 1), "{metrics}");

    let (status, s) = get_json(&daemon, "/dashboard/api/snapshot?window=900").await;
    assert_eq!(status, 200, "{s}");
    let shown: BTreeMap<String, (u64, u64)> = s["tools_total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            (t["tool"].as_str().unwrap().to_owned(), (n("calls"), n("errors")))
        })
        .collect();
    assert_eq!(shown, expected, "{s}");
    assert_eq!(s["calls_total"], 5, "{s}");
    assert_eq!(s["errors_total"], 1, "{s}");
    assert_eq!(s["inflight"], 0, "{s}");
    let w = &s["window"];
    assert_eq!(
        (w["window_secs"].as_u64(), w["calls"].as_u64(), w["errors"].as_u64()),
        (Some(900), Some(5), Some(1))
    );
    assert!((w["error_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9, "{w}");
    assert!(w["p50_ms"].is_number() && w["p95_ms"].is_number(), "{w}");
    assert_eq!(w["trend"].as_array().unwrap().len(), 30);
    assert_eq!(w["errors_by_kind"][0]["count"], 1, "{w}");
    let global = s["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "global")
        .unwrap();
    assert_eq!(
        (global["capacity"].as_u64(), global["in_use"].as_u64()),
        (Some(24), Some(0))
    );
    assert!(
        s["connections"]["http"].as_u64().unwrap() >= 1,
        "this request's own connection: {s}"
    );
    assert!(s["process"]["resident_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["process"]["cpu_percent"].is_number(), "{s}");
    assert!(s["circuits"].is_array() && s["alerts"].is_array(), "{s}");

    let (status, calls) = get_json(&daemon, "/dashboard/api/calls?limit=2").await;
    assert_eq!(status, 200);
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["tool"].as_str(), calls[0]["status"].as_str()),
        (Some("chat"), Some("invalid"))
    );

    for (path, needle) in [
        ("/dashboard/api/snapshot?window=5", "from 60 to 86400"),
        ("/dashboard/api/snapshot?window=5m", "from 60 to 86400"),
        ("/dashboard/stream?window=999999", "from 60 to 86400"),
        ("/dashboard/api/calls?limit=0", "limit must be"),
        (
            "/dashboard/api/observations?severity=loud",
            "severity must be one of info, warning, critical",
        ),
        (
            "/dashboard/api/observations?acknowledged=maybe",
            "acknowledged must be one of true, false",
        ),
    ] {
        let (status, body) = get_json(&daemon, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "bad_request", "{path}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{path}: {body}");
    }
    let (status, body) = get_json(&daemon, "/dashboard/api/nothing").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");

    // A 2025-era client's legacy session is counted (sampled every 2 s).
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",
        "capabilities":{},"clientInfo":{"name":"raw","version":"1"}}});
    let resp = client()
        .post(daemon.url("/mcp"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("mcp-session-id"));
    let mut sessions = Value::Null;
    for _ in 0..50 {
        sessions = get_json(&daemon, "/dashboard/api/snapshot").await.1["sessions"].clone();
        if sessions["http"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sessions["http"], 1, "{sessions}");
}

/// Reads the stream until `done` holds for the text so far (or 10 s pass).
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, done: impl Fn(&str) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done(seen) {
            let chunk = resp.chunk().await.unwrap().expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not seen within 10 s; stream so far:\n{seen}"));
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn the_stream_sends_snapshots_and_calls_as_one_counted_connection() {
    let daemon = Daemon::start(&[("EXAI_HTTP_TOKEN", TOKEN)], &["--sim"]).await;
    let mut resp = client()
        .get(daemon.url("/dashboard/stream?window=300"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    read_until(&mut resp, &mut seen, |s| s.contains("event: snapshot")).await;
    assert!(
        seen.contains("retry: 3000"),
        "the first event sets the reconnect delay: {seen}"
    );
    // Snapshots keep coming on an idle daemon: that is the stream's heartbeat.
    let at = seen.len();
    read_until(&mut resp, &mut seen, |s| s[at..].contains("event: snapshot")).await;

    let metrics = metrics_text(&daemon).await;
    assert_eq!(
        sample(&metrics, "exai_dashboard_streams_opened_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "exai_open_connections{transport=\"dashboard\"}"),
        Some(1.0),
        "{metrics}"
    );

    drive_calls(&daemon).await;
    let at = seen.len();
    read_until(&mut resp, &mut seen, |s| {
        s[at..].contains("event: call") && s[at..].contains("\"status\":\"invalid\"")
    })
    .await;
    let call_line = seen[at..]
        .lines()
        .skip_while(|l| *l != "event: call")
        .nth(1)
        .unwrap()
        .to_owned();
    let call: Value = serde_json::from_str(call_line.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(call["tool"], "status", "{call}");
    let at = seen.len();
    read_until(&mut resp, &mut seen, |s| s[at..].contains("\"calls_total\":5")).await;

    drop(resp);
    let mut open = None;
    for _ in 0..50 {
        open = sample(
            &metrics_text(&daemon).await,
            "exai_open_connections{transport=\"dashboard\"}",
        );
        if open == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, Some(0.0), "a closed stream leaves the count");
}

#[tokio::test]
async fn observations_are_filtered_and_acknowledged() {
    let daemon = Daemon::start(&[("EXAI_HTTP_TOKEN", TOKEN)], &["--sim"]).await;
    let store = exai_store::SqliteStore::open(daemon.data_dir()).await.unwrap();
    let seed = |severity: &str, category: &str, message: &str| Observation {
        id: 0,
        at_ms: exai_core::conversation::now_ms(),
        severity: severity.into(),
        category: category.into(),
        message: message.into(),
        evidence: "p95 4100 ms over 20 calls".into(),
        acknowledged: false,
        acknowledged_at_ms: None,
    };
    store
        .record_observation(&seed("warning", "latency", "chat is slow"))
        .await
        .unwrap();
    let critical = store
        .record_observation(&seed("critical", "errors", "chat fails"))
        .await
        .unwrap();

    let (status, all) = get_json(&daemon, "/dashboard/api/observations").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["observations"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["categories"], json!(["errors", "latency"]));
    assert_eq!(all["unacknowledged"], 2);
    let (_, critical_only) = get_json(&daemon, "/dashboard/api/observations?severity=critical").await;
    let list = critical_only["observations"].as_array().unwrap();
    assert_eq!(
        (list.len(), list[0]["id"].as_i64()),
        (1, Some(critical)),
        "{critical_only}"
    );
    let (_, by_category) = get_json(&daemon, "/dashboard/api/observations?category=latency").await;
    assert_eq!(by_category["observations"][0]["message"], "chat is slow");

    let c = client();
    for id in ["999999", "abc"] {
        let resp = c
            .post(daemon.url(&format!("/dashboard/api/observations/{id}/ack")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{id}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains(id), "{body}");
    }
    let resp = c
        .post(daemon.url(&format!("/dashboard/api/observations/{critical}/ack")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["observation"]["acknowledged"], true, "{body}");
    assert!(body["observation"]["acknowledged_at_ms"].is_number(), "{body}");
    let (_, open) = get_json(&daemon, "/dashboard/api/observations?acknowledged=false").await;
    let open = open["observations"].as_array().unwrap();
    assert_eq!((open.len(), open[0]["category"].as_str()), (1, Some("latency")));
    let stored = store.observations(10).await.unwrap();
    assert!(stored.iter().any(|o| o.id == critical && o.acknowledged), "{stored:?}");

    let (status, alerts) = get_json(&daemon, "/dashboard/api/alerts").await;
    assert_eq!(status, 200, "{alerts}");
    assert!(alerts["firing"].is_array() && alerts["recent"].is_array(), "{alerts}");
}

#[tokio::test]
async fn a_dashboard_port_serves_only_the_dashboard_and_metrics() {
    support::crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::command(&[("MONITORING_DASHBOARD_PORT", "0")]);
    cmd.args(["serve", "--port", "0", "--sim", "--data-dir"])
        .arg(dir.path());
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("a line within 30 s")
            .unwrap();
        lines.push(line);
    }
    let main = lines[0]
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        lines[0].contains(&format!("dashboard http://{main}/dashboard")),
        "{lines:?}"
    );
    let dash = lines[2]
        .strip_prefix("exai dashboard on http://")
        .and_then(|rest| rest.trim().strip_suffix("/dashboard"))
        .unwrap_or_else(|| panic!("no dashboard line in {lines:?}"))
        .to_owned();
    assert_ne!(dash, main);
    let c = client();
    for (base, path, want) in [
        (&dash, "/dashboard", 200),
        (&dash, "/dashboard/api/snapshot", 200),
        (&dash, "/metrics", 200),
        (&dash, "/healthz", 404),
        (&dash, "/mcp", 404),
        (&main, "/dashboard/api/snapshot", 200),
        (&main, "/healthz", 200),
    ] {
        let resp = c.get(format!("http://{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), want, "{base}{path}");
    }
    let invalid = support::std_command(&[("MONITORING_DASHBOARD_PORT", "8080")])
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(invalid.status.code(), Some(2));
    let text = String::from_utf8_lossy(&invalid.stdout).to_string() + &String::from_utf8_lossy(&invalid.stderr);
    assert!(text.contains("MONITORING_DASHBOARD_PORT"), "{text}");
    drop(child);
}

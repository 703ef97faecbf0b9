//! `exai loadtest` and `exai baseline` end to end: the real binary starts its own simulator and server (or drives
//! a daemon this test started), runs bounded load over each transport, and writes reports whose numbers are
//! checked here; the `timeout`, `recovery` and `soak` scenarios; a non-loopback target refused; a baseline
//! regression failing `exai baseline compare`; `--replicas 1,3` on Redis, and on PostgreSQL with a schema per run.

use std::path::{Path, PathBuf};
use std::process::Output;

use exai_sim::{Delay, Script};
use serde_json::Value;

use crate::chat::sim;
use crate::support::{Daemon, command};

/// Runs `exai <args>` to completion with a clean environment.
async fn exai(args: &[&str]) -> Output {
    command(&[]).args(args).output().await.expect("run exai")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The one report of each kind in `dir`.
fn reports(dir: &Path) -> (Value, String) {
    let mut json = None;
    let mut html = None;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => json = Some(serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()),
            Some("html") => html = Some(std::fs::read_to_string(&path).unwrap()),
            _ => {}
        }
    }
    (json.expect("a JSON report"), html.expect("an HTML report"))
}

fn assert_percentiles_ordered(group: &Value) {
    let l = &group["latency_ms"];
    let values: Vec<f64> = ["p50", "p90", "p95", "p99", "max"]
        .iter()
        .map(|k| l[k].as_f64().unwrap())
        .collect();
    assert!(values[0] > 0.0, "{l}");
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {l}");
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {}", report["checks"]))
}

/// A short healthy run over `transport` against the zero-latency simulator.
async fn short_run(transport: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "loadtest",
        "--scenario",
        "custom",
        "--transport",
        transport,
        "--sessions",
        "3",
        "--calls",
        "20",
        "--duration",
        "20s",
        "--latency-profile",
        "zero",
        "--mix",
        "chat=50,debug=20,status=20,challenge=10",
        "--quiet",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = exai(&args).await;
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(
        output.contains("TOTAL") && output.contains("PASSED"),
        "the summary table: {output}"
    );
    let (report, html) = reports(dir.path());
    let totals = &report["totals"];
    assert_eq!(totals["calls"], 20, "{totals}");
    assert_eq!(
        totals["successes"], totals["calls"],
        "a healthy upstream answers every call: {totals}"
    );
    assert_eq!(
        (totals["errors"].as_u64(), totals["fallbacks"].as_u64()),
        (Some(0), Some(0))
    );
    assert_percentiles_ordered(totals);
    for (tool, group) in report["per_tool"].as_object().unwrap() {
        assert!(
            ["chat", "debug", "status", "challenge"].contains(&tool.as_str()),
            "{tool}"
        );
        assert_percentiles_ordered(group);
    }
    let per_session: u64 = report["per_session"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["calls"].as_u64().unwrap())
        .sum();
    assert_eq!((report["per_session"].as_array().unwrap().len(), per_session), (3, 20));
    assert_eq!(report["samples"].as_array().unwrap().len(), 20);
    assert_eq!(report["passed"], true, "{}", report["checks"]);
    assert_eq!(report["plan"]["transport"], transport);
    let protocol = extra
        .iter()
        .skip_while(|a| **a != "--protocol")
        .nth(1)
        .unwrap_or(&"2025-11-25");
    assert_eq!(report["plan"]["protocol"], *protocol);
    if transport == "stdio" {
        assert_eq!(
            check(&report, "stdio session 0: permits consistent, calls accounted")["ok"],
            true
        );
    } else {
        for name in [
            "no permit held after the run",
            "permits consistent (status)",
            "calls accounted (status.calls_total)",
        ] {
            assert_eq!(check(&report, name)["ok"], true, "{}", check(&report, name));
        }
        assert!(report["probe"]["calls"].as_u64().unwrap() >= 1, "{}", report["probe"]);
        assert!(
            report["stability"]["memory_peak_bytes"].as_f64().unwrap() > 1e6,
            "{}",
            report["stability"]
        );
    }
    assert!(
        html.starts_with("<!doctype html>") && !html.contains("<script"),
        "self-contained, no scripts"
    );
    for chart in ["Latency over time", "Latency distribution", "Throughput and errors"] {
        assert!(html.contains(&format!("aria-label=\"{chart}")), "missing chart {chart}");
    }
    assert!(
        html.matches("<svg").count() >= 3 && html.contains("<circle"),
        "charts drawn"
    );
}

#[tokio::test]
async fn a_short_run_over_streamable_http_writes_both_reports() {
    short_run("http", &[]).await;
}

#[tokio::test]
async fn a_short_run_over_stateless_http_writes_both_reports() {
    short_run("http", &["--protocol", "2026-07-28"]).await;
}

#[tokio::test]
async fn a_short_run_over_the_websocket_daemon_writes_both_reports() {
    short_run("ws", &[]).await;
}

#[tokio::test]
async fn a_short_run_over_stdio_children_writes_both_reports() {
    short_run("stdio", &[]).await;
}

#[tokio::test]
async fn the_timeout_scenario_ends_every_call_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let out = exai(&[
        "loadtest",
        "--scenario",
        "timeout",
        "--deadline-secs",
        "2",
        "--sessions",
        "2",
        "--duration",
        "5s",
        "--quiet",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let (report, _) = reports(dir.path());
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.len() >= 4, "two sessions, 5 s, 2 s per call: {}", samples.len());
    for s in samples {
        let kind = s["error"].as_str().unwrap_or("none");
        assert!(kind == "timeout" || kind == "upstream_timeout", "{s}");
        let ms = s["latency_us"].as_f64().unwrap() / 1000.0;
        assert!(
            (1950.0..3000.0).contains(&ms),
            "ended at the 2 s deadline, not after {ms} ms: {s}"
        );
    }
    assert_eq!(report["totals"]["timeouts"], samples.len());
    assert_eq!(
        check(&report, "tier-1 calls unaffected by the hanging upstream")["ok"],
        true
    );
}

#[tokio::test]
async fn the_recovery_scenario_sees_circuits_open_then_close() {
    let dir = tempfile::tempdir().unwrap();
    let out = exai(&[
        "loadtest",
        "--scenario",
        "recovery",
        "--duration",
        "10s",
        "--quiet",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let (report, _) = reports(dir.path());
    let circuits = &report["circuits"];
    assert!(circuits["opened"].as_f64().unwrap() >= 1.0, "{circuits}");
    let (opened, closed) = (
        circuits["first_open_secs"].as_f64().unwrap(),
        circuits["all_closed_secs"].as_f64().unwrap(),
    );
    assert!(opened < closed, "{circuits}");
    assert_eq!(circuits["open_at_end"], serde_json::json!([]));
    let kinds = &report["totals"]["error_kinds"];
    assert!(kinds["circuit_open"].as_u64().unwrap() > 0, "{kinds}");
    assert!(report["totals"]["successes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_soak_run_holds_its_websocket_connections_and_samples_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = exai(&[
        "loadtest",
        "--scenario",
        "soak",
        "--sessions",
        "3",
        "--duration",
        "5s",
        "--think",
        "100ms",
        "--latency-profile",
        "zero",
        "--quiet",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let (report, html) = reports(dir.path());
    assert_eq!(report["plan"]["transport"], "ws", "soak runs over the WebSocket daemon");
    let stability = &report["stability"];
    assert_eq!(stability["unexpected_disconnects"], 0);
    assert!(stability["memory"].as_array().unwrap().len() >= 5, "{stability}");
    assert_eq!(check(&report, "memory flat")["ok"], stability["memory_flat"]);
    assert!(html.contains("Server resident memory"));
}

#[tokio::test]
async fn a_non_loopback_target_is_refused() {
    let out = exai(&["loadtest", "--target", "http://10.1.2.3:8080", "--quiet"]).await;
    let output = text(&out);
    assert!(!out.status.success(), "{output}");
    assert!(
        output.contains("not a loopback address") && output.contains("--allow-remote"),
        "{output}"
    );
    let ws = exai(&[
        "loadtest",
        "--target",
        "http://127.0.0.1:1",
        "--ws-url",
        "ws://192.0.2.1:8079/",
    ])
    .await;
    assert!(text(&ws).contains("not a loopback address"), "{}", text(&ws));
}

#[tokio::test]
async fn baseline_compare_passes_then_fails_naming_the_tool_that_slowed() {
    let sim = sim().await;
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
    ];
    let daemon = Daemon::start(&env, &[]).await;
    let data = tempfile::tempdir().unwrap();
    let base = daemon.url("");
    let data_dir = data.path().to_str().unwrap();
    let run = |verb: &'static str| {
        let base = base.clone();
        async move {
            exai(&[
                "--data-dir",
                data_dir,
                "baseline",
                verb,
                "--target",
                &base,
                "--runs",
                "5",
                "--tools",
                "version,status,chat,debug",
            ])
            .await
        }
    };
    let collected = run("collect").await;
    assert!(collected.status.success(), "{}", text(&collected));
    let stored = exai_store::SqliteStore::open(data.path()).await.unwrap();
    let rows = exai_core::store::Store::latest_tool_baselines(&stored).await.unwrap();
    let tools: Vec<&str> = rows.iter().map(|b| b.tool.as_str()).collect();
    assert_eq!(tools, ["chat", "debug", "status", "version"]);
    assert!(
        rows.iter()
            .all(|b| b.runs == 5 && b.errors == 0 && b.p50_ms > 0.0 && b.p50_ms <= b.p95_ms)
    );

    let same = run("compare").await;
    assert!(same.status.success(), "an unchanged server passes: {}", text(&same));

    for model in sim.state().config().models {
        sim.state()
            .set_model_script(&model.id, Some(Script::echo().with_ttft_ms(Delay::Fixed(400))));
    }
    let slower = run("compare").await;
    let output = text(&slower);
    assert!(!slower.status.success(), "{output}");
    assert!(
        output.contains("regressed") && output.contains("chat (") && output.contains("debug ("),
        "{output}"
    );
    assert!(
        !output.contains("version (") && !output.contains("status ("),
        "tier-1 tools did not slow: {output}"
    );
}

#[tokio::test]
async fn replicas_one_and_three_are_compared_side_by_side() {
    let Some(redis) = crate::support::redis_url("replicas load") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = exai(&[
        "loadtest",
        "--scenario",
        "custom",
        "--transport",
        "http",
        "--replicas",
        "1,3",
        "--redis-url",
        &redis,
        "--sessions",
        "3",
        "--calls",
        "20",
        "--duration",
        "20s",
        "--latency-profile",
        "zero",
        "--mix",
        "chat=50,status=50",
        "--quiet",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ])
    .await;
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(output.contains("replicas") && output.contains("calls/s"), "{output}");
    let mut reports: Vec<Value> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "one report per run");
    reports.sort_by_key(|r| r["started_at_unix_ms"].as_u64());
    for report in &reports {
        let totals = &report["totals"];
        assert_eq!(totals["calls"], 20, "{totals}");
        assert_eq!(totals["successes"], totals["calls"], "{totals}");
        assert_eq!(report["passed"], true, "{}", report["checks"]);
    }
    assert!(
        check(&reports[1], "replica 3: calls accounted (status.calls_total)")["ok"] == true,
        "every replica is checked"
    );
    let runs = reports[1]["replicas"].as_array().unwrap();
    let counts: Vec<u64> = runs.iter().map(|r| r["replicas"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 3], "{runs:?}");
    for run in runs {
        assert_eq!(
            (run["calls"].as_u64(), run["successes"].as_u64()),
            (Some(20), Some(20)),
            "{run}"
        );
    }
}

/// The test database URL; `None` (skip) only outside CI.
fn database_url() -> Option<String> {
    match std::env::var("EXAI_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_DATABASE_URL must be set in CI"),
        Err(_) => {
            eprintln!("EXAI_TEST_DATABASE_URL not set: skipping the replicas-on-PostgreSQL load test");
            None
        }
    }
}

/// The schema names `exai loadtest` announced on stderr, in order.
fn announced_schemas(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split("uses the PostgreSQL schema ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn replicas_on_postgres_run_each_in_a_fresh_schema_dropped_afterwards() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let Some(redis) = crate::support::redis_url("replicas load on PostgreSQL") else {
        return;
    };
    let Some(database) = database_url() else { return };
    let admin = exai_store::PgStore::connect_in_schema(&database, None)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {database} is required: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::support::command(&[])
        .args([
            "loadtest",
            "--scenario",
            "custom",
            "--transport",
            "http",
            "--replicas",
            "1,3",
            "--redis-url",
            &redis,
            "--database-url",
            &database,
            "--sessions",
            "3",
            // Bounded by time, not calls: each run lasts long enough to see its schema while it runs.
            "--duration",
            "3s",
            "--think",
            "50ms",
            "--latency-profile",
            "zero",
            "--mix",
            "chat=50,debug=25,status=25",
            "--quiet",
            "--report-dir",
            dir.path().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run exai loadtest");
    let mut stdout = child.stdout.take().unwrap();
    let collect_stdout = tokio::spawn(async move {
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.unwrap();
        text
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    let mut seen_live = Vec::new();
    while let Some(line) = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
        .await
        .expect("exai loadtest went silent")
        .unwrap()
    {
        stderr.push_str(&line);
        stderr.push('\n');
        // A run announces its schema before its servers start, and drops it only after its 3 s of load.
        for name in announced_schemas(&line) {
            seen_live.push((name.clone(), admin.schema_exists(&name).await.unwrap()));
        }
    }
    let status = child.wait().await.unwrap();
    let stdout = collect_stdout.await.unwrap();
    let output = format!("status {status:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    assert!(status.success(), "{output}");

    let names = announced_schemas(&stderr);
    assert_eq!(names.len(), 2, "one schema per run: {output}");
    assert_ne!(names[0], names[1], "the runs share no schema");
    assert!(
        seen_live.iter().all(|(_, live)| *live),
        "each schema existed while its run went on: {seen_live:?}"
    );
    for name in &names {
        assert!(
            !admin.schema_exists(name).await.unwrap(),
            "{name} was dropped after its run"
        );
    }
    let mut reports: Vec<Value> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    reports.sort_by_key(|r| r["started_at_unix_ms"].as_u64());
    assert_eq!(reports.len(), 2, "one report per run");
    for (report, name) in reports.iter().zip(&names) {
        assert_eq!(report["passed"], true, "{}", report["checks"]);
        assert!(
            report["totals"]["successes"].as_u64().unwrap() > 0,
            "{}",
            report["totals"]
        );
        assert!(
            report["target"].as_str().unwrap().contains(name.as_str()),
            "{}",
            report["target"]
        );
    }
    let runs = reports[1]["replicas"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["store"] == "postgres"), "{runs:?}");

    // A run that fails after its schema was made (a tool the server does not offer) still drops it.
    let failed = exai(&[
        "loadtest",
        "--replicas",
        "1",
        "--redis-url",
        &redis,
        "--database-url",
        &database,
        "--sessions",
        "1",
        "--duration",
        "2s",
        "--latency-profile",
        "zero",
        "--mix",
        "no_such_tool=1",
        "--quiet",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ])
    .await;
    let output = text(&failed);
    assert!(!failed.status.success(), "{output}");
    assert!(output.contains("no_such_tool"), "{output}");
    let names = announced_schemas(&String::from_utf8_lossy(&failed.stderr));
    assert_eq!(names.len(), 1, "{output}");
    assert!(
        !admin.schema_exists(&names[0]).await.unwrap(),
        "the failed run's schema {} was dropped",
        names[0]
    );
    admin.close().await;
}

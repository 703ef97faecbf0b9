//! The tier-1 benchmark: exai's `version` tool against the official Python MCP SDK serving a constant tool of the
//! same name, each over Streamable HTTP (stateless, JSON responses) and over stdio, servers pinned alike.

use std::path::PathBuf;
use std::process::Stdio as ProcStdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::Settings;
use crate::load::{self, Summary};
use crate::mcp::{self, Stdio};
use crate::procs::{self, Proc};
use crate::table::{Pair, Report};

/// The Python side: the SDK's high-level server with one constant tool named like exai's.
const PYTHON_SERVER: &str = r#"
import sys
from mcp.server import MCPServer

server = MCPServer("bench")

@server.tool()
def version() -> dict:
    """Constant answer, like exai's version tool."""
    return {"name": "bench", "version": "1.0.0"}

if sys.argv[1] == "stdio":
    server.run("stdio")
else:
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]), json_response=True, stateless_http=True)
"#;

fn default_python() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache/exai-ci/py-venv/bin/python")
}

fn pin(settings: &Settings) -> Option<u8> {
    settings.pin.then_some(0)
}

/// Runs `version` calls over HTTP at each concurrency.
async fn http_runs(settings: &Settings, url: &str) -> anyhow::Result<Vec<Summary>> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let probe = mcp::tools_call(1, "version", json!({}), "bench", false);
    mcp::post_call(&client, url, "version", &probe)
        .await
        .with_context(|| format!("a first `version` call to {url}"))?;
    let mut out = Vec::new();
    for &concurrency in &settings.concurrency {
        let (c, u) = (client.clone(), url.to_owned());
        let ids = Arc::new(AtomicU64::new(10));
        out.push(
            load::run(concurrency, settings.warmup, settings.measure, move |_| {
                let (c, u) = (c.clone(), u.clone());
                let body = mcp::tools_call(
                    ids.fetch_add(1, Ordering::Relaxed),
                    "version",
                    json!({}),
                    "bench",
                    false,
                );
                async move { mcp::post_call(&c, &u, "version", &body).await }
            })
            .await,
        );
    }
    Ok(out)
}

/// Starts a stdio server, initializes it (2025-11-25, which both servers accept) and runs `version` calls.
async fn stdio_runs(settings: &Settings, mut cmd: tokio::process::Command) -> anyhow::Result<Vec<Summary>> {
    cmd.stdin(ProcStdio::piped()).stdout(ProcStdio::piped());
    let mut child = cmd.spawn().context("cannot start the stdio server")?;
    let stdio = Stdio::attach(&mut child)?;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    let reply = tokio::time::timeout(Duration::from_secs(30), stdio.request(init))
        .await
        .context("no initialize reply within 30 s")??;
    mcp::check_reply(&reply)?;
    stdio
        .notify(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await?;
    let call =
        json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": "version", "arguments": {}}});
    stdio
        .call(call.clone())
        .await
        .context("a first `version` call over stdio")?;
    let mut out = Vec::new();
    for &concurrency in &settings.concurrency {
        let (s, body) = (stdio.clone(), call.clone());
        out.push(
            load::run(concurrency, settings.warmup, settings.measure, move |_| {
                let (s, body) = (s.clone(), body.clone());
                async move { s.call(body).await }
            })
            .await,
        );
    }
    drop(child);
    Ok(out)
}

pub async fn run(settings: &Settings, python: Option<PathBuf>) -> anyhow::Result<Report> {
    let python = python.unwrap_or_else(default_python);
    anyhow::ensure!(
        python.exists(),
        "{} not found: run .ci/python-sdk.sh once (it makes the venv with mcp==2.3.0) or pass --python",
        python.display()
    );
    let temp = tempfile::tempdir()?;
    let script = temp.path().join("server.py");
    std::fs::write(&script, PYTHON_SERVER)?;
    let script = script.display().to_string();
    let data = temp.path().join("data").display().to_string();
    let exai_env = [
        ("EXAI_DATA_DIR", data.as_str()),
        ("EXAI_WS_PORT", "0"),
        ("EXAI_HTTP_JSON_RESPONSE", "true"),
        ("EXAI_WS_GLOBAL_MAX_INFLIGHT", "1024"),
        ("EXAI_WS_SESSION_MAX_INFLIGHT", "1024"),
        ("EXAI_LIMIT_MAX_WAITERS", "4096"),
        ("EXAI_MAX_CONNECTIONS_PER_IP", "4096"),
    ];

    // Streamable HTTP.
    let mut cmd = procs::command(&settings.exai, &["serve", "--port", "0"], pin(settings));
    cmd.envs(exai_env);
    let (exai, url): (Proc, String) = procs::start_announced("exai serve", cmd, "exai listening on").await?;
    let exai_http = http_runs(settings, &format!("{url}/mcp")).await?;
    let exai_memory = exai.memory();
    drop(exai);
    let port = procs::free_port()?;
    let port_arg = port.to_string();
    let mut cmd = procs::command(&python, &[script.as_str(), "http", port_arg.as_str()], pin(settings));
    cmd.stdout(ProcStdio::null());
    let python_http_proc = cmd.spawn().context("cannot start the Python MCP server")?;
    let python_url = format!("http://127.0.0.1:{port}/mcp");
    procs::wait_for(&reqwest::Client::new(), &python_url).await?;
    let python_http = http_runs(settings, &python_url).await?;
    drop(python_http_proc);

    // stdio.
    let mut cmd = procs::command(&settings.exai, &["stdio"], pin(settings));
    cmd.envs(exai_env);
    let exai_stdio = stdio_runs(settings, cmd).await?;
    let python_stdio = stdio_runs(
        settings,
        procs::command(&python, &[script.as_str(), "stdio"], pin(settings)),
    )
    .await?;

    let mut pairs = Vec::new();
    for (transport, py, ex) in [("HTTP", python_http, exai_http), ("stdio", python_stdio, exai_stdio)] {
        for (a, b) in py.into_iter().zip(ex) {
            pairs.push(Pair {
                case: format!("`version`, {transport}"),
                a,
                b,
            });
        }
    }
    let sdk_version = std::process::Command::new(&python)
        .args(["-c", "import importlib.metadata as m; print(m.version('mcp'))"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut context = vec![
        format!(
            "exai {} (release build) against the official Python MCP SDK {sdk_version} ({}) serving a constant \
             `version` tool; {} CPUs; {}",
            settings.exai.display(),
            python.display(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            if settings.pin {
                "each server pinned to CPU 0 (one core), the load generator unpinned"
            } else {
                "nothing pinned"
            }
        ),
        "HTTP: stateless 2026-07-28 `tools/call` POSTs answered as JSON; stdio: one server process, 2025-11-25 \
         initialize, calls multiplexed by id over its pipe"
            .into(),
    ];
    if let Some((rss, peak)) = exai_memory {
        context.push(format!(
            "exai serve after the HTTP runs: RSS {:.1} MiB, peak {:.1} MiB",
            rss as f64 / 1048576.0,
            peak as f64 / 1048576.0
        ));
    }
    Ok(Report {
        title: "Tier-1 calls: exai vs the official Python MCP SDK".into(),
        a_name: "Python SDK".into(),
        b_name: "exai".into(),
        context,
        pairs,
    })
}

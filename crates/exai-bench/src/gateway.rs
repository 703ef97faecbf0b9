//! The gateway-overhead benchmark: a zero-latency upstream (the simulator, and nginx returning a fixed streamed
//! completion, so the simulator's own cost is not hidden) called directly and through exai's `chat` tool over
//! Streamable HTTP, at each concurrency, with a JSON reply and with streamed text; plus exai's idle and peak memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::json;

use crate::load::{self, Timing};
use crate::procs::{self, Proc};
use crate::table::{Pair, Report};
use crate::{Settings, mcp};

const MODEL: &str = "glm-4.5-flash";
const PROMPT: &str = "Say hello in one short sentence.";

/// What nginx answers every POST with: a short GLM-style stream (three text chunks, usage, `[DONE]`).
const FIXED_STREAM: &str = concat!(
    "data: {\"id\":\"bench\",\"created\":1,\"model\":\"glm-4.5-flash\",\"choices\":[{\"index\":0,",
    "\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"}}]}\n\n",
    "data: {\"id\":\"bench\",\"created\":1,\"model\":\"glm-4.5-flash\",\"choices\":[{\"index\":0,",
    "\"delta\":{\"content\":\" from the\"}}]}\n\n",
    "data: {\"id\":\"bench\",\"created\":1,\"model\":\"glm-4.5-flash\",\"choices\":[{\"index\":0,",
    "\"delta\":{\"content\":\" upstream.\"},\"finish_reason\":\"stop\"}],",
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\n",
    "data: [DONE]\n\n"
);

/// Environment for the exai under test: keys for the fake upstream, and limits raised so the benchmark measures
/// the gateway's cost rather than its (deliberately low) default admission limits.
fn exai_env(glm_base: &str, data_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GLM_BASE_URL", glm_base.to_owned()),
        ("GLM_API_KEY", "bench".into()),
        ("KIMI_API_KEY", "".into()),
        ("EXAI_DATA_DIR", data_dir.display().to_string()),
        ("EXAI_WS_PORT", "0".into()),
        ("EXAI_HTTP_JSON_RESPONSE", "true".into()),
        ("EXAI_WS_GLOBAL_MAX_INFLIGHT", "1024".into()),
        ("EXAI_WS_SESSION_MAX_INFLIGHT", "1024".into()),
        ("EXAI_WS_GLM_MAX_INFLIGHT", "1024".into()),
        ("EXAI_LIMIT_MAX_WAITERS", "4096".into()),
        ("EXAI_MAX_CONNECTIONS_PER_IP", "4096".into()),
        ("EXAI_MAX_CONNECTIONS", "4096".into()),
        ("EXAI_LOG_LEVEL", "warn".into()),
    ]
}

async fn start_exai(settings: &Settings, glm_base: &str, data_dir: &Path) -> anyhow::Result<(Proc, String)> {
    let mut cmd = procs::command(&settings.exai, &["serve", "--port", "0"], settings.pin.then_some(0));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in exai_env(glm_base, data_dir) {
        cmd.env(k, v);
    }
    let (proc, url) = procs::start_announced("exai serve", cmd, "exai listening on").await?;
    Ok((proc, format!("{url}/mcp")))
}

async fn start_sim(settings: &Settings) -> anyhow::Result<(Proc, String)> {
    let cmd = procs::command(
        &settings.exai,
        &["sim", "--port", "0", "--profile", "zero"],
        settings.pin.then_some(1),
    );
    let (proc, url) = procs::start_announced("exai sim", cmd, "exai-sim listening on").await?;
    Ok((proc, format!("{url}/api/paas/v4")))
}

async fn start_nginx(settings: &Settings, nginx: &Path, dir: &Path) -> anyhow::Result<(Proc, String)> {
    let port = procs::free_port()?;
    let body = FIXED_STREAM.replace('\\', "\\\\").replace('"', "\\\"");
    let conf = format!(
        "master_process off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n\
           client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fastcgi;\n\
           uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      default_type text/event-stream;\n\
               return 200 \"{body}\";\n    }}\n  }}\n}}\n",
        dir = dir.display(),
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let path = path.display().to_string();
    let dir_arg = dir.display().to_string();
    let args = ["-p", dir_arg.as_str(), "-c", path.as_str(), "-g", "daemon off;"];
    let mut cmd = procs::command(nginx, &args, settings.pin.then_some(1));
    let child = cmd.spawn().context("cannot start nginx")?;
    let base = format!("http://127.0.0.1:{port}/api/paas/v4");
    let client = reqwest::Client::new();
    procs::wait_for(&client, &format!("http://127.0.0.1:{port}/")).await?;
    Ok((Proc { child }, base))
}

/// One streamed chat completion straight to the upstream, as exai itself would send it.
async fn direct(client: &reqwest::Client, url: &str) -> anyhow::Result<Timing> {
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": true});
    let started = Instant::now();
    let response = client.post(url).bearer_auth("bench").json(&body).send().await?;
    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
    let mut first_byte = None;
    let mut seen = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if first_byte.is_none() && !chunk.is_empty() {
            first_byte = Some(started.elapsed());
        }
        seen.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    anyhow::ensure!(
        seen.ends_with(b"data: [DONE]\n\n"),
        "the stream did not end with [DONE]"
    );
    Ok(Timing { total, first_byte })
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(30))
        .build()?)
}

pub async fn run(settings: &Settings, nginx: &Path) -> anyhow::Result<Report> {
    let temp = tempfile::tempdir()?;
    let mut upstreams = vec![("simulator", start_sim(settings).await?)];
    if nginx.exists() {
        let dir = temp.path().join("nginx");
        std::fs::create_dir_all(&dir)?;
        upstreams.push(("nginx", start_nginx(settings, nginx, &dir).await?));
    } else {
        eprintln!("{} not found: measuring the simulator only", nginx.display());
    }
    let mut pairs = Vec::new();
    let mut context = vec![
        format!(
            "exai {} (release build), {} CPUs; {}",
            settings.exai.display(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            if settings.pin {
                "exai pinned to CPU 0, the upstream to CPU 1, the load generator unpinned"
            } else {
                "nothing pinned"
            }
        ),
        format!(
            "{} s measured per cell after {} s of warm-up; closed loop (each worker sends its next call when the last ends)",
            settings.measure.as_secs_f64(),
            settings.warmup.as_secs_f64()
        ),
        "direct: a streamed chat completion POSTed to the upstream; exai: `tools/call chat` (stateless 2026-07-28) \
         over Streamable HTTP, answered as JSON, or streamed as SSE progress when a progressToken is sent"
            .into(),
    ];
    for (name, (_upstream, base)) in &upstreams {
        let data = temp.path().join(format!("data-{name}"));
        let (exai, mcp_url) = start_exai(settings, base, &data).await?;
        let client = http_client()?;
        // Idle: started and answered one call, nothing else running.
        let idle = {
            let body = mcp::tools_call(1, "chat", json!({"prompt": PROMPT, "model": MODEL}), "warm", false);
            mcp::post_call(&client, &mcp_url, "chat", &body)
                .await
                .with_context(|| format!("a first chat call through exai to the {name} upstream"))?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            exai.memory().map_or(0, |m| m.0)
        };
        let upstream_url = format!("{base}/chat/completions");
        for &concurrency in &settings.concurrency {
            eprintln!("{name}: concurrency {concurrency}");
            let (c, u) = (client.clone(), upstream_url.clone());
            let direct_run = load::run(concurrency, settings.warmup, settings.measure, move |_| {
                let (c, u) = (c.clone(), u.clone());
                async move { direct(&c, &u).await }
            })
            .await;
            for (mode, progress) in [("JSON reply", false), ("streamed", true)] {
                let (c, u) = (client.clone(), mcp_url.clone());
                let ids = Arc::new(AtomicU64::new(10));
                let through = load::run(concurrency, settings.warmup, settings.measure, move |worker| {
                    let (c, u) = (c.clone(), u.clone());
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let client_name = format!("bench-{worker}");
                        let arguments = json!({"prompt": PROMPT, "model": MODEL});
                        let body = mcp::tools_call(id, "chat", arguments, &client_name, progress);
                        mcp::post_call(&c, &u, "chat", &body).await
                    }
                })
                .await;
                pairs.push(Pair {
                    case: format!("{name}, {mode}"),
                    a: direct_run.clone(),
                    b: through,
                });
            }
        }
        let (now, peak) = exai.memory().unwrap_or((0, 0));
        context.push(format!(
            "exai's memory with the {name} upstream: idle {:.1} MiB, peak {:.1} MiB, after the runs {:.1} MiB",
            idle as f64 / 1048576.0,
            peak as f64 / 1048576.0,
            now as f64 / 1048576.0
        ));
    }
    Ok(Report {
        title: "Gateway overhead: the same upstream, direct and through exai's `chat`".into(),
        a_name: "direct".into(),
        b_name: "exai".into(),
        context,
        pairs,
    })
}

//! `exai-bench memory`: the daemon's resident memory at idle, at the peak of a burst and after it, for several
//! builds back to back (e.g. with mimalloc and with the system allocator). The burst: WebSocket clients that ask for
//! the tool list thousands of times without reading the answers, and clients that send one 30 MB frame each.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::procs::Proc;

const TOKEN: &str = "bench-memory-token";
/// Clients that never read, each sending this many `list_tools` (the code before the bounded queues held every
/// answer: at these numbers, several hundred MiB).
const NON_READERS: usize = 8;
const LIST_TOOLS: usize = 1000;
/// Clients that each send one large frame after `hello`.
const BIG_SENDERS: usize = 4;
const BIG_FRAME: usize = 30 << 20;
/// When the memory is read again after the burst's clients have gone.
const AFTER: [u64; 4] = [1, 5, 15, 30];

/// One build's figures, in bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub build: String,
    pub idle: u64,
    pub peak: u64,
    /// (seconds after the burst, RSS then).
    pub after: Vec<(u64, u64)>,
}

/// Parses `NAME=PATH`.
pub fn named(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text.split_once('=').ok_or("expected NAME=PATH")?;
    Ok((name.to_owned(), PathBuf::from(path)))
}

/// Measures each build in turn, the same burst each time.
pub async fn run(builds: &[(String, PathBuf)]) -> anyhow::Result<Vec<Figures>> {
    let mut out = Vec::new();
    for (name, exai) in builds {
        eprintln!("memory: {name} ({})", exai.display());
        out.push(measure(name, exai).await?);
    }
    Ok(out)
}

pub fn markdown(figures: &[Figures]) -> String {
    let mib = |b: u64| format!("{:.0}", b as f64 / (1024.0 * 1024.0));
    let mut out = String::from("| build | idle MiB | peak MiB |");
    for s in AFTER {
        out.push_str(&format!(" {s} s after MiB |"));
    }
    out.push_str("\n|---|---:|---:|");
    out.push_str(&"---:|".repeat(AFTER.len()));
    out.push('\n');
    for f in figures {
        out.push_str(&format!("| {} | {} | {} |", f.build, mib(f.idle), mib(f.peak)));
        for (_, rss) in &f.after {
            out.push_str(&format!(" {} |", mib(*rss)));
        }
        out.push('\n');
    }
    out
}

async fn measure(name: &str, exai: &Path) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let (proc, ws_url) = start(exai, dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = || proc.memory().map(|(rss, _)| rss).unwrap_or(0);
    let idle = rss();

    let mut clients = Vec::new();
    for _ in 0..NON_READERS {
        clients.push(tokio::spawn(non_reader(ws_url.clone())));
    }
    for _ in 0..BIG_SENDERS {
        clients.push(tokio::spawn(big_sender(ws_url.clone())));
    }
    let mut peak = idle;
    while clients.iter().any(|c| !c.is_finished()) {
        peak = peak.max(rss());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in clients {
        c.await?;
    }
    peak = peak.max(proc.memory().map(|(_, hwm)| hwm).unwrap_or(0));
    let ended = Instant::now();
    let mut after = Vec::new();
    for secs in AFTER {
        tokio::time::sleep_until((ended + Duration::from_secs(secs)).into()).await;
        after.push((secs, rss()));
    }
    Ok(Figures {
        build: name.to_owned(),
        idle,
        peak,
        after,
    })
}

/// `exai serve --sim` on free ports with room for every burst client; returns it and its WebSocket URL.
async fn start(exai: &Path, dir: &Path) -> anyhow::Result<(Proc, String)> {
    let mut cmd = tokio::process::Command::new(exai);
    cmd.args(["serve", "--port", "0", "--sim", "--data-dir"])
        .arg(dir)
        .envs([
            ("EXAI_WS_PORT", "0"),
            ("EXAI_WS_TOKEN", TOKEN),
            ("EXAI_MAX_CONNECTIONS_PER_IP", "1000"),
            ("EXAI_WS_MAX_SESSIONS", "1000"),
            ("EXAI_LOG_LEVEL", "error"),
        ])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", exai.display()))?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let ws = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("exai websocket on ") {
                return Ok::<_, std::io::Error>(Some(addr.trim().to_owned()));
            }
        }
        Ok(None)
    })
    .await
    .context("exai did not announce its WebSocket port within 30 s")??
    .context("exai exited before announcing its WebSocket port")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((Proc { child }, ws))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn hello(url: &str) -> Option<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let hello = serde_json::json!({"op": "hello", "token": TOKEN}).to_string();
    ws.send(Message::text(hello)).await.ok()?;
    ws.next().await?.ok()?;
    Some(ws)
}

/// Asks for the tool list `LIST_TOOLS` times, reads nothing for a while, then leaves.
async fn non_reader(url: String) {
    let Some(mut ws) = hello(&url).await else { return };
    for i in 0..LIST_TOOLS {
        let frame = serde_json::json!({"op": "list_tools", "request_id": i}).to_string();
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Sends one `BIG_FRAME`-byte frame, waits for the answer (or the close), then leaves.
async fn big_sender(url: String) {
    let Some(mut ws) = hello(&url).await else { return };
    let frame = format!("{{\"op\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(BIG_FRAME));
    if ws.send(Message::text(frame)).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
    }
}

//! MCP requests as the benchmarks send them: a stateless 2026-07-28 `tools/call` over Streamable HTTP (JSON or SSE
//! reply), and a stdio connection that multiplexes many calls in flight over one server's stdin/stdout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{Mutex, oneshot};

use crate::load::Timing;

pub const PROTOCOL: &str = "2026-07-28";

/// The per-request `_meta` a stateless 2026-07-28 request carries.
pub fn meta(client: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A `tools/call` request body; with `progress`, it asks for progress (streamed text) under that token.
pub fn tools_call(id: u64, tool: &str, arguments: Value, client: &str, progress: bool) -> Value {
    let mut meta = meta(client);
    if progress {
        meta["progressToken"] = json!(format!("p{id}"));
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments, "_meta": meta}})
}

/// Posts `body` to an MCP endpoint and reads the reply to the end, JSON or SSE. The first byte is the first
/// progress notification (streamed text) when the reply is a stream that carries one.
pub async fn post_call(client: &reqwest::Client, url: &str, tool: &str, body: &Value) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL)
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut first_byte = None;
    let mut text = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        text.extend_from_slice(&chunk);
        if sse && first_byte.is_none() && memchr(&text, b"notifications/progress") {
            first_byte = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    anyhow::ensure!(status.is_success(), "HTTP {status}: {}", String::from_utf8_lossy(&text));
    let reply = if sse {
        last_sse_data(&text)?
    } else {
        serde_json::from_slice(&text)?
    };
    check_reply(&reply)?;
    Ok(Timing { total, first_byte })
}

fn memchr(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The JSON-RPC response in an SSE body (the last `data:` that has an `id`).
fn last_sse_data(body: &[u8]) -> anyhow::Result<Value> {
    let text = std::str::from_utf8(body)?;
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .with_context(|| format!("no response in the stream: {text}"))
}

/// A reply must be a result that is not a tool error.
pub fn check_reply(reply: &Value) -> anyhow::Result<()> {
    if let Some(error) = reply.get("error") {
        anyhow::bail!("JSON-RPC error: {error}");
    }
    anyhow::ensure!(
        reply["result"]["isError"] != json!(true),
        "tool error: {}",
        reply["result"]["content"]
    );
    anyhow::ensure!(reply.get("result").is_some(), "no result: {reply}");
    Ok(())
}

/// One stdio server with many calls in flight: requests are written under a lock, replies routed by id.
#[derive(Debug, Clone)]
pub struct Stdio {
    stdin: Arc<Mutex<ChildStdin>>,
    pending: Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    next_id: Arc<AtomicU64>,
}

impl Stdio {
    /// Takes over `child`'s pipes and starts routing its replies.
    pub fn attach(child: &mut Child) -> anyhow::Result<Self> {
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let pending: Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let routes = Arc::clone(&pending);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let Some(id) = v.get("id").and_then(Value::as_u64) else {
                    continue;
                };
                if let Some(tx) = routes.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
                    let _ = tx.send(v);
                }
            }
        });
        Ok(Self {
            stdin: Arc::new(Mutex::new(stdin)),
            pending,
            next_id: Arc::new(AtomicU64::new(1_000)),
        })
    }

    /// Sends one request (its `id` replaced) and waits for the reply.
    pub async fn request(&self, mut body: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        body["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let mut line = serde_json::to_vec(&body)?;
        line.push(b'\n');
        {
            let mut stdin = self.stdin.lock().await;
            stdin.write_all(&line).await?;
            stdin.flush().await?;
        }
        rx.await.context("the server closed stdout")
    }

    /// Sends one notification.
    pub async fn notify(&self, body: Value) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&body)?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(&line).await?;
        Ok(stdin.flush().await?)
    }

    /// Times one `tools/call`.
    pub async fn call(&self, body: Value) -> anyhow::Result<Timing> {
        let started = Instant::now();
        let reply = self.request(body).await?;
        let total = started.elapsed();
        check_reply(&reply)?;
        Ok(Timing {
            total,
            first_byte: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_response_in_a_stream_and_rejects_errors() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[]}}\n\n";
        let reply = last_sse_data(body).unwrap();
        assert_eq!(reply["id"], 7);
        check_reply(&reply).unwrap();
        assert!(check_reply(&json!({"id": 1, "error": {"code": -32602}})).is_err());
        assert!(check_reply(&json!({"id": 1, "result": {"isError": true, "content": []}})).is_err());
        assert!(last_sse_data(b"data: {\"method\":\"x\"}\n\n").is_err());
    }
}

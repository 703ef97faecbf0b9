//! A WebSocket daemon-protocol session (docs/ws-protocol.md): `hello`, then `call_tool` frames answered by
//! `progress` / `stream_chunk`… `stream_complete` and one final `call_tool_res` or `error`. The connection is held
//! for the whole run and kept read between calls (so keepalive pings are answered); a drop the session did not
//! ask for is counted and the session reconnects, resuming its `session_id`.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{CallResult, ErrorKind};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsSession {
    socket: Option<Socket>,
    url: String,
    token: Option<String>,
    session_id: Option<String>,
    next_id: u64,
    /// Drops the session did not ask for.
    pub disconnects: u32,
}

/// What reading one frame gave.
enum Read {
    Frame(Value),
    Other,
    Closed(String),
}

impl WsSession {
    pub async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut session = Self {
            socket: None,
            url: url.to_owned(),
            token: token.map(str::to_owned),
            session_id: None,
            next_id: 1,
            disconnects: 0,
        };
        session.open().await?;
        Ok(session)
    }

    /// Connects and says `hello` (resuming the session when there was one).
    async fn open(&mut self) -> anyhow::Result<()> {
        let (mut socket, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async_with_config(&self.url, None, true),
        )
        .await
        .with_context(|| format!("connecting to {} timed out", self.url))?
        .with_context(|| format!("cannot connect to {}", self.url))?;
        let mut hello = json!({"op": "hello", "token": self.token.clone().unwrap_or_default()});
        if let Some(id) = &self.session_id {
            hello["session_id"] = json!(id);
        }
        socket.send(Message::text(hello.to_string())).await?;
        let ack = loop {
            match tokio::time::timeout(Duration::from_secs(10), read(&mut socket)).await {
                Err(_) => bail!("no hello_ack from {} within 10 s", self.url),
                Ok(Read::Frame(frame)) if frame["op"] == "hello_ack" => break frame,
                Ok(Read::Frame(_) | Read::Other) => continue,
                Ok(Read::Closed(why)) => bail!("{} closed the connection after hello: {why}", self.url),
            }
        };
        if ack["ok"] != true {
            bail!("hello refused: {ack}");
        }
        self.session_id = ack["session_id"].as_str().map(str::to_owned);
        self.socket = Some(socket);
        Ok(())
    }

    /// Reconnects after a drop, counting it.
    async fn reconnect(&mut self) {
        self.disconnects += 1;
        self.socket = None;
        for attempt in 0..5u32 {
            if self.open().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }

    pub async fn call(&mut self, tool: &str, args: Value) -> CallResult {
        if self.socket.is_none() {
            self.reconnect().await;
        }
        let Some(socket) = self.socket.as_mut() else {
            return CallResult::failed(ErrorKind::Transport, format!("not connected to {}", self.url));
        };
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        let frame = json!({"op": "call_tool", "request_id": id, "name": tool, "arguments": args});
        if let Err(e) = socket.send(Message::text(frame.to_string())).await {
            self.reconnect().await;
            return CallResult::failed(ErrorKind::Transport, format!("sending call_tool: {e}"));
        }
        let mut progress = 0;
        loop {
            let frame = match read(socket).await {
                Read::Frame(frame) => frame,
                Read::Other => continue,
                Read::Closed(why) => {
                    self.reconnect().await;
                    return CallResult::failed(ErrorKind::Transport, format!("connection dropped mid-call: {why}"));
                }
            };
            if frame["request_id"] != id.as_str() {
                continue;
            }
            match frame["op"].as_str().unwrap_or_default() {
                "progress" | "stream_chunk" => progress += 1,
                "call_tool_res" => {
                    let text = frame["outputs"]
                        .as_array()
                        .map(|o| {
                            o.iter()
                                .filter_map(|p| p["text"].as_str())
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default();
                    let structured = frame.get("structured").filter(|v| !v.is_null()).cloned();
                    return CallResult::from_parts(frame["is_error"] == true, text, structured, progress);
                }
                "error" => {
                    let message = frame["message"].as_str().unwrap_or_default().to_owned();
                    let kind = match frame["code"].as_str().unwrap_or_default() {
                        "TIMEOUT" => ErrorKind::Timeout,
                        "OVER_CAPACITY" => ErrorKind::OverCapacity,
                        "CANCELLED" => ErrorKind::Cancelled,
                        "VALIDATION_ERROR" | "TOOL_NOT_FOUND" => ErrorKind::Invalid,
                        "UNAUTHORIZED" => ErrorKind::Refused,
                        "PROVIDER_ERROR" => match ErrorKind::from_tool_error(&message) {
                            ErrorKind::ToolError => ErrorKind::Provider,
                            kind => kind,
                        },
                        _ => ErrorKind::from_tool_error(&message),
                    };
                    let mut result = CallResult::failed(kind, message);
                    result.progress = progress;
                    return result;
                }
                _ => {}
            }
        }
    }

    pub async fn list_tools(&mut self) -> anyhow::Result<Vec<String>> {
        let socket = self.socket.as_mut().context("not connected")?;
        socket
            .send(Message::text(
                json!({"op": "list_tools", "request_id": "tools"}).to_string(),
            ))
            .await?;
        loop {
            match read(socket).await {
                Read::Frame(frame) if frame["op"] == "list_tools_res" => return Ok(super::tool_names(&frame)),
                Read::Frame(_) | Read::Other => continue,
                Read::Closed(why) => bail!("connection closed while listing tools: {why}"),
            }
        }
    }

    /// Waits `pause` while reading the connection, so the daemon's pings are answered and a drop is seen.
    pub async fn idle(&mut self, pause: Duration) {
        let until = tokio::time::Instant::now() + pause;
        loop {
            let Some(socket) = self.socket.as_mut() else {
                self.reconnect().await;
                tokio::time::sleep_until(until).await;
                return;
            };
            let closed = tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                read = read(socket) => matches!(read, Read::Closed(_)),
            };
            if closed {
                self.reconnect().await;
            }
        }
    }

    /// Closes normally (not counted as a drop).
    pub async fn close(mut self) {
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).await;
        }
    }
}

async fn read(socket: &mut Socket) -> Read {
    match socket.next().await {
        Some(Ok(Message::Text(text))) => match serde_json::from_str(text.as_str()) {
            Ok(frame) => Read::Frame(frame),
            Err(_) => Read::Other,
        },
        Some(Ok(Message::Close(frame))) => Read::Closed(match frame {
            Some(f) => format!("close {} {}", u16::from(f.code), f.reason),
            None => "close without a code".to_owned(),
        }),
        Some(Ok(_)) => Read::Other,
        Some(Err(e)) => Read::Closed(e.to_string()),
        None => Read::Closed("the stream ended".to_owned()),
    }
}

//! A Streamable HTTP MCP client session, in either protocol era: 2025-11-25 (`initialize`,
//! `notifications/initialized`, then `tools/call` POSTs carrying the `Mcp-Session-Id`) or the stateless
//! 2026-07-28 (`server/discover`, then every request carrying its version, client info and capabilities in
//! `_meta`; the server keys the session on the client's name). Replies come as JSON or as an SSE stream (with
//! progress notifications when a `progressToken` was sent). Its own connection pool, like a separate client.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{CallResult, ErrorKind};

pub const PROTOCOL_VERSION: &str = "2025-11-25";
pub const STATELESS_VERSION: &str = "2026-07-28";
const ACCEPT: &str = "application/json, text/event-stream";

pub struct HttpSession {
    client: reqwest::Client,
    endpoint: String,
    token: Option<String>,
    session_id: Option<String>,
    /// The stateless era's per-request `_meta` (None: the 2025-11-25 session era).
    meta: Option<Value>,
    /// The client name given at `initialize` (kept to start a new session).
    name: String,
    next_id: u64,
    /// New sessions started because the server had forgotten the old one (HTTP 404; rmcp expires a 2025-era
    /// session idle for 5 minutes). The spec's client answer: a fresh `initialize`.
    pub reinitialized: u32,
}

impl HttpSession {
    /// Connects and initializes a session named `name` at `base` (`http://host:port`).
    pub async fn connect(base: &str, token: Option<&str>, name: &str, stateless: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let mut session = Self {
            client,
            endpoint: format!("{}/mcp", base.trim_end_matches('/')),
            token: token.map(str::to_owned),
            session_id: None,
            meta: None,
            name: name.to_owned(),
            next_id: 1,
            reinitialized: 0,
        };
        if stateless {
            session.meta = Some(json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
                "io.modelcontextprotocol/clientInfo": {"name": name, "version": exai_core::VERSION},
                "io.modelcontextprotocol/clientCapabilities": {}
            }));
            let discover =
                json!({"jsonrpc":"2.0","id":0,"method":"server/discover","params":session.params(json!({}))});
            let response = session.post(&discover).await.context("sending server/discover")?;
            let status = response.status();
            let (reply, _) = read_reply(response).await?;
            if !status.is_success() || reply.get("result").is_none() {
                bail!("server/discover at {} answered {status}: {reply}", session.endpoint);
            }
            return Ok(session);
        }
        session.initialize().await?;
        Ok(session)
    }

    /// `initialize` and `notifications/initialized`: a new 2025-era session.
    async fn initialize(&mut self) -> anyhow::Result<()> {
        self.session_id = None;
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": self.name, "version": exai_core::VERSION}}});
        let response = self.post(&init).await.context("sending initialize")?;
        if !response.status().is_success() {
            let status = response.status();
            bail!(
                "initialize at {} answered {status}: {}",
                self.endpoint,
                response.text().await.unwrap_or_default()
            );
        }
        self.session_id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (reply, _) = read_reply(response).await?;
        if reply.get("result").is_none() {
            bail!("initialize failed: {reply}");
        }
        let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        self.post(&initialized)
            .await
            .context("sending notifications/initialized")?;
        Ok(())
    }

    /// `params` with the stateless era's `_meta` merged in.
    fn params(&self, mut params: Value) -> Value {
        if let (Some(meta), Some(object)) = (&self.meta, params.as_object_mut()) {
            let merged = object.entry("_meta").or_insert_with(|| json!({}));
            for (k, v) in meta.as_object().into_iter().flatten() {
                merged[k] = v.clone();
            }
        }
        params
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let version = if self.meta.is_some() {
            STATELESS_VERSION
        } else {
            PROTOCOL_VERSION
        };
        let mut request = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .header("mcp-protocol-version", version)
            .body(body.to_string());
        if self.meta.is_some() {
            if let Some(method) = body["method"].as_str() {
                request = request.header("mcp-method", method);
            }
            if let Some(name) = body["params"]["name"].as_str() {
                request = request.header("mcp-name", name);
            }
        }
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    async fn post(&self, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.request(body).send().await
    }

    pub async fn call(&mut self, tool: &str, args: Value, stream: bool) -> CallResult {
        let id = self.next_id;
        self.next_id += 1;
        let mut params = json!({"name": tool, "arguments": args});
        if stream {
            params["_meta"] = json!({"progressToken": format!("p{id}")});
        }
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":self.params(params)});
        let mut response = match self.post(&body).await {
            Ok(r) => r,
            Err(e) => return CallResult::failed(ErrorKind::Transport, format!("{e:#}")),
        };
        if response.status() == reqwest::StatusCode::NOT_FOUND && self.session_id.is_some() {
            // The server forgot the session: start a new one and send the call again.
            if let Err(e) = self.initialize().await {
                return CallResult::failed(ErrorKind::Transport, format!("starting a new session: {e:#}"));
            }
            self.reinitialized += 1;
            response = match self.post(&body).await {
                Ok(r) => r,
                Err(e) => return CallResult::failed(ErrorKind::Transport, format!("{e:#}")),
            };
        }
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let kind = match status.as_u16() {
                401 | 403 | 503 => ErrorKind::Refused,
                _ => ErrorKind::Protocol,
            };
            return CallResult::failed(kind, format!("HTTP {status}: {text}"));
        }
        match read_reply(response).await {
            Ok((reply, progress)) => CallResult::from_jsonrpc(&reply, progress),
            Err(e) => CallResult::failed(ErrorKind::Transport, format!("{e:#}")),
        }
    }

    pub async fn list_tools(&mut self) -> anyhow::Result<Vec<String>> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc":"2.0","id":id,"method":"tools/list","params":self.params(json!({}))});
        let response = self.post(&body).await.context("sending tools/list")?;
        let (reply, _) = read_reply(response).await?;
        Ok(super::tool_names(&reply["result"]))
    }

    /// Ends the session (`DELETE`), as a polite client does.
    pub async fn close(self) {
        if let Some(id) = &self.session_id {
            let mut request = self.client.delete(&self.endpoint).header("mcp-session-id", id);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let _ = request.send().await;
        }
    }
}

/// The JSON-RPC reply in a JSON or SSE body, and how many progress notifications came before it.
async fn read_reply(response: reqwest::Response) -> anyhow::Result<(Value, u32)> {
    let text = response.text().await.context("reading the reply")?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok((v, 0));
    }
    let mut progress = 0;
    for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
        let Ok(message) = serde_json::from_str::<Value>(data.trim()) else {
            continue;
        };
        if message["method"] == "notifications/progress" {
            progress += 1;
        } else if message.get("id").is_some() && (message.get("result").is_some() || message.get("error").is_some()) {
            return Ok((message, progress));
        }
    }
    bail!("no JSON-RPC reply in the response body ({} bytes)", text.len())
}

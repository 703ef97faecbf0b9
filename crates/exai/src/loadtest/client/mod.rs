//! One MCP client session per transport, behind one [`Session`] type, and what a call's answer means:
//! [`CallResult`] with its [`ErrorKind`] read from the tool error's text or the daemon protocol's code.
//!
//! - [`http`]: Streamable HTTP, `initialize` then calls in the `Mcp-Session-Id` session.
//! - [`ws`]: the WebSocket daemon protocol, one connection held for the whole run (drops are counted).
//! - [`stdio`]: an `exai stdio` child per session.

pub mod http;
pub mod stdio;
pub mod ws;

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// What went wrong with a call, as a bounded set of kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The call's tier deadline passed.
    Timeout,
    /// The provider's own request timeout (or no answer in time) ended it.
    UpstreamTimeout,
    /// A concurrency limit stayed full.
    OverCapacity,
    /// The model's circuit breaker was open.
    CircuitOpen,
    /// The provider failed (HTTP 5xx / 429, broken stream, malformed answer) after retries.
    Provider,
    Cancelled,
    /// exai refused the arguments or the tool name.
    Invalid,
    /// Any other tool error.
    ToolError,
    /// A JSON-RPC error (not a tool result).
    Protocol,
    /// The server refused the connection or the request (HTTP 503 at a connection limit, 401, 403).
    Refused,
    /// The connection broke or could not be made.
    Transport,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::OverCapacity => "over_capacity",
            Self::CircuitOpen => "circuit_open",
            Self::Provider => "provider",
            Self::Cancelled => "cancelled",
            Self::Invalid => "invalid",
            Self::ToolError => "tool_error",
            Self::Protocol => "protocol",
            Self::Refused => "refused",
            Self::Transport => "transport",
        }
    }

    pub fn is_timeout(self) -> bool {
        matches!(self, Self::Timeout | Self::UpstreamTimeout)
    }

    /// The kind a tool error's text names (exai's error messages are specific; see `ToolError`).
    pub fn from_tool_error(text: &str) -> Self {
        let t = text.to_ascii_lowercase();
        if t.contains("timed out after") {
            Self::Timeout
        } else if t.contains("over capacity") {
            Self::OverCapacity
        } else if t.contains("circuit open") {
            Self::CircuitOpen
        } else if t.contains("no answer within") {
            Self::UpstreamTimeout
        } else if t.contains("was cancelled") {
            Self::Cancelled
        } else if t.contains("invalid arguments") || t.contains("unknown tool") {
            Self::Invalid
        } else if t.contains("http 5")
            || t.contains("http 429")
            || t.contains("stream broke")
            || t.contains("cannot reach")
            || t.contains("malformed")
        {
            Self::Provider
        } else {
            Self::ToolError
        }
    }
}

/// One call's answer, as the client saw it.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub error: Option<ErrorKind>,
    /// The answer came from a fallback model (`FALLBACK:` in its text): counted apart from successes.
    pub fallback: bool,
    /// Progress notifications / stream chunks received before the answer.
    pub progress: u32,
    pub structured: Option<Value>,
    /// The tool error's or failure's text.
    pub message: Option<String>,
}

impl CallResult {
    pub fn failed(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            error: Some(kind),
            fallback: false,
            progress: 0,
            structured: None,
            message: Some(message.into()),
        }
    }

    /// Reads an MCP `CallToolResult` (`content`, `structuredContent`, `isError`).
    pub fn from_tool_result(result: &Value, progress: u32) -> Self {
        let text: String = result["content"]
            .as_array()
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let structured = result.get("structuredContent").filter(|v| !v.is_null()).cloned();
        Self::from_parts(result["isError"] == true, text, structured, progress)
    }

    pub fn from_parts(is_error: bool, text: String, structured: Option<Value>, progress: u32) -> Self {
        if is_error {
            return Self {
                error: Some(ErrorKind::from_tool_error(&text)),
                fallback: false,
                progress,
                structured,
                message: Some(text),
            };
        }
        Self {
            error: None,
            fallback: text.contains("FALLBACK:"),
            progress,
            structured,
            message: None,
        }
    }

    /// Reads a JSON-RPC reply: a `result` or an `error`.
    pub fn from_jsonrpc(reply: &Value, progress: u32) -> Self {
        match reply.get("result") {
            Some(result) => Self::from_tool_result(result, progress),
            None => Self::failed(
                ErrorKind::Protocol,
                reply["error"]["message"]
                    .as_str()
                    .unwrap_or("no result and no error")
                    .to_owned(),
            ),
        }
    }
}

/// A client session on one transport.
pub enum Session {
    Http(http::HttpSession),
    Ws(ws::WsSession),
    Stdio(stdio::StdioSession),
}

impl Session {
    pub async fn call(&mut self, tool: &str, args: Value, stream: bool) -> CallResult {
        match self {
            Self::Http(s) => s.call(tool, args, stream).await,
            Self::Ws(s) => s.call(tool, args).await,
            Self::Stdio(s) => s.call(tool, args, stream).await,
        }
    }

    /// The enabled tools' names, in listing order.
    pub async fn list_tools(&mut self) -> anyhow::Result<Vec<String>> {
        match self {
            Self::Http(s) => s.list_tools().await,
            Self::Ws(s) => s.list_tools().await,
            Self::Stdio(s) => s.list_tools().await,
        }
    }

    /// Waits `pause`, still serving the connection (WebSocket keepalive) meanwhile.
    pub async fn pause(&mut self, pause: Duration) {
        match self {
            Self::Ws(s) => s.idle(pause).await,
            _ => tokio::time::sleep(pause).await,
        }
    }

    /// Connection drops the session did not ask for (WebSocket only; reconnected each time).
    pub fn unexpected_disconnects(&self) -> u32 {
        match self {
            Self::Ws(s) => s.disconnects,
            _ => 0,
        }
    }

    /// HTTP sessions started again after the server forgot them (HTTP 404 on an expired session).
    pub fn renewals(&self) -> u32 {
        match self {
            Self::Http(s) => s.reinitialized,
            _ => 0,
        }
    }

    pub async fn close(self) {
        match self {
            Self::Http(s) => s.close().await,
            Self::Ws(s) => s.close().await,
            Self::Stdio(s) => s.close().await,
        }
    }
}

/// Tool names from a `tools/list` result.
fn tool_names(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_errors_are_classified_by_their_text() {
        let cases = [
            (
                "`chat` timed out after 2001 ms (attempt 1 glm-4.5-flash 2001 ms)",
                ErrorKind::Timeout,
            ),
            (
                "over capacity: the provider glm limit (4 calls at once) is full",
                ErrorKind::OverCapacity,
            ),
            (
                "circuit open for glm/glm-4.6; next probe in 25 s",
                ErrorKind::CircuitOpen,
            ),
            ("glm: HTTP 503 Service Unavailable [exai-sim]", ErrorKind::Provider),
            (
                "invalid arguments for `chat`: missing field `prompt`",
                ErrorKind::Invalid,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(ErrorKind::from_tool_error(text), kind, "{text}");
        }
        let ok = CallResult::from_tool_result(
            &json!({"content":[{"type":"text","text":"hi · FALLBACK: glm-4.6 was asked for"}],"isError":false}),
            2,
        );
        assert!(ok.error.is_none() && ok.fallback && ok.progress == 2);
        let rpc = CallResult::from_jsonrpc(&json!({"error":{"code":-32602,"message":"unknown tool"}}), 0);
        assert_eq!(rpc.error, Some(ErrorKind::Protocol));
    }
}

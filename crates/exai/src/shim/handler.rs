//! The shim's MCP side: an rmcp `ServerHandler` that lists the daemon's tools and runs each `tools/call` as a
//! daemon call, passing progress through as `notifications/progress` and MCP cancellation through as `cancel`.

use std::borrow::Cow;
use std::time::Duration;

use exai_core::protocol::SUPPORTED_VERSIONS;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::calls::Event;
use super::conn::Daemon;
use super::frames;

const INSTRUCTIONS: &str = "exai lets you consult other models (GLM, Kimi, OpenAI-compatible endpoints) through the \
shared exai daemon: `chat` asks one (pass back `continuation_id` to continue a thread), `challenge` makes you \
re-examine a claim, `listmodels` shows the models and which have keys.";

#[derive(Clone, Debug)]
pub struct ShimHandler {
    daemon: Daemon,
    /// A last-resort bound on one call: the daemon's longest deadline plus a margin, never shorter. It only
    /// matters if the daemon never answers a call it accepted (e.g. the call frame was lost in a drop).
    watchdog: Duration,
}

impl ShimHandler {
    pub fn new(daemon: Daemon, watchdog: Duration) -> Self {
        Self { daemon, watchdog }
    }
}

/// An MCP result from a `call_tool_res` frame: `outputs` as content, `structured`, `is_error`.
pub fn result_from_frame(frame: &Value) -> CallToolResult {
    let outputs = frame
        .get("outputs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let content: Vec<ContentBlock> = outputs
        .iter()
        .map(|o| {
            serde_json::from_value(o.clone())
                .unwrap_or_else(|_| ContentBlock::text(frames::outputs_text(std::slice::from_ref(o))))
        })
        .collect();
    let is_error = frame
        .get("is_error")
        .or_else(|| frame.get("isError"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut result = match is_error {
        true => CallToolResult::error(content),
        false => CallToolResult::success(content),
    };
    result.structured_content = frame
        .get("structured")
        .or_else(|| frame.get("structuredContent"))
        .filter(|v| !v.is_null())
        .cloned();
    result
}

/// The MCP answer to an `error` frame: a tool error naming the code (an unknown tool is JSON-RPC -32602, as
/// exai itself answers it).
pub fn result_from_error(code: &str, message: &str) -> Result<CallToolResult, ErrorData> {
    if code == "TOOL_NOT_FOUND" {
        return Err(ErrorData::invalid_params(
            message.to_owned(),
            Some(json!({ "code": code })),
        ));
    }
    Ok(CallToolResult::error(vec![ContentBlock::text(format!(
        "{code}: {message}"
    ))]))
}

fn protocol_versions() -> Vec<ProtocolVersion> {
    SUPPORTED_VERSIONS
        .iter()
        .filter_map(|v| {
            ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .find(|k| k.as_str() == *v)
                .cloned()
        })
        .collect()
}

impl ServerHandler for ShimHandler {
    fn get_info(&self) -> ServerConfig {
        let mut info = Implementation::new("exai", exai_core::VERSION);
        info.title = Some("exai (shim to the exai daemon)".into());
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(info)
            .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(protocol_versions())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .daemon
            .tools()
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        let tools: Vec<Tool> = tools
            .into_iter()
            .filter_map(|t| match serde_json::from_value::<Tool>(t.clone()) {
                Ok(tool) => Some(tool),
                Err(e) => {
                    tracing::warn!(error = %e, tool = %t, "daemon tool definition not understood; skipped");
                    None
                }
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let args = request.arguments.unwrap_or_default();
        let (id, mut events) = match self.daemon.call(&name, &args).await {
            Ok(call) => call,
            Err(e) => return Ok(CallToolResult::error(vec![ContentBlock::text(e)]).into()),
        };
        let token = context.meta.get_progress_token();
        let mut step = 0.0;
        let watchdog = tokio::time::sleep(self.watchdog);
        tokio::pin!(watchdog);
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                () = context.ct.cancelled() => {
                    tracing::info!(tool = %name, request_id = %id, "call cancelled by the client; cancelling it on the daemon");
                    self.daemon.cancel(&id);
                    return Ok(CallToolResult::error(vec![ContentBlock::text(format!("`{name}` was cancelled by the caller"))]).into());
                }
                () = &mut watchdog => {
                    self.daemon.cancel(&id);
                    let text = format!(
                        "no answer from the exai daemon at {} for `{name}` within {} s (longer than any deadline of \
                         the daemon): the call was lost; retry it",
                        self.daemon.url(),
                        self.watchdog.as_secs()
                    );
                    return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
                }
            };
            let outcome = match event {
                Some(Event::Progress(message)) => {
                    if let Some(token) = &token {
                        step += 1.0;
                        let mut param = ProgressNotificationParam::new(token.clone(), step);
                        param.message = Some(message);
                        if let Err(e) = context.peer.notify_progress(param).await {
                            tracing::debug!(error = %e, "progress notification not delivered");
                        }
                    }
                    continue;
                }
                Some(Event::Result(frame)) => Ok(result_from_frame(&frame)),
                Some(Event::Error { code, message }) => result_from_error(&code, &message),
                Some(Event::Failed(reason)) => Ok(CallToolResult::error(vec![ContentBlock::text(reason)])),
                None => Ok(CallToolResult::error(vec![ContentBlock::text(
                    "the shim lost track of this call (internal error); retry it",
                )])),
            };
            self.daemon.forget(&id);
            return outcome.map(Into::into);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_frames_become_mcp_results() {
        let frame = json!({"op":"call_tool_res","request_id":"r","outputs":[{"type":"text","text":"hi"}],
            "structured":{"content":"hi"},"is_error":false});
        let result = serde_json::to_value(result_from_frame(&frame)).unwrap();
        assert_eq!(result["content"], json!([{"type":"text","text":"hi"}]));
        assert_eq!(result["structuredContent"], json!({"content":"hi"}));
        assert_eq!(result["isError"], false);
        let tool_error = json!({"outputs":[{"type":"text","text":"bad"}],"is_error":true});
        assert_eq!(
            serde_json::to_value(result_from_frame(&tool_error)).unwrap()["isError"],
            true
        );
    }

    #[test]
    fn error_frames_become_tool_errors_and_unknown_tools_invalid_params() {
        let timeout = serde_json::to_value(result_from_error("TIMEOUT", "after 30 s").unwrap()).unwrap();
        assert_eq!(timeout["isError"], true);
        assert_eq!(timeout["content"][0]["text"], "TIMEOUT: after 30 s");
        let unknown = result_from_error("TOOL_NOT_FOUND", "unknown tool `nope`").unwrap_err();
        assert_eq!(unknown.code.0, -32602);
        assert!(unknown.message.contains("nope"));
    }
}

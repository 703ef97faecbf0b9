//! The rescue table: the only place exai errors become wire errors. Unknown tools are JSON-RPC
//! protocol errors (-32602, as the MCP spec prescribes); everything a model could act on (bad arguments,
//! timeouts, upstream failures) is a tool result with `isError: true` so the calling model reads it.

use exai_core::error::ToolError;
use exai_core::tools::ToolOutput;
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::json;

/// The MCP answer to a finished (or failed) tool call.
pub fn call_result(outcome: Result<ToolOutput, ToolError>) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(out) => {
            let content = vec![ContentBlock::text(out.text)];
            let mut result = if out.is_error {
                CallToolResult::error(content)
            } else {
                CallToolResult::success(content)
            };
            result.structured_content = out.structured;
            Ok(result)
        }
        Err(e) => match e {
            ToolError::UnknownTool { ref name, .. } => {
                Err(ErrorData::invalid_params(e.to_string(), Some(json!({ "tool": name }))))
            }
            ToolError::InvalidArguments { .. }
            | ToolError::Timeout { .. }
            | ToolError::Cancelled { .. }
            | ToolError::Unavailable(_)
            | ToolError::Provider(_)
            | ToolError::Exhausted { .. }
            | ToolError::OverCapacity(_)
            | ToolError::FleetUnavailable(_)
            | ToolError::CircuitOpen(_)
            | ToolError::Internal(_) => Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())])),
        },
    }
}

/// The WebSocket daemon protocol's error code for a failed call (the `code` of its `error` frame).
pub fn ws_error_code(e: &ToolError) -> &'static str {
    match e {
        ToolError::UnknownTool { .. } => "TOOL_NOT_FOUND",
        ToolError::InvalidArguments { .. } => "VALIDATION_ERROR",
        ToolError::Timeout { .. } => "TIMEOUT",
        ToolError::Cancelled { .. } => "CANCELLED",
        ToolError::OverCapacity(_) => "OVER_CAPACITY",
        // A dependency that is down, as `Unavailable`: the protocol's code set stays as documented.
        ToolError::Unavailable(_)
        | ToolError::FleetUnavailable(_)
        | ToolError::Provider(_)
        | ToolError::Exhausted { .. }
        | ToolError::CircuitOpen(_) => "PROVIDER_ERROR",
        ToolError::Internal(_) => "INTERNAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_error_codes_name_the_failure() {
        let unknown = ToolError::UnknownTool {
            name: "x".into(),
            available: "version".into(),
        };
        assert_eq!(ws_error_code(&unknown), "TOOL_NOT_FOUND");
        assert_eq!(ws_error_code(&ToolError::Cancelled { tool: "t".into() }), "CANCELLED");
        assert_eq!(ws_error_code(&ToolError::Internal("x".into())), "INTERNAL");
        let timeout = ToolError::Timeout {
            tool: "t".into(),
            after: Duration::from_secs(1),
            spent: String::new(),
        };
        assert_eq!(ws_error_code(&timeout), "TIMEOUT");
    }
    use std::time::Duration;

    #[test]
    fn unknown_tool_is_invalid_params_naming_the_tool() {
        let err = call_result(Err(ToolError::UnknownTool {
            name: "nope".into(),
            available: "version".into(),
        }))
        .unwrap_err();
        assert_eq!(err.code.0, -32602);
        assert!(err.message.contains("unknown tool `nope`") && err.message.contains("version"));
    }

    #[test]
    fn model_actionable_failures_are_tool_errors() {
        for e in [
            ToolError::InvalidArguments {
                tool: "t".into(),
                message: "missing field `x`".into(),
            },
            ToolError::Timeout {
                tool: "t".into(),
                after: Duration::from_secs(5),
                spent: "attempt 1 glm-4.6 5000 ms".into(),
            },
            ToolError::Internal("oops".into()),
        ] {
            let text = e.to_string();
            let r = call_result(Err(e)).unwrap();
            assert_eq!(r.is_error, Some(true));
            assert_eq!(r.content[0].as_text().unwrap().text, text);
        }
    }

    #[test]
    fn success_carries_text_and_structured_content() {
        let out = ToolOutput {
            text: "{\"a\":1}".into(),
            structured: Some(json!({"a": 1})),
            is_error: false,
        };
        let r = call_result(Ok(out)).unwrap();
        assert_eq!(r.is_error, Some(false));
        assert_eq!(r.structured_content, Some(json!({"a": 1})));
    }
}

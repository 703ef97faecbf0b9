//! A fixture tool with an `x-mcp-header` argument (SEP-2243): 2026-07-28 clients mirror it into an
//! `Mcp-Param-Region` header, which rmcp's HTTP transport checks against the body before the call runs.

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, JsonObject, Tool};
use serde_json::{Value, json};

use super::{text_result, tool};

const NAME: &str = "test_custom_header";

pub fn tools() -> Vec<Tool> {
    let schema = json!({"type": "object", "properties": {
        "region": {"type": "string", "description": "Any text; sent as the Mcp-Param-Region header too.",
                   "x-mcp-header": "Region"}},
        "required": ["region"]});
    vec![tool(
        NAME,
        "Conformance fixture: echoes `region`, which is mirrored into a header.",
        schema,
    )]
}

pub fn call(name: &str, args: &JsonObject) -> Option<Result<CallToolResponse, ErrorData>> {
    (name == NAME).then(|| {
        text_result(format!(
            "region={}",
            args.get("region").and_then(Value::as_str).unwrap_or("")
        ))
    })
}

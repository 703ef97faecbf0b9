//! 2025-11-25 fixture tools that ask the client mid-call: `sampling/createMessage` and `elicitation/create`
//! sent as server→client requests on the session (rmcp routes them onto the call's SSE stream).

use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, CustomRequest, JsonObject, ServerRequest, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::{no_args, text_result, tool};

pub fn tools() -> Vec<Tool> {
    let string_arg =
        |name: &str| json!({"type": "object", "properties": {name: {"type": "string"}}, "required": [name]});
    vec![
        tool(
            "test_sampling",
            "Conformance fixture: asks the client's model to answer `prompt` (2025 sampling).",
            string_arg("prompt"),
        ),
        tool(
            "test_elicitation",
            "Conformance fixture: asks the user for a username and email (2025 elicitation).",
            string_arg("message"),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Conformance fixture: elicitation with a default for every primitive type.",
            no_args(),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Conformance fixture: elicitation with every enum flavour.",
            no_args(),
        ),
    ]
}

pub async fn call(
    name: &str,
    args: &JsonObject,
    context: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResponse, ErrorData>> {
    let arg = |key: &str| args.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (method, params) = match name {
        "test_sampling" => (
            "sampling/createMessage",
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": arg("prompt")}}],
                   "maxTokens": 100}),
        ),
        "test_elicitation" => (
            "elicitation/create",
            json!({"message": arg("message"), "requestedSchema": {"type": "object", "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}},
                "required": ["username", "email"]}}),
        ),
        "test_elicitation_sep1034_defaults" => (
            "elicitation/create",
            json!({"message": "Please review and update the form fields with defaults",
                   "requestedSchema": {"type": "object", "properties": {
                       "name": {"type": "string", "default": "John Doe"},
                       "age": {"type": "integer", "default": 30},
                       "score": {"type": "number", "default": 95.5},
                       "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                       "verified": {"type": "boolean", "default": true}},
                   "required": []}}),
        ),
        "test_elicitation_sep1330_enums" => ("elicitation/create", sep1330_params()),
        _ => return None,
    };
    let answer = match ask(context, method, params).await {
        Ok(answer) => answer,
        Err(e) => {
            let text = format!("{method} failed: {e}");
            return Some(Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into()));
        }
    };
    let text = match name {
        "test_sampling" => format!(
            "LLM response: {}",
            answer["content"]["text"].as_str().unwrap_or_default()
        ),
        "test_elicitation" => format!(
            "User response: action={}, content={}",
            answer["action"], answer["content"]
        ),
        _ => format!(
            "Elicitation completed: action={}, content={}",
            answer["action"], answer["content"]
        ),
    };
    Some(text_result(text))
}

/// Sends one server→client request and returns the client's result as JSON. Sent as a raw request so the
/// elicitation schemas reach the client exactly as written.
async fn ask(context: &RequestContext<RoleServer>, method: &str, params: Value) -> Result<Value, String> {
    let request = ServerRequest::CustomRequest(CustomRequest::new(method, Some(params)));
    let result = context.peer.send_request(request).await.map_err(|e| e.to_string())?;
    serde_json::to_value(result).map_err(|e| e.to_string())
}

fn sep1330_params() -> Value {
    let titled = |prefix: &str, noun: &str| {
        json!([{"const": format!("{prefix}1"), "title": format!("First {noun}")},
               {"const": format!("{prefix}2"), "title": format!("Second {noun}")},
               {"const": format!("{prefix}3"), "title": format!("Third {noun}")}])
    };
    json!({"message": "Please choose from the enum fields", "requestedSchema": {"type": "object", "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": titled("value", "Option")},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                       "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "items": {"anyOf": titled("value", "Choice")}}
    }}})
}

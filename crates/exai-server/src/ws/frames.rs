//! The EX-AI daemon protocol's frames: parsing what clients send (each problem a specific error) and building
//! what the server sends. The protocol itself is documented in `docs/ws-protocol.md`.

use exai_core::tools::{JsonObject, ToolOutput};
use serde_json::{Map, Value, json};

use crate::json_limits;

/// A frame from the client.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Inbound {
    Hello {
        token: Option<String>,
        session_id: Option<String>,
    },
    ListTools {
        request_id: Option<Value>,
    },
    CallTool {
        request_id: Value,
        name: String,
        arguments: JsonObject,
    },
    Cancel {
        request_id: Value,
    },
    Ping {
        request_id: Option<Value>,
    },
    Pong,
}

/// A frame the server cannot act on, and the `error` frame's code and message for it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bad {
    pub code: &'static str,
    pub message: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> Bad {
    Bad {
        code,
        message: message.into(),
    }
}

const OPS: &str = "hello, list_tools, call_tool, cancel, ping, pong";

/// Parses one text frame.
pub(super) fn parse(text: &str) -> Result<Inbound, Bad> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Err(exceeded) = json_limits::check(text.as_bytes(), json_limits::FRAME_ENVELOPE) {
        return Err(bad("VALIDATION_ERROR", format!("the frame is {exceeded}")));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad("VALIDATION_ERROR", format!("the frame is not valid JSON: {e}")))?;
    let Value::Object(mut frame) = value else {
        return Err(bad("VALIDATION_ERROR", "a frame must be a JSON object with an `op`"));
    };
    let op = match frame.get("op") {
        Some(Value::String(op)) => op.clone(),
        Some(_) => return Err(bad("VALIDATION_ERROR", "`op` must be a string")),
        None => return Err(bad("VALIDATION_ERROR", "the frame has no `op`")),
    };
    Ok(match op.as_str() {
        "hello" => Inbound::Hello {
            token: optional_string(&frame, "token")?,
            session_id: optional_string(&frame, "session_id")?,
        },
        "list_tools" => Inbound::ListTools {
            request_id: optional_id(&frame)?,
        },
        "call_tool" => {
            let request_id = required_id(&frame, &op)?;
            let name = match frame.get("name") {
                Some(Value::String(name)) => name.clone(),
                _ => return Err(bad("VALIDATION_ERROR", "`call_tool` needs a string `name`")),
            };
            let arguments = match frame.remove("arguments") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(args)) => args,
                Some(_) => return Err(bad("VALIDATION_ERROR", "`arguments` must be a JSON object")),
            };
            Inbound::CallTool {
                request_id,
                name,
                arguments,
            }
        }
        "cancel" => Inbound::Cancel {
            request_id: required_id(&frame, &op)?,
        },
        "ping" => Inbound::Ping {
            request_id: optional_id(&frame)?,
        },
        "pong" => Inbound::Pong,
        other => {
            return Err(bad(
                "UNKNOWN_OP",
                format!("unknown op `{other}`; this server knows {OPS}"),
            ));
        }
    })
}

fn optional_string(frame: &JsonObject, field: &str) -> Result<Option<String>, Bad> {
    match frame.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad("VALIDATION_ERROR", format!("`{field}` must be a string"))),
    }
}

fn optional_id(frame: &JsonObject) -> Result<Option<Value>, Bad> {
    match frame.get("request_id") {
        None | Some(Value::Null) => Ok(None),
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(Some(id.clone())),
        Some(_) => Err(bad("VALIDATION_ERROR", "`request_id` must be a string or a number")),
    }
}

fn required_id(frame: &JsonObject, op: &str) -> Result<Value, Bad> {
    optional_id(frame)?.ok_or_else(|| bad("VALIDATION_ERROR", format!("`{op}` needs a `request_id`")))
}

fn with_id(mut frame: Value, request_id: Option<&Value>) -> String {
    if let Some(id) = request_id {
        frame["request_id"] = id.clone();
    }
    frame.to_string()
}

pub(super) fn hello_ack(session_id: &str, resumed: bool, pending: usize) -> String {
    json!({"op": "hello_ack", "ok": true, "session_id": session_id, "resumed": resumed, "pending": pending}).to_string()
}

pub(super) fn hello_refused(error: &str, message: &str) -> String {
    json!({"op": "hello_ack", "ok": false, "error": error, "message": message}).to_string()
}

pub(super) fn list_tools_res(request_id: Option<&Value>, tools: &Value) -> String {
    with_id(json!({"op": "list_tools_res", "tools": tools}), request_id)
}

pub(super) fn pong(request_id: Option<&Value>) -> String {
    with_id(json!({"op": "pong"}), request_id)
}

pub(super) fn progress(request_id: &Value, progress: f64, message: &str) -> String {
    json!({"op": "progress", "request_id": request_id, "progress": progress, "message": message}).to_string()
}

/// A piece of the model's answer as it streams.
pub(super) fn stream_chunk(request_id: &Value, chunk: &str) -> String {
    json!({"op": "stream_chunk", "request_id": request_id, "chunk": chunk}).to_string()
}

pub(super) fn stream_complete(request_id: &Value) -> String {
    json!({"op": "stream_complete", "request_id": request_id}).to_string()
}

pub(super) fn call_tool_res(request_id: &Value, out: &ToolOutput) -> String {
    let mut frame = json!({
        "op": "call_tool_res",
        "request_id": request_id,
        "outputs": [{"type": "text", "text": out.text}],
        "is_error": out.is_error,
    });
    if let Some(structured) = &out.structured {
        frame["structured"] = structured.clone();
    }
    frame.to_string()
}

/// An `error` frame; `request_id` is null for connection-level errors.
pub(super) fn error(request_id: Option<&Value>, code: &str, message: &str) -> String {
    json!({"op": "error", "request_id": request_id, "code": code, "message": message}).to_string()
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_op_and_names_each_problem() {
        assert_eq!(
            parse(r#"{"op":"hello","token":"t"}"#).unwrap(),
            Inbound::Hello {
                token: Some("t".into()),
                session_id: None
            }
        );
        let call = parse(r#"{"op":"call_tool","request_id":7,"name":"version"}"#).unwrap();
        assert!(matches!(call, Inbound::CallTool { ref request_id, .. } if *request_id == json!(7)));
        assert_eq!(parse("nope").unwrap_err().code, "VALIDATION_ERROR");
        assert_eq!(parse("[1]").unwrap_err().code, "VALIDATION_ERROR");
        assert_eq!(parse(r#"{"x":1}"#).unwrap_err().code, "VALIDATION_ERROR");
        assert_eq!(parse(r#"{"op":"dance"}"#).unwrap_err().code, "UNKNOWN_OP");
        let missing = parse(r#"{"op":"call_tool","name":"chat"}"#).unwrap_err();
        assert!(missing.message.contains("request_id"), "{missing:?}");
        let args = parse(r#"{"op":"call_tool","request_id":"a","name":"chat","arguments":[]}"#).unwrap_err();
        assert!(args.message.contains("arguments"), "{args:?}");
    }

    #[test]
    fn results_carry_text_structured_and_the_request_id() {
        let out = ToolOutput {
            text: "hi".into(),
            structured: Some(json!({"a": 1})),
            is_error: false,
        };
        let frame: Value = serde_json::from_str(&call_tool_res(&json!("r1"), &out)).unwrap();
        assert_eq!(frame["outputs"][0], json!({"type": "text", "text": "hi"}));
        assert_eq!(frame["structured"], json!({"a": 1}));
        assert_eq!(frame["request_id"], "r1");
        let err: Value = serde_json::from_str(&error(None, "UNKNOWN_OP", "x")).unwrap();
        assert_eq!(err["request_id"], Value::Null);
    }
}

//! The daemon protocol's frames as the shim sends and reads them: one JSON object per WebSocket text frame,
//! each with an `op`. Parsing is lenient (unknown ops and extra fields are kept, not errors) so a newer daemon works.

use serde_json::{Map, Value, json};

/// `{"op":"hello","token","session_id"?}`: the first frame on every connection.
pub fn hello(token: Option<&str>, session_id: Option<&str>) -> String {
    let mut frame = json!({"op": "hello", "token": token.unwrap_or_default()});
    if let Some(id) = session_id {
        frame["session_id"] = json!(id);
    }
    frame.to_string()
}

pub fn list_tools(request_id: &str) -> String {
    json!({"op": "list_tools", "request_id": request_id}).to_string()
}

pub fn call_tool(request_id: &str, name: &str, arguments: &Map<String, Value>) -> String {
    json!({"op": "call_tool", "request_id": request_id, "name": name, "arguments": arguments}).to_string()
}

pub fn cancel(request_id: &str) -> String {
    json!({"op": "cancel", "request_id": request_id}).to_string()
}

pub fn ping(request_id: &str) -> String {
    json!({"op": "ping", "request_id": request_id}).to_string()
}

/// A frame from the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    HelloAck {
        ok: bool,
        session_id: Option<String>,
        error: Option<String>,
    },
    ListToolsRes {
        request_id: Option<String>,
        tools: Vec<Value>,
    },
    Progress {
        request_id: String,
        message: String,
    },
    StreamChunk {
        request_id: String,
        chunk: String,
    },
    StreamComplete {
        request_id: String,
    },
    CallToolRes {
        request_id: String,
        outputs: Vec<Value>,
        /// The MCP result the daemon may add alongside `outputs` (`structuredContent`, `isError`).
        frame: Value,
    },
    Error {
        request_id: Option<String>,
        code: String,
        message: String,
    },
    Ping {
        request_id: Option<String>,
    },
    Pong,
    /// An op the shim does not know (logged and ignored).
    Unknown {
        op: String,
    },
}

impl Incoming {
    /// Parses one text frame; `Err` says why it is not a frame at all.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(obj) = value else {
            return Err("not a JSON object".into());
        };
        let op = obj.get("op").and_then(Value::as_str).ok_or("no `op` field")?.to_owned();
        let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);
        let id = text("request_id");
        let need_id = || id.clone().ok_or_else(|| format!("`{op}` frame without a request_id"));
        Ok(match op.as_str() {
            "hello_ack" => Incoming::HelloAck {
                ok: obj.get("ok").and_then(Value::as_bool).unwrap_or(false),
                session_id: text("session_id"),
                error: text("error").or_else(|| text("message")),
            },
            "list_tools_res" => Incoming::ListToolsRes {
                request_id: id,
                tools: obj.get("tools").and_then(Value::as_array).cloned().unwrap_or_default(),
            },
            "progress" => Incoming::Progress {
                request_id: need_id()?,
                message: text("message").unwrap_or_default(),
            },
            "stream_chunk" => Incoming::StreamChunk {
                request_id: need_id()?,
                chunk: text("chunk").or_else(|| text("text")).unwrap_or_default(),
            },
            "stream_complete" => Incoming::StreamComplete { request_id: need_id()? },
            "call_tool_res" => Incoming::CallToolRes {
                request_id: need_id()?,
                outputs: obj
                    .get("outputs")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                frame: Value::Object(obj.clone()),
            },
            "error" => {
                let nested = obj.get("error").and_then(Value::as_object);
                let field = |key: &str| {
                    text(key).or_else(|| {
                        nested
                            .and_then(|n| n.get(key))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                };
                Incoming::Error {
                    request_id: id,
                    code: field("code").unwrap_or_else(|| "ERROR".into()),
                    message: field("message").or_else(|| text("error")).unwrap_or_default(),
                }
            }
            "ping" => Incoming::Ping { request_id: id },
            "pong" => Incoming::Pong,
            _ => Incoming::Unknown { op },
        })
    }
}

/// The text of a result's `outputs` (`[{type:"text",text}]`), joined.
pub fn outputs_text(outputs: &[Value]) -> String {
    outputs
        .iter()
        .filter_map(|o| o.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_carries_the_session_only_when_resuming() {
        let fresh: Value = serde_json::from_str(&hello(Some("t"), None)).unwrap();
        assert_eq!(fresh, json!({"op":"hello","token":"t"}));
        let again: Value = serde_json::from_str(&hello(None, Some("s1"))).unwrap();
        assert_eq!(again, json!({"op":"hello","token":"","session_id":"s1"}));
    }

    #[test]
    fn outgoing_frames_name_their_request() {
        let mut args = Map::new();
        args.insert("prompt".into(), json!("hi"));
        let call: Value = serde_json::from_str(&call_tool("r1", "chat", &args)).unwrap();
        assert_eq!(
            call,
            json!({"op":"call_tool","request_id":"r1","name":"chat","arguments":{"prompt":"hi"}})
        );
        let cancel: Value = serde_json::from_str(&cancel("r1")).unwrap();
        assert_eq!(cancel, json!({"op":"cancel","request_id":"r1"}));
    }

    #[test]
    fn parses_every_frame_the_daemon_sends() {
        let p = |s: &str| Incoming::parse(s).unwrap();
        assert_eq!(
            p(r#"{"op":"hello_ack","ok":true,"session_id":"s"}"#),
            Incoming::HelloAck {
                ok: true,
                session_id: Some("s".into()),
                error: None
            }
        );
        assert_eq!(
            p(r#"{"op":"hello_ack","ok":false,"error":"unauthorized"}"#),
            Incoming::HelloAck {
                ok: false,
                session_id: None,
                error: Some("unauthorized".into())
            }
        );
        assert_eq!(
            p(r#"{"op":"progress","request_id":"a","message":"m"}"#),
            Incoming::Progress {
                request_id: "a".into(),
                message: "m".into()
            }
        );
        assert_eq!(
            p(r#"{"op":"stream_chunk","request_id":"a","chunk":"c"}"#),
            Incoming::StreamChunk {
                request_id: "a".into(),
                chunk: "c".into()
            }
        );
        assert_eq!(
            p(r#"{"op":"error","request_id":"a","code":"TIMEOUT","message":"late"}"#),
            Incoming::Error {
                request_id: Some("a".into()),
                code: "TIMEOUT".into(),
                message: "late".into()
            }
        );
        assert_eq!(
            p(r#"{"op":"error","request_id":"a","error":{"code":"TIMEOUT","message":"late"}}"#),
            Incoming::Error {
                request_id: Some("a".into()),
                code: "TIMEOUT".into(),
                message: "late".into()
            }
        );
        let Incoming::CallToolRes {
            request_id, outputs, ..
        } = p(
            r#"{"op":"call_tool_res","request_id":"a","outputs":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}"#,
        )
        else {
            panic!("not a result")
        };
        assert_eq!((request_id.as_str(), outputs_text(&outputs).as_str()), ("a", "x\ny"));
        assert_eq!(
            p(r#"{"op":"shiny_new_thing"}"#),
            Incoming::Unknown {
                op: "shiny_new_thing".into()
            }
        );
    }

    #[test]
    fn rejects_what_is_not_a_frame() {
        assert!(Incoming::parse("nope").is_err());
        assert!(Incoming::parse("[1]").is_err());
        assert!(Incoming::parse(r#"{"no":"op"}"#).is_err());
        assert!(Incoming::parse(r#"{"op":"progress","message":"orphan"}"#).is_err());
    }
}

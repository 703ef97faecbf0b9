//! Decoding of incoming JSON-RPC messages, shared by stdio and HTTP, so every kind of bad input gets the
//! specific JSON-RPC error the spec prescribes (-32700 parse error, -32600 invalid request, -32602
//! invalid params) with the request's id when it has one, instead of being dropped.

use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage};
use serde_json::{Value, json};

/// JSON-RPC error codes used here.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// What to do with one incoming message.
#[derive(Debug)]
pub enum Decoded {
    /// A well-formed message for the MCP service.
    Message(Box<ClientJsonRpcMessage>),
    /// A malformed notification: JSON-RPC forbids replying to notifications, so it is only logged.
    Ignore(String),
    /// Bad input that gets this error reply.
    Reject(Rejection),
}

/// A JSON-RPC error reply to bad input.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The request's id, or `null` when it could not be read.
    pub id: Value,
    pub code: i64,
    pub message: String,
}

impl Rejection {
    fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }

    /// The reply to a message larger than `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            Value::Null,
            INVALID_REQUEST,
            format!("Invalid Request: message exceeds the {limit}-byte limit (EXAI_MAX_REQUEST_BYTES)"),
        )
    }

    /// The JSON-RPC error response object.
    pub fn to_json(&self) -> Value {
        json!({ "jsonrpc": "2.0", "id": self.id, "error": { "code": self.code, "message": self.message } })
    }
}

/// Decodes one message (a stdio line or an HTTP body).
pub fn decode(bytes: &[u8]) -> Decoded {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let err = match serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        Ok(message) => return standard_method_check(message),
        Err(e) => e,
    };
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => return Decoded::Reject(Rejection::new(Value::Null, PARSE_ERROR, format!("Parse error: {e}"))),
    };
    let Value::Object(object) = &value else {
        let message = if value.is_array() {
            "Invalid Request: JSON-RPC batches are not supported (MCP removed them in 2025-06-18); send one message at a time"
        } else {
            "Invalid Request: a JSON-RPC message must be a JSON object"
        };
        return Decoded::Reject(Rejection::new(Value::Null, INVALID_REQUEST, message));
    };
    let id = match object.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    let method = object.get("method").and_then(Value::as_str);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Decoded::Reject(Rejection::new(
            id,
            INVALID_REQUEST,
            "Invalid Request: `jsonrpc` must be \"2.0\"",
        ));
    }
    match (method, object.contains_key("id")) {
        (Some(method), false) => Decoded::Ignore(format!("malformed `{method}` notification: {err}")),
        (Some(method), true) if id.is_null() => Decoded::Reject(Rejection::new(
            id,
            INVALID_REQUEST,
            format!("Invalid Request: the id of `{method}` must be a string or an integer"),
        )),
        (Some(method), true) => Decoded::Reject(Rejection::new(
            id,
            INVALID_PARAMS,
            format!("Invalid params for `{method}`: {err}"),
        )),
        (None, _) => Decoded::Reject(Rejection::new(id, INVALID_REQUEST, format!("Invalid Request: {err}"))),
    }
}

/// Methods of both protocol eras. rmcp decodes one of these whose params do not fit its schema as a custom
/// request, which would then be answered "method not found"; exai answers -32602 instead. (Methods that
/// 2026-07-28 removed, such as `ping` or `logging/setLevel`, are left to rmcp, which answers per era.)
const STANDARD_METHODS: &[&str] = &[
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

fn standard_method_check(message: ClientJsonRpcMessage) -> Decoded {
    match &message {
        JsonRpcMessage::Request(r) => {
            if let ClientRequest::CustomRequest(custom) = &r.request
                && STANDARD_METHODS.contains(&custom.method.as_str())
            {
                let method = custom.method.as_str();
                let detail = match (method, &custom.params) {
                    (_, None) => "params are missing".to_owned(),
                    ("tools/call", Some(p)) => serde_json::from_value::<CallToolRequestParams>(p.clone())
                        .err()
                        .map_or_else(|| "params do not match the MCP schema".to_owned(), |e| e.to_string()),
                    _ => "params do not match the MCP schema".to_owned(),
                };
                let id = serde_json::to_value(&r.id).unwrap_or(Value::Null);
                return Decoded::Reject(Rejection::new(
                    id,
                    INVALID_PARAMS,
                    format!("Invalid params for `{method}`: {detail}"),
                ));
            }
        }
        JsonRpcMessage::Notification(n) => {
            if let ClientNotification::CustomNotification(custom) = &n.notification
                && STANDARD_METHODS.contains(&custom.method.as_str())
            {
                return Decoded::Ignore(format!("malformed `{}` notification", custom.method));
            }
        }
        _ => {}
    }
    Decoded::Message(Box::new(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(input: &str) -> Rejection {
        match decode(input.as_bytes()) {
            Decoded::Reject(r) => r,
            other => panic!("{input} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn valid_messages_pass_including_unknown_methods() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"no/such/method","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}",
        ] {
            assert!(matches!(decode(ok.as_bytes()), Decoded::Message(_)), "{ok}");
        }
    }

    #[test]
    fn each_bad_input_gets_its_specific_error() {
        let r = rejection("{garbage");
        assert_eq!((r.code, &r.id), (PARSE_ERROR, &Value::Null));
        assert!(r.message.starts_with("Parse error: "), "{}", r.message);

        assert_eq!(rejection("[1,2]").code, INVALID_REQUEST);
        assert!(rejection("[1,2]").message.contains("batches"));
        assert_eq!(rejection("42").code, INVALID_REQUEST);

        let r = rejection(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
        assert_eq!((r.code, r.id), (INVALID_REQUEST, json!(3)));

        let r = rejection(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":5}}"#);
        assert_eq!((r.code, r.id), (INVALID_PARAMS, json!(7)));
        assert!(
            r.message.contains("tools/call") && r.message.contains("invalid type"),
            "{}",
            r.message
        );

        let r = rejection(r#"{"jsonrpc":"2.0","id":"q","method":"tools/call"}"#);
        assert_eq!((r.code, r.id), (INVALID_PARAMS, json!("q")));

        let r = rejection(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#);
        assert_eq!((r.code, r.id), (INVALID_REQUEST, Value::Null));
    }

    #[test]
    fn malformed_notifications_get_no_reply() {
        let d = decode(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":"x"}}"#);
        assert!(matches!(d, Decoded::Ignore(_)), "{d:?}");
    }

    #[test]
    fn rejection_serializes_as_a_json_rpc_error() {
        let v = Rejection::too_large(10).to_json();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["code"], INVALID_REQUEST);
        assert!(v["error"]["message"].as_str().unwrap().contains("10-byte limit"));
    }
}

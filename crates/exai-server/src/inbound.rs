//! Decoding of incoming JSON-RPC messages, shared by stdio, HTTP and MCP over the WebSocket, so every kind of bad
//! input gets the specific JSON-RPC error the spec prescribes (-32700 parse error, -32600 invalid request, -32602
//! invalid params) with the request's id when it has one, instead of being dropped. The shape limits of
//! [`json_limits`] are checked before any parsing.

use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage};
use serde_json::{Value, json};

use crate::json_limits::{self, Exceeded, TopField};

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

    /// The reply to a body that did not arrive within `secs` seconds of its headers.
    pub fn slow_body(secs: u64) -> Self {
        Self::new(
            Value::Null,
            INVALID_REQUEST,
            format!(
                "Invalid Request: the request body did not arrive within {secs} s of its headers \
                 (EXAI_BODY_READ_TIMEOUT_SECS)"
            ),
        )
    }

    /// The JSON-RPC error response object.
    pub fn to_json(&self) -> Value {
        json!({ "jsonrpc": "2.0", "id": self.id, "error": { "code": self.code, "message": self.message } })
    }
}

/// Decodes one message (a stdio line, an HTTP body or a WebSocket frame).
pub fn decode(bytes: &[u8]) -> Decoded {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(exceeded) = json_limits::check(bytes, json_limits::JSON_RPC_ENVELOPE) {
        return over_limit(bytes, exceeded);
    }
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
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Decoded::Reject(Rejection::new(
            id,
            INVALID_REQUEST,
            "Invalid Request: `jsonrpc` must be \"2.0\"",
        ));
    }
    let method = match object.get("method") {
        None => None,
        Some(Value::String(method)) => Some(method.as_str()),
        Some(_) => {
            return Decoded::Reject(Rejection::new(
                id,
                INVALID_REQUEST,
                "Invalid Request: `method` must be a string",
            ));
        }
    };
    match (method, object.get("id")) {
        (Some(method), None) => return Decoded::Ignore(format!("malformed `{method}` notification: {err}")),
        (Some(method), Some(sent)) if !usable_id(sent) => {
            let message =
                format!("Invalid Request: the id of `{method}` must be a string or an integer from -2^63 to 2^63-1");
            return Decoded::Reject(Rejection::new(id, INVALID_REQUEST, message));
        }
        _ => {}
    }
    if let Some(member) = duplicate_member(bytes) {
        let message = format!("Invalid Request: the member `{member}` appears more than once");
        return Decoded::Reject(Rejection::new(id, INVALID_REQUEST, message));
    }
    let rejection = match method {
        Some(method) => Rejection::new(id, INVALID_PARAMS, format!("Invalid params for `{method}`: {err}")),
        None => Rejection::new(id, INVALID_REQUEST, format!("Invalid Request: {err}")),
    };
    Decoded::Reject(rejection)
}

/// Whether rmcp reads `id` as a request id: a string, or an integer that fits an `i64` (`1.0` counts as 1).
fn usable_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => {
            n.is_i64()
                || n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
        }
        _ => false,
    }
}

/// The first member of the outermost object that appears twice (serde_json keeps the last silently, rmcp
/// refuses the message), so the reply can name it.
fn duplicate_member(bytes: &[u8]) -> Option<String> {
    struct Members(Option<String>);
    impl<'de> serde::Deserialize<'de> for Members {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(Members(None))
        }
    }
    impl<'de> serde::de::Visitor<'de> for Members {
        type Value = Members;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut duplicate = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if !seen.insert(key.clone()) && duplicate.is_none() {
                    duplicate = Some(key);
                }
            }
            Ok(Members(duplicate))
        }
    }
    serde_json::from_slice::<Members>(bytes).ok()?.0
}

/// The answer to a message past a shape limit, which is never parsed: -32602 naming the limit with the request's
/// id (-32600 when there is no method), or nothing for a notification.
fn over_limit(bytes: &[u8], exceeded: Exceeded) -> Decoded {
    let method = json_limits::top_field(bytes, "method");
    let id = match json_limits::top_field(bytes, "id") {
        TopField::Absent if matches!(method, TopField::Scalar(Value::String(_))) => {
            return Decoded::Ignore(format!("notification {exceeded}"));
        }
        TopField::Scalar(id) => id,
        TopField::Absent | TopField::Other => Value::Null,
    };
    let rejection = match method {
        TopField::Scalar(Value::String(method)) => {
            Rejection::new(id, INVALID_PARAMS, format!("Invalid params for `{method}`: {exceeded}"))
        }
        TopField::Absent | TopField::Scalar(_) | TopField::Other => {
            Rejection::new(id, INVALID_REQUEST, format!("Invalid Request: {exceeded}"))
        }
    };
    Decoded::Reject(rejection)
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
pub(crate) mod fuzz;

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

        let r = rejection(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#);
        assert_eq!((r.code, r.id), (INVALID_REQUEST, json!(1.5)));
        assert!(r.message.contains("must be a string or an integer"), "{}", r.message);

        let r = rejection(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#);
        assert_eq!((r.code, r.id), (INVALID_REQUEST, json!(2)));
        assert!(r.message.contains("`id` appears more than once"), "{}", r.message);

        let r = rejection(r#"{"jsonrpc":"2.0","id":4,"method":5}"#);
        assert_eq!(
            (r.code, &*r.message),
            (INVALID_REQUEST, "Invalid Request: `method` must be a string")
        );
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

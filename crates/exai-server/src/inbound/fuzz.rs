//! Fuzz target for [`decode`] (stdio lines, HTTP bodies and MCP WebSocket frames): JSON-RPC shapes with fields of
//! every type, duplicated keys, odd numbers, deep nesting and byte-level damage, plus the seed corpus.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::fuzz_support::{self, config, json_text, key, mutate, mutation, nested, number, object, string_lit};
use crate::json_limits::{MAX_ARGUMENT_DEPTH, MAX_ITEMS};

/// What every input's decoding must satisfy, whatever the bytes.
pub(crate) fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match decode(bytes) {
        Decoded::Reject(r) => {
            prop_assert!(
                [PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS].contains(&r.code),
                "code {}",
                r.code
            );
            prop_assert!(
                matches!(r.id, Value::Null | Value::String(_) | Value::Number(_)),
                "id {}",
                r.id
            );
            prop_assert!(r.code != PARSE_ERROR || r.id.is_null(), "parse error with id {}", r.id);
            prop_assert!(r.message.len() > 12, "message {:?}", r.message);
            let reply: Value = serde_json::from_str(&r.to_json().to_string()).unwrap();
            prop_assert_eq!(&reply["jsonrpc"], "2.0");
            if let Some(id) = scalar_id(bytes) {
                prop_assert!(same_id(&r.id, &id), "request id {id} answered with id {}", r.id);
            }
        }
        Decoded::Message(message) => {
            // Well-formed messages re-encode to JSON that decodes to the same message.
            let encoded = serde_json::to_vec(&message).unwrap();
            match decode(&encoded) {
                Decoded::Message(again) => {
                    let (again, first) = (
                        serde_json::to_value(&again).unwrap(),
                        serde_json::to_value(&message).unwrap(),
                    );
                    prop_assert!(same_json(&again, &first), "{again} != {first}");
                }
                other => prop_assert!(false, "re-encoded message decoded as {other:?}"),
            }
            if let Some(id) = scalar_id(bytes) {
                let decoded = serde_json::to_value(&message).unwrap();
                prop_assert!(same_id(&decoded["id"], &id), "request id {id} became {}", decoded["id"]);
            }
        }
        Decoded::Ignore(why) => {
            // Only notifications go unanswered: a message with a usable id always gets a reply.
            prop_assert!(scalar_id(bytes).is_none(), "message with an id ignored: {why}");
        }
    }
    Ok(())
}

/// The id of an input that serde_json reads as an object whose `id` is a string or an integer.
fn scalar_id(bytes: &[u8]) -> Option<Value> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).ok()?;
    match value.get("id")? {
        id @ Value::String(_) => Some(id.clone()),
        id @ Value::Number(n) if n.is_i64() => Some(id.clone()),
        _ => None,
    }
}

/// Equal JSON, numbers within a rounding error: serde_json (without `float_roundtrip`) may read a float it wrote
/// back one unit in the last place away.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Ids are the same string, or the same number (`1.0` is answered as `1`).
fn same_id(answered: &Value, sent: &Value) -> bool {
    answered == sent || (answered.is_number() && answered.as_f64() == sent.as_f64())
}

const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/read",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "no/such/method",
];

/// JSON-RPC messages: each member present or not, of the right type or not, in any order, sometimes twice.
pub(crate) fn message() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        3 => number(),
        3 => string_lit(),
        1 => json_text(2),
    ];
    let jsonrpc = prop_oneof![
        6 => Just("\"2.0\"".to_owned()),
        1 => prop::sample::select(vec!["\"1.0\"", "2.0", "null", "\"2.0 \""]).prop_map(str::to_owned),
    ];
    let method = prop_oneof![
        6 => prop::sample::select(METHODS).prop_map(|m| format!("\"{m}\"")),
        1 => json_text(1),
    ];
    let params = prop_oneof![
        3 => tools_call_params(),
        2 => json_text(4),
    ];
    let member = |name: &'static str, value: BoxedStrategy<String>| {
        prop::option::weighted(0.85, value).prop_map(move |v| v.map(|v| (format!("\"{name}\""), v)))
    };
    (
        member("jsonrpc", jsonrpc.boxed()),
        member("id", id.boxed()),
        member("method", method.boxed()),
        member("params", params.boxed()),
        prop::collection::vec((key(), json_text(2)), 0..3),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(jsonrpc, id, method, params, extra, rotate)| {
            let mut fields: Vec<(String, String)> = [jsonrpc, id, method, params].into_iter().flatten().collect();
            fields.extend(extra);
            if !fields.is_empty() {
                let k = rotate.index(fields.len());
                fields.rotate_left(k);
            }
            object(&fields)
        })
}

/// `tools/call` params: a name and arguments of any shape.
fn tools_call_params() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        3 => prop::sample::select(vec!["\"version\"", "\"chat\"", "\"nope\""]).prop_map(str::to_owned),
        1 => json_text(1),
    ];
    let arguments = prop_oneof![
        3 => prop::collection::vec((key(), json_text(3)), 0..4).prop_map(|f| object(&f)),
        1 => json_text(2),
    ];
    (name, arguments).prop_map(|(name, arguments)| format!(r#"{{"name":{name},"arguments":{arguments}}}"#))
}

/// A valid `tools/call` whose arguments nest exactly `depth` levels (the `arguments` object is level 1).
fn call_nested(id: i64, depth: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"version","arguments":{{"deep":{}}}}}}}"#,
        nested(depth - 1)
    )
}

proptest! {
    #![proptest_config(config(768))]

    #[test]
    fn any_message_shape(text in message()) {
        check(text.as_bytes())?;
    }

    #[test]
    fn damaged_messages(text in message(), mutations in prop::collection::vec(mutation(), 1..4)) {
        check(&mutate(&text, &mutations))?;
    }

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        check(&bytes)?;
    }

    /// Arguments up to the limit are accepted; one level more is refused with the request's id and the limit named.
    #[test]
    fn nesting_limit_is_exact(depth in 1..=MAX_ARGUMENT_DEPTH + 80, id in any::<i64>()) {
        let text = call_nested(id, depth);
        check(text.as_bytes())?;
        match decode(text.as_bytes()) {
            Decoded::Message(_) => prop_assert!(depth <= MAX_ARGUMENT_DEPTH, "depth {depth} accepted"),
            Decoded::Reject(r) => {
                prop_assert!(depth > MAX_ARGUMENT_DEPTH, "depth {depth} refused: {}", r.message);
                prop_assert_eq!((r.code, r.id), (INVALID_PARAMS, Value::from(id)));
                let limit = format!("at most {MAX_ARGUMENT_DEPTH} levels");
                prop_assert!(r.message.contains(&limit), "{}", r.message);
            }
            Decoded::Ignore(why) => prop_assert!(false, "ignored: {why}"),
        }
    }
}

#[test]
fn corpus_replays() {
    for (path, bytes) in fuzz_support::corpus("jsonrpc") {
        if let Err(e) = check(&bytes) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn nesting_far_past_serde_json_limit_is_refused_by_name_not_as_a_parse_error() {
    for depth in [MAX_ARGUMENT_DEPTH + 1, 126, 127, 128, 129, 100_000] {
        let Decoded::Reject(r) = decode(call_nested(9, depth).as_bytes()) else {
            panic!("depth {depth} not refused");
        };
        assert_eq!((r.code, r.id), (INVALID_PARAMS, Value::from(9)), "depth {depth}");
        assert!(r.message.contains("nested too deep"), "{}", r.message);
    }
    let notification = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{}}}"#,
        nested(500)
    );
    assert!(matches!(decode(notification.as_bytes()), Decoded::Ignore(_)));
    let Decoded::Reject(r) = decode(nested(500).as_bytes()) else {
        panic!("deep array not refused")
    };
    assert_eq!((r.code, r.id), (INVALID_REQUEST, Value::Null));
}

#[test]
fn a_message_of_too_many_items_is_refused_by_name_before_parsing() {
    let call = |items: usize| {
        let list = vec!["[]"; items].join(",");
        format!(
            r#"{{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{{"name":"version","arguments":{{"a":[{list}]}}}}}}"#
        )
    };
    // The envelope and the arguments object take a few items of the budget.
    assert!(matches!(decode(call(MAX_ITEMS - 10).as_bytes()), Decoded::Message(_)));
    let Decoded::Reject(r) = decode(call(MAX_ITEMS).as_bytes()) else {
        panic!("too many items not refused")
    };
    assert_eq!((r.code, r.id), (INVALID_PARAMS, Value::from("big")));
    assert!(
        r.message.contains(&format!("at most {MAX_ITEMS} items")),
        "{}",
        r.message
    );
}

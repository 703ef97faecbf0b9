//! Fuzz target for the EX-AI daemon protocol's frame parser ([`parse`]): every op with fields of every type, frames
//! that round-trip, byte-level damage, deep nesting, plus the seed corpus.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::fuzz_support::{self, config, json_text, key, mutate, mutation, nested, number, object, string_lit};
use crate::json_limits::MAX_ARGUMENT_DEPTH;

/// What parsing any text must satisfy.
fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(Inbound::CallTool { request_id, .. } | Inbound::Cancel { request_id }) => {
            prop_assert!(
                request_id.is_string() || request_id.is_number(),
                "request_id {request_id}"
            );
        }
        Ok(_) => {}
        Err(bad) => {
            prop_assert!(
                ["VALIDATION_ERROR", "UNKNOWN_OP"].contains(&bad.code),
                "code {}",
                bad.code
            );
            prop_assert!(bad.message.len() > 12, "message {:?}", bad.message);
            // The reply the connection sends for it is a well-formed, connection-level `error` frame.
            let frame: Value = serde_json::from_str(&error(None, bad.code, &bad.message)).unwrap();
            prop_assert_eq!(&frame["op"], "error");
            prop_assert_eq!(&frame["request_id"], &Value::Null);
        }
    }
    Ok(())
}

/// The frame a client sends for `inbound` (what `parse` must give back).
fn encode(inbound: &Inbound) -> String {
    let frame = match inbound {
        Inbound::Hello { token, session_id } => json!({"op": "hello", "token": token, "session_id": session_id}),
        Inbound::ListTools { request_id } => json!({"op": "list_tools", "request_id": request_id}),
        Inbound::CallTool {
            request_id,
            name,
            arguments,
        } => json!({"op": "call_tool", "request_id": request_id, "name": name, "arguments": arguments}),
        Inbound::Cancel { request_id } => json!({"op": "cancel", "request_id": request_id}),
        Inbound::Ping { request_id } => json!({"op": "ping", "request_id": request_id}),
        Inbound::Pong => json!({"op": "pong"}),
    };
    frame.to_string()
}

fn request_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

/// JSON values that survive a text round trip exactly (no floats: serde_json may read one back an ulp away).
fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Frames a correct client could send.
fn inbound() -> impl Strategy<Value = Inbound> {
    let args = prop::collection::btree_map(any::<String>(), json_value(3), 0..4)
        .prop_map(|m| m.into_iter().collect::<serde_json::Map<String, Value>>());
    prop_oneof![
        (any::<Option<String>>(), any::<Option<String>>())
            .prop_map(|(token, session_id)| Inbound::Hello { token, session_id }),
        prop::option::of(request_id()).prop_map(|request_id| Inbound::ListTools { request_id }),
        (request_id(), any::<String>(), args).prop_map(|(request_id, name, arguments)| Inbound::CallTool {
            request_id,
            name,
            arguments
        }),
        request_id().prop_map(|request_id| Inbound::Cancel { request_id }),
        prop::option::of(request_id()).prop_map(|request_id| Inbound::Ping { request_id }),
        Just(Inbound::Pong),
    ]
}

/// Frames with each field present or not and of any type.
fn frame_text() -> impl Strategy<Value = String> {
    let op = prop_oneof![
        5 => prop::sample::select(vec!["hello", "list_tools", "call_tool", "cancel", "ping", "pong", "dance", ""])
            .prop_map(|op| format!("\"{op}\"")),
        1 => json_text(1),
    ];
    let any_of = |s: BoxedStrategy<String>| prop::option::weighted(0.7, s);
    (
        any_of(op.boxed()),
        any_of(prop_oneof![number(), string_lit(), json_text(1)].boxed()),
        any_of(prop_oneof![string_lit(), json_text(1)].boxed()),
        any_of(json_text(4).boxed()),
        any_of(prop_oneof![string_lit(), json_text(1)].boxed()),
        prop::collection::vec((key(), json_text(2)), 0..3),
    )
        .prop_map(|(op, id, name, arguments, token, extra)| {
            let mut fields: Vec<(String, String)> = Vec::new();
            for (k, v) in [
                ("op", op),
                ("request_id", id),
                ("name", name),
                ("arguments", arguments),
                ("token", token),
            ] {
                if let Some(v) = v {
                    fields.push((format!("\"{k}\""), v));
                }
            }
            fields.extend(extra);
            object(&fields)
        })
}

proptest! {
    #![proptest_config(config(768))]

    #[test]
    fn well_formed_frames_round_trip(inbound in inbound()) {
        prop_assert_eq!(parse(&encode(&inbound)), Ok(inbound));
    }

    #[test]
    fn any_frame_shape(text in frame_text()) {
        check(&text)?;
    }

    #[test]
    fn damaged_frames(text in frame_text(), mutations in prop::collection::vec(mutation(), 1..4)) {
        check(&String::from_utf8_lossy(&mutate(&text, &mutations)))?;
    }

    #[test]
    fn random_text(text in any::<String>()) {
        check(&text)?;
    }

    /// Arguments up to the limit are accepted; one level more is refused naming the limit.
    #[test]
    fn nesting_limit_is_exact(depth in 1..=MAX_ARGUMENT_DEPTH + 80) {
        let text = format!(r#"{{"op":"call_tool","request_id":1,"name":"version","arguments":{{"deep":{}}}}}"#, nested(depth - 1));
        match parse(&text) {
            Ok(_) => prop_assert!(depth <= MAX_ARGUMENT_DEPTH, "depth {depth} accepted"),
            Err(bad) => {
                prop_assert!(depth > MAX_ARGUMENT_DEPTH, "depth {depth} refused: {}", bad.message);
                let limit = format!("at most {MAX_ARGUMENT_DEPTH} levels");
                prop_assert!(bad.message.contains(&limit), "{}", bad.message);
            }
        }
    }
}

#[test]
fn corpus_replays() {
    for (path, bytes) in fuzz_support::corpus("ws_frames") {
        if let Err(e) = check(&String::from_utf8_lossy(&bytes)) {
            panic!("{}: {e}", path.display());
        }
    }
}

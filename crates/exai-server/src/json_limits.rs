//! The limits on one JSON message's shape, the same on every transport (stdio, HTTP, both WebSocket protocols): tool
//! arguments nest at most [`MAX_ARGUMENT_DEPTH`] levels and a message holds at most [`MAX_ITEMS`] items. One byte scan
//! checks both before any parser sees the message.
//!
//! Why limits of our own: serde_json stops at 128 levels of the whole message (the envelope included) with a bare
//! "recursion limit exceeded" parse error, and rmcp parses HTTP bodies again with that same limit. And parsing
//! multiplies memory: rmcp buffers a message before typing it, so a 32 MiB frame of empty arrays took 2 GB. An item
//! cap bounds that (100,000 items parse in about 20 MB) while leaving room for any real call, whose bulk is strings.

use serde_json::Value;

/// How deep tool arguments may nest: the `arguments` object itself is level 1, so `{"a":[1]}` is 2 levels deep.
pub const MAX_ARGUMENT_DEPTH: usize = 64;

/// How many items (array elements and object members, at any depth) one message may hold, envelope included.
pub const MAX_ITEMS: usize = 100_000;

/// Levels of a JSON-RPC `tools/call` above its `arguments`: the message object and `params`.
pub const JSON_RPC_ENVELOPE: usize = 2;

/// Levels of an EX-AI daemon `call_tool` frame above its `arguments`: the frame object.
pub const FRAME_ENVELOPE: usize = 1;

/// Which limit a message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Depth,
    Items,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exceeded::Depth => write!(
                f,
                "nested too deep; exai accepts tool arguments nested at most {MAX_ARGUMENT_DEPTH} levels deep \
                 (objects and arrays; the `arguments` object is level 1)"
            ),
            Exceeded::Items => write!(
                f,
                "too many items; exai accepts at most {MAX_ITEMS} items in one message (array elements and object \
                 members)"
            ),
        }
    }
}

/// Checks that `bytes` nest at most `MAX_ARGUMENT_DEPTH + envelope` levels of `[` / `{` outside strings and hold at
/// most [`MAX_ITEMS`] items. Stops at the first limit passed; does not validate the JSON otherwise (the parser does
/// that next).
pub fn check(bytes: &[u8], envelope: usize) -> Result<(), Exceeded> {
    let limit = MAX_ARGUMENT_DEPTH + envelope;
    let mut depth = 0usize;
    let mut items = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // Just after `[` / `{`: the next byte that is not whitespace starts the first item, unless it closes.
    let mut opened = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if opened && !b.is_ascii_whitespace() {
            opened = false;
            if b != b']' && b != b'}' {
                items += 1;
            }
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(Exceeded::Depth);
                }
                opened = true;
            }
            b',' => items += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if items > MAX_ITEMS {
            return Err(Exceeded::Items);
        }
    }
    Ok(())
}

/// A field of the outermost JSON object, as far as a message too deep to parse can be read.
#[derive(Debug, Clone, PartialEq)]
pub enum TopField {
    Absent,
    /// A string or a number.
    Scalar(Value),
    /// Present, but an object, an array, a literal or unreadable.
    Other,
}

/// Finds `key` among the outermost object's fields without parsing the nested values (the last one wins, as in
/// serde_json's `Value`). Used only for messages the parser must not see, to answer with the request's id.
pub fn top_field(bytes: &[u8], key: &str) -> TopField {
    let mut found = TopField::Absent;
    let mut depth = 0usize;
    let mut i = 0;
    // At depth 1: whether the next string is a key, and the key whose value comes next.
    let mut expect_key = false;
    let mut current_key_matches = false;
    let mut value_start: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                let end = string_end(bytes, i);
                if depth == 1 && expect_key {
                    current_key_matches = key_is(&bytes[i..end], key);
                    expect_key = false;
                }
                i = end;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_key = b == b'{';
                    if b == b'[' {
                        return TopField::Absent;
                    }
                }
            }
            b'}' | b']' | b',' => {
                if depth == 1 {
                    if let Some(start) = value_start.take() {
                        found = scalar(&bytes[start..i]);
                    }
                    expect_key = b == b',';
                    current_key_matches = false;
                }
                if b != b',' {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return found;
                    }
                }
            }
            b':' if depth == 1 && current_key_matches => value_start = Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    found
}

/// The index just past the string starting with the quote at `start` (or the end of `bytes`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start + 1) {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => return i + 1,
            _ => {}
        }
    }
    bytes.len()
}

/// Whether the quoted key `raw` (escapes allowed) spells `key`.
fn key_is(raw: &[u8], key: &str) -> bool {
    if !raw.contains(&b'\\') {
        return raw.len() == key.len() + 2 && &raw[1..raw.len() - 1] == key.as_bytes();
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|k| k == key)
}

fn scalar(raw: &[u8]) -> TopField {
    match serde_json::from_slice::<Value>(raw.trim_ascii()) {
        Ok(v @ (Value::String(_) | Value::Number(_))) => TopField::Scalar(v),
        _ => TopField::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz_support::{config, json_text, key, object};
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #![proptest_config(config(512))]

        /// On any object serde_json reads, the scan finds the same top-level `id` (the last one, when repeated).
        #[test]
        fn top_field_agrees_with_serde_json(fields in prop::collection::vec((key(), json_text(3)), 0..6)) {
            let text = object(&fields);
            if let Ok(Value::Object(parsed)) = serde_json::from_str::<Value>(&text) {
                let expected = match parsed.get("id") {
                    None => TopField::Absent,
                    Some(v @ (Value::String(_) | Value::Number(_))) => TopField::Scalar(v.clone()),
                    Some(_) => TopField::Other,
                };
                prop_assert_eq!(top_field(text.as_bytes(), "id"), expected, "{}", text);
            }
        }
    }

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        let at_limit = format!(r#"{{"arguments":{{"a":{}}}}}"#, nested(MAX_ARGUMENT_DEPTH - 1));
        assert_eq!(check(at_limit.as_bytes(), FRAME_ENVELOPE), Ok(()));
        let over = format!(r#"{{"arguments":{{"a":{}}}}}"#, nested(MAX_ARGUMENT_DEPTH));
        assert_eq!(check(over.as_bytes(), FRAME_ENVELOPE), Err(Exceeded::Depth));
        let in_string = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert_eq!(check(in_string.as_bytes(), 0), Ok(()));
        assert_eq!(check(b"]]]]]]]]]]{}", 0), Ok(()));
    }

    #[test]
    fn items_are_array_elements_and_object_members() {
        let array = |n: usize| format!("[{}]", vec!["1"; n].join(","));
        assert_eq!(check(array(MAX_ITEMS).as_bytes(), 0), Ok(()));
        assert_eq!(check(array(MAX_ITEMS + 1).as_bytes(), 0), Err(Exceeded::Items));
        let members: Vec<String> = (0..MAX_ITEMS).map(|i| format!("\"k{i}\":0")).collect();
        assert_eq!(check(format!("{{{}}}", members.join(",")).as_bytes(), 0), Ok(()));
        let empties = |n: usize| format!("[{}]", vec!["[ ]"; n].join(","));
        assert_eq!(check(empties(MAX_ITEMS).as_bytes(), 0), Ok(()));
        assert_eq!(check(empties(MAX_ITEMS + 1).as_bytes(), 0), Err(Exceeded::Items));
        let nested_objects = format!("{}{}", r#"{"a":"#.repeat(40), "}".repeat(40));
        assert_eq!(check(nested_objects.as_bytes(), 0), Ok(()));
        let in_strings = format!("[\"{}\"]", ",".repeat(MAX_ITEMS * 2));
        assert_eq!(check(in_strings.as_bytes(), 0), Ok(()));
    }

    #[test]
    fn top_fields_are_found_past_deep_values_and_escapes() {
        let deep = nested(300);
        let msg = format!(r#"{{"params":{{"x":{deep}}},"m\u0065thod":"tools/call","id":7}}"#);
        assert_eq!(top_field(msg.as_bytes(), "id"), TopField::Scalar(json!(7)));
        assert_eq!(
            top_field(msg.as_bytes(), "method"),
            TopField::Scalar(json!("tools/call"))
        );
        assert_eq!(top_field(msg.as_bytes(), "x"), TopField::Absent);
        assert_eq!(top_field(br#"{"id":{"a":1}}"#, "id"), TopField::Other);
        assert_eq!(
            top_field(br#"{"id" : "a,}" , "id": -2.5e3 }"#, "id"),
            TopField::Scalar(json!(-2500.0))
        );
        assert_eq!(top_field(br#"{"a":"id","b":["id",1]}"#, "id"), TopField::Absent);
        assert_eq!(top_field(br#"[{"id":1}]"#, "id"), TopField::Absent);
        assert_eq!(top_field(br#"{"id":1"#, "id"), TopField::Absent);
        assert_eq!(top_field(b"\"", "id"), TopField::Absent);
    }
}

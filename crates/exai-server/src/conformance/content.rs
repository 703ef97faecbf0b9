//! Fixture tools returning fixed rich content: image, audio, an embedded resource, mixed content, and a
//! tool whose input schema uses JSON Schema 2020-12 keywords that must survive into `tools/list`.

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, Tool};
use serde_json::{Value, json};

use super::{no_args, tool, tool_result};

/// A 1x1 PNG.
pub const PNG_1X1: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
pub const WAV_MIN: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

const JSON_SCHEMA_TOOL: &str = "json_schema_2020_12_tool";

pub fn tools() -> Vec<Tool> {
    vec![
        tool(
            "test_image_content",
            "Conformance fixture: returns a 1x1 PNG image.",
            no_args(),
        ),
        tool(
            "test_audio_content",
            "Conformance fixture: returns a tiny WAV clip.",
            no_args(),
        ),
        tool(
            "test_embedded_resource",
            "Conformance fixture: returns an embedded text resource.",
            no_args(),
        ),
        tool(
            "test_multiple_content_types",
            "Conformance fixture: returns text, an image and an embedded resource.",
            no_args(),
        ),
        tool(
            JSON_SCHEMA_TOOL,
            "Conformance fixture: an input schema using JSON Schema 2020-12 keywords.",
            json_schema_2020_12(),
        ),
    ]
}

pub fn call(name: &str) -> Option<Result<CallToolResponse, ErrorData>> {
    let content = match name {
        "test_image_content" => json!([{"type": "image", "data": PNG_1X1, "mimeType": "image/png"}]),
        "test_audio_content" => json!([{"type": "audio", "data": WAV_MIN, "mimeType": "audio/wav"}]),
        "test_embedded_resource" => json!([{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content."}}]),
        "test_multiple_content_types" => json!([
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": PNG_1X1, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json",
                                              "text": "{\"test\":\"data\",\"value\":123}"}}
        ]),
        JSON_SCHEMA_TOOL => json!([{"type": "text", "text": "JSON Schema 2020-12 tool called"}]),
        _ => return None,
    };
    Some(tool_result(content))
}

fn json_schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                              "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                       "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                       "phone": {"type": "string"}, "email": {"type": "string"}},
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_content_tool_builds_its_result() {
        for t in tools() {
            let result = call(&t.name).expect("served here").expect("fixture parses");
            let CallToolResponse::Complete(result) = result else {
                panic!("{} is not complete", t.name)
            };
            assert!(!result.content.is_empty(), "{}", t.name);
        }
        let mixed = serde_json::to_value(match call("test_multiple_content_types").unwrap().unwrap() {
            CallToolResponse::Complete(r) => r,
            _ => unreachable!(),
        })
        .unwrap();
        let types: Vec<_> = mixed["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].clone())
            .collect();
        assert_eq!(types, [json!("text"), json!("image"), json!("resource")]);
    }

    #[test]
    fn json_schema_keywords_survive_into_the_tool_definition() {
        let t = tools().into_iter().find(|t| t.name == JSON_SCHEMA_TOOL).unwrap();
        let listed = serde_json::to_value(&t).unwrap();
        assert_eq!(listed["inputSchema"], json_schema_2020_12());
    }
}

//! exai tool specs as MCP `Tool` definitions: the exact objects `tools/list` returns and `exai tools` prints.

use exai_core::tools::{Registry, ToolSpec};
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::Value;

/// The MCP definition of one tool.
pub fn definition(spec: &ToolSpec) -> Tool {
    let h = spec.hints;
    let annotations = ToolAnnotations::with_title(spec.title)
        .read_only(h.read_only)
        .destructive(h.destructive)
        .idempotent(h.idempotent)
        .open_world(h.open_world);
    let mut tool = Tool::new_with_raw(spec.name, Some(spec.description.into()), spec.input_schema.clone())
        .with_title(spec.title)
        .with_annotations(annotations);
    if let Some(output) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(without_descriptions(output)));
    }
    tool
}

/// Every enabled tool's definition, in registry order.
pub fn definitions(registry: &Registry) -> Vec<Tool> {
    registry.iter().map(|t| definition(t.spec())).collect()
}

/// An output schema without its `description` keywords: a model reads them on every turn but never needs them to
/// call the tool (input schemas keep theirs; the README documents every result field). Property *names* are kept,
/// even one called `description`.
fn without_descriptions(schema: &JsonObject) -> JsonObject {
    fn schema_map(map: &JsonObject) -> JsonObject {
        map.iter()
            .filter(|(k, _)| *k != "description")
            .map(|(k, v)| (k.clone(), keyword(k, v)))
            .collect()
    }
    fn keyword(name: &str, value: &Value) -> Value {
        let sub = |v: &Value| match v {
            Value::Object(m) => Value::Object(schema_map(m)),
            other => other.clone(),
        };
        match (name, value) {
            ("properties" | "$defs" | "definitions" | "patternProperties", Value::Object(named)) => {
                Value::Object(named.iter().map(|(k, v)| (k.clone(), sub(v))).collect())
            }
            ("items" | "additionalProperties" | "not" | "if" | "then" | "else", v) => sub(v),
            ("anyOf" | "oneOf" | "allOf" | "prefixItems", Value::Array(items)) => {
                Value::Array(items.iter().map(sub).collect())
            }
            (_, other) => other.clone(),
        }
    }
    schema_map(schema)
}

#[cfg(test)]
mod tests {
    use super::without_descriptions;
    use serde_json::json;

    #[test]
    fn strips_description_keywords_but_keeps_a_property_named_description() {
        let schema = json!({
            "type": "object", "description": "top",
            "properties": {
                "description": {"type": "string", "description": "a field called description"},
                "items": {"type": "array", "items": {"$ref": "#/$defs/X", "description": "d"}}
            },
            "$defs": {"X": {"type": "object", "description": "x", "properties": {"a": {"anyOf": [{"type": "null", "description": "n"}]}}}}
        });
        let out = serde_json::Value::Object(without_descriptions(schema.as_object().unwrap()));
        assert_eq!(
            out,
            json!({
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "items": {"type": "array", "items": {"$ref": "#/$defs/X"}}
                },
                "$defs": {"X": {"type": "object", "properties": {"a": {"anyOf": [{"type": "null"}]}}}}
            })
        );
    }
}

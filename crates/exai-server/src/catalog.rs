//! exai tool specs as MCP `Tool` definitions: the exact objects `tools/list` returns and `exai tools` prints.

use exai_core::tools::{Registry, ToolSpec};
use rmcp::model::{Tool, ToolAnnotations};

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
        tool = tool.with_raw_output_schema(output.clone());
    }
    tool
}

/// Every enabled tool's definition, in registry order.
pub fn definitions(registry: &Registry) -> Vec<Tool> {
    registry.iter().map(|t| definition(t.spec())).collect()
}

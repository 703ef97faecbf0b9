//! Fixture tools with the fixed names the MCP conformance suite calls (`test_simple_text`, ...).
//! Registered only by `--conformance-fixtures`; a normal server never lists them.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::handler::server::common::schema_for_empty_input;

use super::{Hints, JsonObject, Profile, Registry, Tier, Tool, ToolContext, ToolOutput, ToolSpec};
use crate::error::ToolError;

type Body = fn(ToolContext, JsonObject) -> BoxFuture<'static, Result<ToolOutput, ToolError>>;

/// A fixture: a spec and a plain function body.
struct Fixture {
    spec: ToolSpec,
    body: Body,
}

impl Tool for Fixture {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn call(&self, ctx: ToolContext, args: JsonObject) -> BoxFuture<'static, Result<ToolOutput, ToolError>> {
        (self.body)(ctx, args)
    }
}

fn fixture(name: &'static str, description: &'static str, body: Body) -> Arc<dyn Tool> {
    Arc::new(Fixture {
        spec: ToolSpec {
            name,
            title: name,
            description,
            tier: Tier::Tier1,
            profile: Profile::Full,
            hints: Hints::default(),
            input_schema: schema_for_empty_input(),
            output_schema: None,
        },
        body,
    })
}

fn text(text: &str) -> ToolOutput {
    ToolOutput {
        text: text.to_owned(),
        structured: None,
        is_error: false,
    }
}

/// The fixture every `--conformance-fixtures` registry holds and no normal one can (fixtures are not in
/// the user-facing catalogue, so `tools.enabled` cannot name them).
const MARKER: &str = "test_simple_text";

/// Whether `registry` was built with the conformance fixtures.
pub fn registered(registry: &Registry) -> bool {
    registry.get(MARKER).is_some()
}

/// The fixture tools, in listing order.
pub fn catalog() -> Vec<Arc<dyn Tool>> {
    vec![
        fixture(
            "test_simple_text",
            "Conformance fixture: returns a fixed text.",
            |_, _| async { Ok(text("This is a simple text response for testing.")) }.boxed(),
        ),
        fixture(
            "test_error_handling",
            "Conformance fixture: always returns a tool error.",
            |_, _| {
                async {
                    Ok(ToolOutput {
                        is_error: true,
                        ..text("This tool intentionally returns an error for testing")
                    })
                }
                .boxed()
            },
        ),
        fixture(
            "test_tool_with_progress",
            "Conformance fixture: reports progress 0, 50, 100.",
            |ctx, _| {
                async move {
                    for step in [0.0, 50.0, 100.0] {
                        ctx.progress
                            .report(step, Some(100.0), Some(format!("Completed step {step}")))
                            .await;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Ok(text("Progress test completed"))
                }
                .boxed()
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolSelection;

    #[test]
    fn registered_only_when_selected_with_fixtures() {
        let selection = ToolSelection {
            profile: Profile::Full,
            enabled: vec![MARKER.to_owned()],
            disabled: vec![],
        };
        assert!(
            !registered(&Registry::select(&selection, false)),
            "tools.enabled cannot turn fixtures on"
        );
        assert!(registered(&Registry::select(&selection, true)));
    }
}

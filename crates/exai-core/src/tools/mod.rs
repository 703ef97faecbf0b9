//! Tools: the [`Tool`] trait the server dispatches on, the typed [`TypedTool`] trait tool modules implement,
//! and the [`Registry`]. Adding a tool = one module here + one line in `registry.rs` + one test.
//!
//! - `spec`: name, title, description, tier, profile and annotations of a tool.
//! - `context`: what a running call gets: the app, a progress sink, a cancellation token.
//! - `typed`: the adapter from a typed tool (serde input/output) to the dynamic [`Tool`].
//! - `registry`: the catalogue of every tool and the selection from `tools.*` config.
//! - `version`, `status`, `health`, `listmodels`: the tier-1 tools.
//! - `chat`, `challenge`: ask another model; make the caller re-examine a claim.
//! - `thinkdeep`, `debug`, `analyze`, `codereview`, `planner`, `secaudit`, `testgen`, `refactor`, `docgen`,
//!   `tracer`, `precommit`, `consensus`: workflow tools, thin definitions on `crate::workflow`.
//! - `model_call`: one model call as every model tool makes it (streaming progress, heartbeats, [`model_call::Answer`]).
//! - `fixtures`: tools the MCP conformance suite calls; registered only with `--conformance-fixtures`.

mod analyze;
mod challenge;
pub(crate) mod chat;
mod codereview;
mod consensus;
mod context;
mod debug;
mod docgen;
pub mod fixtures;
pub mod health;
mod listmodels;
pub mod model_call;
mod planner;
mod precommit;
mod refactor;
pub mod registry;
mod secaudit;
mod spec;
mod status;
mod testgen;
mod thinkdeep;
mod tracer;
mod typed;
mod version;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

pub use context::{CallUsage, Progress, ProgressSink, ToolContext, UsedModel};
pub use registry::Registry;
pub use spec::{Hints, Profile, Tier, ToolSpec};
pub use typed::{Typed, TypedTool};

use crate::error::ToolError;

/// A JSON object: tool arguments and structured results.
pub type JsonObject = Map<String, Value>;

/// What a successful call returns: text for the model to read and, for structured tools, the same data
/// as `structuredContent` matching the tool's output schema.
#[derive(Debug, Clone, Default)]
pub struct ToolOutput {
    pub text: String,
    pub structured: Option<Value>,
    /// The tool ran but reports a failure the model should read (`isError: true`).
    pub is_error: bool,
}

/// A tool as the server sees it.
pub trait Tool: Send + Sync + 'static {
    fn spec(&self) -> &ToolSpec;
    fn call(&self, ctx: ToolContext, args: JsonObject) -> BoxFuture<'static, Result<ToolOutput, ToolError>>;
}

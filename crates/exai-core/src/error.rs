//! What a tool call can fail with, named for the condition. No wire codes here: the server's
//! `rescue` module alone decides which become JSON-RPC errors and which become tool errors.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The name matches no enabled tool.
    #[error("unknown tool `{name}`; available tools: {available}")]
    UnknownTool { name: String, available: String },
    /// The arguments do not match the tool's input schema.
    #[error("invalid arguments for `{tool}`: {message}")]
    InvalidArguments { tool: String, message: String },
    /// The call's deadline passed before the tool finished; `spent` says where the time went.
    #[error("`{tool}` timed out after {} ms ({spent})", .after.as_millis())]
    Timeout {
        tool: String,
        after: Duration,
        spent: String,
    },
    /// The caller cancelled the call.
    #[error("`{tool}` was cancelled by the caller")]
    Cancelled { tool: String },
    /// A dependency (database, provider) is not available right now.
    #[error("{0}")]
    Unavailable(String),
    /// The model provider failed (after any retries); says which provider and why.
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
    /// Every model tried failed; `attempts` says what happened to each.
    #[error("{last} (attempts: {attempts})")]
    Exhausted { last: Box<ToolError>, attempts: String },
    /// A concurrency limit is full.
    #[error(transparent)]
    OverCapacity(#[from] crate::resilience::limits::OverCapacity),
    /// A fleet-wide limit could not be checked (Redis down) and `redis.on_failure` is `closed`.
    #[error(transparent)]
    FleetUnavailable(#[from] crate::resilience::fleet::FleetUnavailable),
    /// The model's circuit is open.
    #[error(transparent)]
    CircuitOpen(#[from] crate::resilience::breaker::BreakerOpen),
    /// A bug or an unexpected failure inside exai.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::resilience::limits::LimitError> for ToolError {
    fn from(e: crate::resilience::limits::LimitError) -> Self {
        match e {
            crate::resilience::limits::LimitError::OverCapacity(e) => ToolError::OverCapacity(e),
            crate::resilience::limits::LimitError::FleetUnavailable(e) => ToolError::FleetUnavailable(e),
        }
    }
}

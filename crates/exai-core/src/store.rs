//! The storage trait: one method per question the app asks of its database.
//! `exai-store` implements it on SQLite (the embedded default) and PostgreSQL (`EXAI_DATABASE_URL`).

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::provider::Role;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database at {location}: {message}")]
    Open { location: String, message: String },
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("database query failed: {0}")]
    Query(String),
}

/// What a health probe of the store found.
#[derive(Debug, Clone)]
pub struct StoreHealth {
    pub backend: &'static str,
    /// Where the data lives, with any password removed.
    pub location: String,
    /// The newest migration applied.
    pub schema_version: i64,
}

/// One stored turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub content: String,
    /// Absolute paths of files the turn referenced (re-read when the thread continues).
    pub files: Vec<String>,
    /// The tool that produced the turn (`chat`, `debug`, ...).
    pub tool: String,
    /// For assistant turns: the provider and model that answered.
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
}

/// A conversation thread, oldest turn first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// After this the thread can no longer be continued.
    pub expires_at_ms: i64,
    pub turns: Vec<Turn>,
}

/// One finished tool call, as the `tool_executions` table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// When the call finished, Unix milliseconds.
    pub at_ms: i64,
    pub tool: String,
    /// For model tools: who answered (the last model call's provider and model).
    pub provider: Option<String>,
    pub model: Option<String>,
    pub latency_ms: i64,
    /// `ok`, `tool_error`, `timeout`, `cancelled`, `over_capacity`, `circuit_open`, `invalid` or `error`.
    pub status: String,
    /// The error's kind when the call failed.
    pub error_kind: Option<String>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    /// The bounded session key (a connection, an HTTP session or a client name).
    pub session: Option<String>,
}

pub trait Store: Send + Sync + 'static {
    /// Round-trips a trivial query and reports the schema version.
    fn ping(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>>;
    /// Records that a server process started (kept for uptime history).
    fn record_start(&self, version: &str, transport: &str) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Creates the thread if it does not exist, appends `turns` in order, and moves its expiry to
    /// `expires_at_ms`; keeps at most `max_turns` (the oldest go first).
    fn append_turns<'a>(
        &'a self,
        conversation_id: &'a str,
        turns: &'a [Turn],
        expires_at_ms: i64,
        max_turns: usize,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The thread with all its turns, if it exists (expired or not: the caller decides).
    fn conversation<'a>(&'a self, conversation_id: &'a str) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>>;
    /// Deletes threads that expired before `now_ms`; returns how many.
    fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Appends one finished tool call to `tool_executions`.
    fn record_execution<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The newest `limit` executions, newest first.
    fn recent_executions(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Execution>, StoreError>>;
    /// Deletes executions recorded before `before_ms`; returns how many.
    fn purge_executions(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

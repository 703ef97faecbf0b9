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

/// One tool's latency baseline, as `exai baseline collect` stores it in `tool_baselines` (milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolBaseline {
    /// When it was measured, Unix milliseconds.
    pub at_ms: i64,
    pub tool: String,
    /// The MCP transport it was measured over (`http`, `ws`, `stdio`).
    pub transport: String,
    /// Calls made, and how many of them failed (failures are left out of the latencies).
    pub runs: i64,
    pub errors: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub mean_ms: f64,
}

/// One raised or cleared alert, as the `alerts` table keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: i64,
    /// When the rule was raised or cleared, Unix milliseconds.
    pub at_ms: i64,
    /// The rule's name (`error_rate`, `p95_latency`, `circuit_open`, `saturated`, `cpu`, `memory`).
    pub rule: String,
    /// `warning` or `critical`.
    pub severity: String,
    pub message: String,
    /// True when the rule was raised, false when it cleared.
    pub firing: bool,
}

/// One auditor observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub id: i64,
    /// When the auditor stored it, Unix milliseconds.
    pub at_ms: i64,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub category: String,
    pub message: String,
    pub evidence: String,
    pub acknowledged: bool,
    pub acknowledged_at_ms: Option<i64>,
}

/// One record of state the replicas share (`shared_records`): a body under a scope and a name, lapsing at
/// `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRecord {
    pub name: String,
    pub body: String,
    pub expires_at_ms: i64,
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
    /// Appends finished tool calls to `tool_executions`, in order, in one statement (a batch may be empty).
    fn record_executions<'a>(&'a self, executions: &'a [Execution]) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The newest `limit` executions, newest first.
    fn recent_executions(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Execution>, StoreError>>;
    /// Deletes executions recorded before `before_ms`; returns how many.
    fn purge_executions(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Appends one measurement per tool to `tool_baselines` (history is kept).
    fn record_tool_baselines<'a>(&'a self, baselines: &'a [ToolBaseline]) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The newest baseline of each tool and transport, ordered by tool then transport.
    fn latest_tool_baselines(&self) -> BoxFuture<'_, Result<Vec<ToolBaseline>, StoreError>>;
    /// Appends one raise or clear to `alerts` (the `id` field of the argument is ignored).
    fn record_alert<'a>(&'a self, alert: &'a AlertRecord) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The newest `limit` alert changes, newest first.
    fn recent_alerts(&self, limit: u32) -> BoxFuture<'_, Result<Vec<AlertRecord>, StoreError>>;
    /// Returns the new row's id (the `id` field of the argument is ignored).
    fn record_observation<'a>(&'a self, observation: &'a Observation) -> BoxFuture<'a, Result<i64, StoreError>>;
    /// The newest `limit` auditor observations, newest first.
    fn observations(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Observation>, StoreError>>;
    /// Marks one acknowledged at `at_ms`; false when no such id.
    fn acknowledge_observation(&self, id: i64, at_ms: i64) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Creates or replaces the shared record `scope`/`name`.
    fn put_shared<'a>(
        &'a self,
        scope: &'a str,
        name: &'a str,
        body: &'a str,
        expires_at_ms: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The shared record `scope`/`name` unless it lapsed before `now_ms`.
    fn shared<'a>(
        &'a self,
        scope: &'a str,
        name: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<SharedRecord>, StoreError>>;
    /// Moves the expiry of the live record `scope`/`name` to `expires_at_ms`; false, creating nothing, when the
    /// record is absent or lapsed before `now_ms` (so a refresh cannot bring back a record another replica deleted).
    fn touch_shared<'a>(
        &'a self,
        scope: &'a str,
        name: &'a str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Removes every live record of `scope` and returns them ordered by name; each record goes to one caller
    /// only, however many replicas take at once.
    fn take_shared<'a>(&'a self, scope: &'a str, now_ms: i64) -> BoxFuture<'a, Result<Vec<SharedRecord>, StoreError>>;
    /// Removes one record; false when there was none.
    fn delete_shared<'a>(&'a self, scope: &'a str, name: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Deletes records that lapsed before `now_ms`; returns how many.
    fn purge_shared(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

//! The storage trait: one method per question the app asks of its database.
//! `exai-store` implements it on SQLite (the embedded default) and, later, PostgreSQL.

use futures::future::BoxFuture;

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

pub trait Store: Send + Sync + 'static {
    /// Round-trips a trivial query and reports the schema version.
    fn ping(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>>;
    /// Records that a server process started (kept for uptime history).
    fn record_start(&self, version: &str, transport: &str) -> BoxFuture<'_, Result<(), StoreError>>;
}

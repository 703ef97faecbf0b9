//! exai's storage backends, implementing `exai_core::store::Store` with one set of queries.
//!
//! - `sqlite`: the embedded default, one file in the data directory, WAL mode, migrated on open.
//! - `postgres`: PostgreSQL for replicas that share state (`EXAI_DATABASE_URL`).
//! - `queries`: the SQL both backends run, written once.

mod postgres;
mod queries;
mod sqlite;

pub use postgres::{PgStore, check_schema_name, redact};

/// How long a store waits for a connection or a lock unless configured (`timeouts.database_secs`).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub use sqlite::SqliteStore;

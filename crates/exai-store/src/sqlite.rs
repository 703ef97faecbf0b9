//! The embedded SQLite store: creates `<data_dir>/exai.db` on first start (0600, in a 0700 directory when it makes
//! one: see `exai_core::private`), applies the migrations in `migrations/sqlite/`, and sets the pragmas a concurrent
//! server needs (WAL, busy timeout, foreign keys).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use exai_core::store::{Conversation, SharedRecord, StoreError, StoreHealth, Turn};
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::queries::{impl_store, parse_role, query_err, role_name};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The file name inside the data directory.
pub const FILE_NAME: &str = "exai.db";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and migrates it to the newest schema.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_timeout(data_dir, crate::DEFAULT_TIMEOUT).await
    }

    /// Like [`SqliteStore::open`], waiting at most `timeout` for a connection or a lock (`timeouts.database_secs`).
    pub async fn open_with_timeout(data_dir: &Path, timeout: Duration) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open {
            location: data_dir.display().to_string(),
            message,
        };
        exai_core::private::create_dir(data_dir).map_err(|e| open_err(format!("cannot create data directory: {e}")))?;
        let path = data_dir.join(FILE_NAME);
        // Conversations are for this user only: the database is created 0600 (SQLite gives its -wal and -shm files
        // the database's mode), and one left readable by others (an older version's) is made private.
        exai_core::private::ensure_file(&path).map_err(|e| open_err(format!("cannot create {FILE_NAME}: {e}")))?;
        for side in ["", "-wal", "-shm"] {
            let file = data_dir.join(format!("{FILE_NAME}{side}"));
            if let Err(e) = exai_core::private::restrict(&file) {
                tracing::warn!(file = %file.display(), error = %e, "cannot make the database file private");
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| open_err(e.to_string()))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(timeout)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Open {
                location: path.display().to_string(),
                message: e.to_string(),
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(Self { pool, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl_store!(SqliteStore, "sqlite");

#[cfg(test)]
mod tests {
    use super::*;
    use exai_core::store::Store;

    #[tokio::test]
    async fn opens_migrates_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("nested")).await.unwrap();
        let health = store.ping().await.unwrap();
        assert_eq!(health.backend, "sqlite");
        assert_eq!(health.schema_version, 6);
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
        store.record_start("0.1.0", "stdio").await.unwrap();
        store.close().await;

        // Reopening applies nothing twice and keeps the data.
        let store = SqliteStore::open(&dir.path().join("nested")).await.unwrap();
        let starts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM server_starts")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(starts, 1);
    }

    #[tokio::test]
    async fn unusable_data_dir_is_a_clear_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = SqliteStore::open(&file).await.unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}

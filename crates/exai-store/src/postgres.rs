//! The PostgreSQL store (`EXAI_DATABASE_URL=postgres://…`), for several replicas sharing state: same queries
//! as SQLite, migrations in `migrations/postgres/`, optionally confined to one schema (tests use that).

use std::str::FromStr;
use std::time::Duration;

use exai_core::store::{Conversation, SharedRecord, StoreError, StoreHealth, Turn};
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::queries::{impl_store, parse_role, query_err, role_name};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The URL without its password.
    location: String,
}

impl PgStore {
    /// Connects to `url` and migrates the database to the newest schema.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_in_schema(url, None).await
    }

    /// Like [`PgStore::connect`], waiting at most `timeout` for a connection (`timeouts.database_secs`).
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        Self::open(url, None, timeout).await
    }

    /// Like [`PgStore::connect`], but keeps every table in `schema` (created if missing).
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        Self::open(url, schema, crate::DEFAULT_TIMEOUT).await
    }

    async fn open(url: &str, schema: Option<&str>, timeout: Duration) -> Result<Self, StoreError> {
        let location = redact(url);
        let open_err = |message: String| StoreError::Open {
            location: location.clone(),
            message,
        };
        let mut options = PgConnectOptions::from_str(url).map_err(|e| open_err(e.to_string()))?;
        if let Some(schema) = schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(open_err(format!(
                    "schema name {schema:?} must be letters, digits and _"
                )));
            }
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .connect_with(options.clone())
                .await
                .map_err(|e| open_err(e.to_string()))?;
            pool.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await
                .map_err(|e| open_err(e.to_string()))?;
            pool.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(Self { pool, location })
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    /// Drops `schema` and everything in it (tests clean up with this).
    pub async fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        self.pool
            .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
            .await
            .map_err(query_err)?;
        Ok(())
    }

    /// Whether `schema` exists (tests check that a run's schema was dropped).
    pub async fn schema_exists(&self, schema: &str) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
            .bind(schema)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err)?;
        Ok(found.is_some())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl_store!(PgStore, "postgres");

/// The URL with any password replaced, safe to show in `health` and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("****"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable database URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:pw@db:5432/x"), "postgres://u:****@db:5432/x");
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert!(!redact("not a url with pw").contains("pw"));
    }
}

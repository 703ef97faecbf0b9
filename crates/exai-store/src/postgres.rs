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
            check_schema_name(schema).map_err(open_err)?;
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
        check_schema_name(schema).map_err(StoreError::Query)?;
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

/// Refuses a schema name that is not a plain PostgreSQL identifier (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`): schema names
/// are formatted into SQL (`CREATE SCHEMA`, `DROP SCHEMA`) and into `search_path`, where no other text is safe.
pub fn check_schema_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "schema name {name:?} is not a plain identifier: 1 to 63 ASCII letters, digits and _, not starting \
             with a digit"
        ))
    }
}

/// The URL with any password replaced, safe to show in `health` and logs: the userinfo password, and the value of
/// every query parameter that carries a secret (`?password=`, `sslpassword`, `pass`, `pwd`, `passwd`, and any name
/// with `password`, `secret` or `token` in it), so `postgres://h/db?user=u&password=pw` is masked too.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("****"));
            }
            if let Some(query) = u.query().map(redact_query) {
                u.set_query(Some(&query));
            }
            u.to_string()
        }
        Err(_) => "(unparsable database URL)".to_owned(),
    }
}

/// `query` with each secret parameter's value replaced by `****`; every other byte kept as given.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}=****"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret_param(name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .map(|(k, v)| format!("{k}{v}"))
        .collect();
    let name = decoded.to_ascii_lowercase();
    matches!(name.as_str(), "pass" | "pwd" | "passwd")
        || ["password", "secret", "token"].iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::{check_schema_name, redact};

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["s", "_s", "exai_loadtest_123_4567_3", "S1", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1s",
            "s-1",
            "s;DROP TABLE turns",
            "s s",
            "\"s\"",
            "é",
            &"a".repeat(64),
            "public,evil",
        ] {
            let err = check_schema_name(bad).unwrap_err();
            assert!(err.contains("not a plain identifier"), "{bad}: {err}");
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("postgres://u:pw@db:5432/x"), "postgres://u:****@db:5432/x");
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert!(!redact("not a url with pw").contains("pw"));
    }

    #[test]
    fn redact_hides_secrets_in_the_query_too() {
        assert_eq!(
            redact("postgres://db/x?user=u&password=hunter2&sslmode=require"),
            "postgres://db/x?user=u&password=****&sslmode=require"
        );
        for name in [
            "pass",
            "pwd",
            "passwd",
            "PassWord",
            "sslpassword",
            "api_token",
            "client_secret",
            "pass%77ord",
        ] {
            let out = redact(&format!("postgres://db/x?{name}=hunter2"));
            assert_eq!(out, format!("postgres://db/x?{name}=****"), "{name}");
        }
        // Both at once; other parameters (and their encoding) untouched; a valueless name is kept as is.
        assert_eq!(
            redact("postgres://u:pw@db/x?options=-c%20search_path%3Ds&password=a%26b&passfile&token=t"),
            "postgres://u:****@db/x?options=-c%20search_path%3Ds&password=****&passfile&token=****"
        );
        assert_eq!(
            redact("postgres://db/x?sslmode=disable"),
            "postgres://db/x?sslmode=disable"
        );
    }
}

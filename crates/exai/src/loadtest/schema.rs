//! A PostgreSQL schema of one `--replicas` run's own: created and migrated before the run, handed to its replicas
//! as a `search_path` in their database URL, and dropped after it, so runs never share tables and a rerun starts clean.

use anyhow::Context;
use exai_store::PgStore;

/// One run's schema, created by [`RunSchema::create`]; [`RunSchema::drop`] removes it and everything in it.
#[derive(Debug)]
pub struct RunSchema {
    /// The database URL as given (no schema).
    url: String,
    pub name: String,
}

impl RunSchema {
    /// Creates `name` in the database at `url` and migrates it (once, here, so the replicas starting together do
    /// not race over the migrations).
    pub async fn create(url: &str, name: &str) -> anyhow::Result<Self> {
        let store = PgStore::connect_in_schema(url, Some(name))
            .await
            .with_context(|| format!("creating the PostgreSQL schema {name} for the run"))?;
        store.close().await;
        Ok(Self {
            url: url.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The URL the replicas get: the given one with `search_path` set to this schema (the same mechanism the
    /// replicas test uses; `PgStore` passes `options` on to the server).
    pub fn scoped_url(&self) -> String {
        scoped_url(&self.url, &self.name)
    }

    /// Drops the schema and every table in it.
    pub async fn drop(self) -> anyhow::Result<()> {
        let store = PgStore::connect_in_schema(&self.url, None)
            .await
            .with_context(|| format!("connecting to drop the PostgreSQL schema {}", self.name))?;
        let dropped = store.drop_schema(&self.name).await;
        store.close().await;
        dropped.with_context(|| format!("dropping the PostgreSQL schema {}", self.name))
    }
}

/// `url` with `options=-c search_path=<schema>` added as a query parameter.
fn scoped_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A schema name unique to this process, run stamp and replica count (letters, digits and `_` only).
pub fn name(stamp: u128, replicas: usize) -> String {
    format!("exai_loadtest_{}_{stamp}_{replicas}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::{name, scoped_url};

    #[test]
    fn the_schema_goes_into_the_url_as_a_search_path() {
        assert_eq!(
            scoped_url("postgres://u@h:5432/db", "s_1"),
            "postgres://u@h:5432/db?options=-c%20search_path%3Ds_1"
        );
        assert_eq!(
            scoped_url("postgres://u@h/db?sslmode=disable", "s"),
            "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Ds"
        );
        let n = name(42, 3);
        assert!(n.starts_with("exai_loadtest_") && n.ends_with("_42_3"), "{n}");
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{n}");
        // A real stamp (nanoseconds since 1970, 19 digits until 2262) keeps the name a valid identifier.
        let real = name(u128::from(u64::MAX), 64);
        assert!(exai_store::check_schema_name(&real).is_ok(), "{real}");
    }
}

//! Legacy (2025-era) MCP sessions as shared records of the store (scope `mcp-session`): rmcp's [`SessionStore`]
//! over [`Store`], so any replica (or this one after a restart) can restore a session from its `initialize`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use exai_core::conversation::now_ms;
use exai_core::store::{Store, StoreError};
use rmcp::transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError};

/// The shared-record scope of legacy MCP sessions; the record's name is the `Mcp-Session-Id`.
pub(crate) const SCOPE: &str = "mcp-session";

/// How long a session may sit unused before its record lapses and the session is gone everywhere (404, and the
/// client starts a new one, as the spec requires). rmcp ends an idle session's in-memory worker after 5 minutes;
/// with the record that no longer ends the session, only frees the memory, and the next request restores it. A
/// day lets a client idle overnight (an editor left open) keep its session, while records of clients that vanished
/// without a DELETE still go within a day (the hourly purge removes lapsed rows).
pub(crate) const IDLE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// A used session's expiry is pushed out again once it is this stale, so a busy session costs one write an hour
/// rather than one per request (its idle lifetime is then between 23 and 24 hours).
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(60 * 60);

/// Why a session record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("session store {op} failed: {source}")]
    Store {
        op: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("session store {op} got no answer within {} s", .after.as_secs_f64())]
    Timeout { op: &'static str, after: Duration },
    #[error("session record {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The session records of one replica's `/mcp`, and which of its in-memory sessions have one.
pub struct SessionRecords {
    store: Arc<dyn Store>,
    /// Longest any one store call may take (`timeouts.database_secs`): a stalled database gives an error, not a hang.
    timeout: Duration,
    /// Sessions held here whose record is known to exist (written at `initialize` or read to restore): only these
    /// are checked on use. A session whose record could not be written at `initialize` stays this replica's alone.
    persisted: Mutex<HashSet<String>>,
    /// Sessions a DELETE closed here but whose record could not be removed (see [`SessionRecords::take_undeleted`]).
    undeleted: Mutex<HashSet<String>>,
}

impl SessionRecords {
    pub fn new(store: Arc<dyn Store>, timeout: Duration) -> Self {
        Self {
            store,
            timeout,
            persisted: Mutex::default(),
            undeleted: Mutex::default(),
        }
    }

    /// Whether the session `id` still has a live record, pushing its expiry out when due. False means it was
    /// deleted (by a DELETE on any replica) or lapsed.
    pub async fn live(&self, id: &str) -> Result<bool, RecordError> {
        let now = now_ms();
        let Some(record) = self.call("check", self.store.shared(SCOPE, id, now)).await? else {
            return Ok(false);
        };
        self.refresh_if_due(id, record.expires_at_ms, now).await;
        Ok(true)
    }

    /// Pushes the expiry out if the last push is [`REFRESH_EVERY`] old. A failure is only logged and counted: the
    /// record still lives until its current expiry, and the next use tries again.
    async fn refresh_if_due(&self, id: &str, expires_at_ms: i64, now: i64) {
        let fresh_until = now + millis(IDLE_LIFETIME) - millis(REFRESH_EVERY);
        if expires_at_ms < fresh_until {
            // `touch_shared` moves only a live record: a refresh racing a DELETE elsewhere cannot bring it back.
            let _ = self
                .call(
                    "refresh",
                    self.store.touch_shared(SCOPE, id, now + millis(IDLE_LIFETIME), now),
                )
                .await;
        }
    }

    /// Notes that the in-memory session `id` has a record (it was just restored from it).
    pub fn mark(&self, id: &str) {
        lock(&self.persisted).insert(id.to_owned());
    }

    /// Whether the in-memory session `id` has a record to check.
    pub fn persisted(&self, id: &str) -> bool {
        lock(&self.persisted).contains(id)
    }

    /// Forgets the session `id` (it left this replica's memory).
    pub fn forget(&self, id: &str) {
        lock(&self.persisted).remove(id);
    }

    /// True once if the last DELETE of `id` closed it here but could not remove its record, so other replicas
    /// may still serve it: the DELETE must then fail rather than claim the session is gone.
    pub fn take_undeleted(&self, id: &str) -> bool {
        lock(&self.undeleted).remove(id)
    }

    /// Runs one store call under the timeout; a failure is logged and counted by `op`.
    async fn call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, RecordError> {
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(source)) => RecordError::Store { op, source },
            Err(_) => RecordError::Timeout {
                op,
                after: self.timeout,
            },
        };
        Err(failed(op, outcome))
    }
}

/// Logs and counts a failed session-store operation.
fn failed(op: &'static str, error: RecordError) -> RecordError {
    tracing::warn!(op, error = %error, "MCP session store call failed");
    metrics::counter!("exai_session_store_errors_total", "op" => op).increment(1);
    error
}

#[async_trait::async_trait]
impl SessionStore for SessionRecords {
    /// Called by rmcp for an `Mcp-Session-Id` this replica does not hold; an error answers that request 500.
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let now = now_ms();
        let Some(record) = self.call("load", self.store.shared(SCOPE, session_id, now)).await? else {
            return Ok(None);
        };
        let state = serde_json::from_str(&record.body).map_err(|source| {
            failed(
                "load",
                RecordError::Corrupt {
                    id: session_id.to_owned(),
                    source,
                },
            )
        })?;
        self.refresh_if_due(session_id, record.expires_at_ms, now).await;
        Ok(Some(state))
    }

    /// Called by rmcp after a successful `initialize`. rmcp only logs an error here and still answers the
    /// `initialize`: a store outage then costs new sessions their mobility, not their existence (a client sent to
    /// another replica gets 404 and starts again, as the spec says).
    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let body = serde_json::to_string(state)?;
        let expires = now_ms() + millis(IDLE_LIFETIME);
        self.call("store", self.store.put_shared(SCOPE, session_id, &body, expires))
            .await?;
        self.mark(session_id);
        Ok(())
    }

    /// Called by rmcp for a DELETE, after closing the session here. rmcp ignores an error, so it is remembered for
    /// [`SessionRecords::take_undeleted`].
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.forget(session_id);
        match self.call("delete", self.store.delete_shared(SCOPE, session_id)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                lock(&self.undeleted).insert(session_id.to_owned());
                Err(e.into())
            }
        }
    }
}

fn lock(set: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    // The sets hold plain ids: one left mid-update by a panic is still consistent.
    set.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exai_store::SqliteStore;
    use serde_json::{Value, json};

    async fn records(dir: &tempfile::TempDir) -> (Arc<SqliteStore>, SessionRecords) {
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let records = SessionRecords::new(Arc::clone(&store) as Arc<dyn Store>, Duration::from_secs(5));
        (store, records)
    }

    fn state() -> SessionState {
        serde_json::from_value(json!({"initialize_params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
            "clientInfo": {"name": "unit", "version": "7"}
        }}))
        .unwrap()
    }

    fn as_json(state: &SessionState) -> Value {
        serde_json::to_value(state).unwrap()
    }

    #[tokio::test]
    async fn a_stored_session_loads_with_its_initialize_and_a_day_to_live() {
        let dir = tempfile::tempdir().unwrap();
        let (store, records) = records(&dir).await;
        assert!(records.load("s1").await.unwrap().is_none(), "unknown before initialize");
        assert!(!records.persisted("s1"));

        let before = now_ms();
        records.store("s1", &state()).await.unwrap();
        assert!(records.persisted("s1"), "a written record is checked on use");
        let loaded = records.load("s1").await.unwrap().expect("stored");
        assert_eq!(as_json(&loaded), as_json(&state()));
        assert_eq!(as_json(&loaded)["initialize_params"]["clientInfo"]["version"], "7");

        let record = store.shared(SCOPE, "s1", now_ms()).await.unwrap().unwrap();
        let lifetime = record.expires_at_ms - before;
        assert!(
            (millis(IDLE_LIFETIME)..millis(IDLE_LIFETIME) + 60_000).contains(&lifetime),
            "{lifetime} ms"
        );
        assert!(records.live("s1").await.unwrap());
        assert!(!records.live("s2").await.unwrap());
    }

    #[tokio::test]
    async fn a_deleted_session_is_gone_and_not_brought_back_by_a_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let (store, records) = records(&dir).await;
        records.store("s1", &state()).await.unwrap();
        records.delete("s1").await.unwrap();
        assert!(!records.persisted("s1"));
        assert!(!records.take_undeleted("s1"), "the delete worked");
        assert!(records.load("s1").await.unwrap().is_none());
        assert!(!records.live("s1").await.unwrap());

        // A refresh due on a record another replica deleted meanwhile creates nothing.
        records.refresh_if_due("s1", now_ms() + 1_000, now_ms()).await;
        assert!(store.shared(SCOPE, "s1", now_ms()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn use_pushes_a_stale_expiry_out_and_leaves_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let (store, records) = records(&dir).await;
        let body = serde_json::to_string(&state()).unwrap();
        let stale = now_ms() + millis(REFRESH_EVERY);
        store.put_shared(SCOPE, "stale", &body, stale).await.unwrap();
        let fresh = now_ms() + millis(IDLE_LIFETIME) - 1_000;
        store.put_shared(SCOPE, "fresh", &body, fresh).await.unwrap();

        assert!(records.live("stale").await.unwrap());
        let moved = store.shared(SCOPE, "stale", now_ms()).await.unwrap().unwrap();
        assert!(
            moved.expires_at_ms > now_ms() + millis(IDLE_LIFETIME) - 60_000,
            "pushed out"
        );
        assert!(records.load("fresh").await.unwrap().is_some());
        let kept = store.shared(SCOPE, "fresh", now_ms()).await.unwrap().unwrap();
        assert_eq!(kept.expires_at_ms, fresh, "not written again within the hour");
    }

    #[tokio::test]
    async fn store_failures_are_errors_and_a_failed_delete_is_remembered_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, records) = records(&dir).await;
        records.store("s1", &state()).await.unwrap();
        store.close().await;

        let load = records.load("s1").await.unwrap_err().to_string();
        assert!(load.contains("session store load failed"), "{load}");
        assert!(records.store("s2", &state()).await.is_err());
        assert!(
            !records.persisted("s2"),
            "an unwritten session is not checked against the store"
        );
        assert!(records.live("s1").await.is_err());
        assert!(records.delete("s1").await.is_err());
        assert!(records.take_undeleted("s1"), "the DELETE must not claim success");
        assert!(!records.take_undeleted("s1"), "reported once");
    }

    #[tokio::test]
    async fn a_store_call_that_never_answers_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let records = SessionRecords::new(store, Duration::from_millis(50));
        let stalled = std::future::pending::<Result<(), StoreError>>();
        let error = records.call("check", stalled).await.unwrap_err();
        assert!(matches!(error, RecordError::Timeout { op: "check", .. }), "{error}");
    }

    #[tokio::test]
    async fn an_unreadable_record_is_an_error_not_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let (store, records) = records(&dir).await;
        store
            .put_shared(SCOPE, "bad", "{not json", now_ms() + 60_000)
            .await
            .unwrap();
        let error = records.load("bad").await.unwrap_err().to_string();
        assert!(error.contains("session record bad is unreadable"), "{error}");
    }
}

//! A replica's view of the store for its sessions: who holds a session, whether a replica is alive, and the
//! frames kept for a session; every failure counted and logged, never fatal.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use exai_core::conversation::now_ms;
use exai_core::store::Store;

use crate::ws::outbox::Caps;
use crate::ws::shared::{self, Holder, KeptBody};

/// What every session of this replica needs from outside: the store the replicas share and who this replica is.
pub(super) struct Ctx {
    pub(super) store: Arc<dyn Store>,
    pub(super) replica: String,
    pub(super) seq: AtomicU64,
    pub(super) grace: Duration,
    /// How long a session resumed from another replica polls for that replica's results (longest call deadline
    /// plus a margin).
    pub(super) poll_window: Duration,
    /// How many frames (and bytes) a detached session keeps in memory and a resume delivers at most.
    pub(super) kept: Caps,
}

impl Ctx {
    /// Counts and logs a failed store operation (naming the session, or replica, by its tag only); the session
    /// carries on with what it has in memory.
    pub(super) fn failed(&self, op: &'static str, session: &str, e: &dyn std::fmt::Display) {
        metrics::counter!("exai_ws_store_failures_total", "op" => op).increment(1);
        let session = shared::tag(session);
        tracing::warn!(%session, op, error = %e, "websocket session store operation failed");
    }

    /// The holder record of session `id`, `None` when there is none (or it cannot be read).
    pub(super) async fn holder(&self, id: &str) -> Option<Holder> {
        match self.store.shared(shared::SESSION_SCOPE, id, now_ms()).await {
            Ok(record) => record.and_then(|r| Holder::decode(&r.body)),
            Err(e) => {
                self.failed("read_holder", id, &e);
                None
            }
        }
    }

    /// Whether replica `replica` still says it is alive (`true` when the store cannot tell: no false alarms).
    pub(super) async fn alive(&self, replica: &str) -> bool {
        match self.store.shared(shared::REPLICA_SCOPE, replica, now_ms()).await {
            Ok(record) => record.is_some(),
            Err(e) => {
                self.failed("read_heartbeat", replica, &e);
                true
            }
        }
    }

    /// Says in the store that this replica holds session `id` of `owner`, for the grace period past the next
    /// refresh.
    pub(super) async fn claim(&self, id: &str, owner: &str) {
        let body = Holder {
            replica: self.replica.clone(),
            owner: Some(owner.to_owned()),
        }
        .encode();
        let lapse = self.grace + 2 * shared::REFRESH;
        let expires = now_ms() + lapse.as_millis() as i64;
        if let Err(e) = self.store.put_shared(shared::SESSION_SCOPE, id, &body, expires).await {
            self.failed("claim", id, &e);
        }
    }

    /// Whether session `id` has kept frames in the store (looked at by taking them and putting them back).
    pub(super) async fn has_kept(&self, id: &str) -> bool {
        let scope = shared::pending_scope(id);
        let records = match self.store.take_shared(&scope, now_ms()).await {
            Ok(records) => records,
            Err(e) => {
                self.failed("take_kept", id, &e);
                return false;
            }
        };
        for r in &records {
            if let Err(e) = self.store.put_shared(&scope, &r.name, &r.body, r.expires_at_ms).await {
                self.failed("keep", id, &e);
            }
        }
        !records.is_empty()
    }

    /// Removes and returns session `id`'s kept frames in the store, oldest first (none when the store fails).
    pub(super) async fn take_kept(&self, id: &str) -> Vec<(String, KeptBody)> {
        match self.store.take_shared(&shared::pending_scope(id), now_ms()).await {
            Ok(records) => records
                .into_iter()
                .filter_map(|r| KeptBody::decode(&r.body).map(|b| (r.name, b)))
                .collect(),
            Err(e) => {
                self.failed("take_kept", id, &e);
                Vec::new()
            }
        }
    }
}

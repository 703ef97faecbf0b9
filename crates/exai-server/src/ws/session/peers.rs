//! How a replica's sessions keep in step with the other replicas: its heartbeat, the refresh of the holder
//! records of its attached sessions, polling for another replica's results, and ending sessions lost with it.

use std::sync::Arc;

use exai_core::conversation::now_ms;
use tokio::time::Instant;

use super::{Kind, Out, Session, Sessions, lock};
use crate::ws::shared;

impl Sessions {
    /// Every `HEARTBEAT`, says in the store that this replica is alive (so that a session it holds can be
    /// resumed elsewhere); the record goes at shutdown.
    pub(super) async fn heartbeat(self: Arc<Self>) {
        let mut tick = tokio::time::interval(shared::HEARTBEAT);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown.cancelled() => break,
            }
            let expires = now_ms() + shared::HEARTBEAT_LAPSE.as_millis() as i64;
            let said = self
                .ctx
                .store
                .put_shared(shared::REPLICA_SCOPE, &self.ctx.replica, "{}", expires)
                .await;
            match said {
                Err(e) if !failing => {
                    failing = true;
                    self.ctx.failed("heartbeat", &self.ctx.replica, &e);
                }
                Err(_) => metrics::counter!("exai_ws_store_failures_total", "op" => "heartbeat").increment(1),
                Ok(()) => failing = false,
            }
        }
        let _ = self
            .ctx
            .store
            .delete_shared(shared::REPLICA_SCOPE, &self.ctx.replica)
            .await;
    }

    /// While `session` is attached and within its window, delivers the frames replica `from` keeps in the store
    /// for it (results of calls that were running there when the client moved). If `from` stops meanwhile, its
    /// calls are lost: the session ends and its connection is closed with 4006, so the client's next `hello`
    /// gets `resumed: false` and knows.
    pub(super) async fn poll_remote(self: Arc<Self>, session: Arc<Session>, from: String) {
        let mut checked = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(shared::POLL) => {}
                () = session.ended.cancelled() => return,
            }
            let attached = {
                let mut state = lock(&session.state);
                if state.remote_until.is_none_or(|until| Instant::now() >= until) {
                    state.remote_until = None;
                    return;
                }
                state.conn.is_some() && state.resuming == 0
            };
            if !attached {
                continue;
            }
            for (name, body) in self.ctx.take_kept(&session.id).await {
                if lock(&session.state).claimed.remove(&name) {
                    continue;
                }
                let kind = if body.is_final { Kind::Final } else { Kind::Keep };
                session.deliver(body.frame, kind);
            }
            if checked.elapsed() >= shared::HEARTBEAT {
                checked = Instant::now();
                if !self.ctx.alive(&from).await {
                    self.lose(&session, &from).await;
                    return;
                }
            }
        }
    }

    /// Ends a session whose calls died with replica `from`.
    pub(super) async fn lose(&self, session: &Arc<Session>, from: &str) {
        tracing::warn!(session = %session.tag(), replica = %from,
            "the replica running calls of a resumed websocket session stopped; ending the session");
        {
            let mut map = lock(&self.map);
            if map.get(&session.id).is_some_and(|s| Arc::ptr_eq(s, session)) {
                map.remove(&session.id);
            }
            Self::count(&map);
        }
        session.ended.cancel();
        if let Some(conn) = &lock(&session.state).conn {
            let reason = "the replica running this session's calls stopped; they are lost".to_owned();
            let _ = conn.tx.send(Out::Close { code: 4006, reason });
        }
        if let Err(e) = self.ctx.store.delete_shared(shared::SESSION_SCOPE, &session.id).await {
            self.ctx.failed("release", &session.id, &e);
        }
    }

    /// Every `REFRESH`, keeps the holder records of the sessions attached here alive; a session another replica
    /// has claimed since (its client resumed there) has its connection here closed with 4005.
    pub(super) async fn refresh(self: Arc<Self>) {
        let mut tick = tokio::time::interval_at(Instant::now() + shared::REFRESH, shared::REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            let attached: Vec<Arc<Session>> = lock(&self.map)
                .values()
                .filter(|s| lock(&s.state).conn.is_some())
                .cloned()
                .collect();
            for session in attached {
                match self.ctx.holder(&session.id).await {
                    Some(holder) if holder.replica != self.ctx.replica => {
                        tracing::info!(session = %session.tag(), replica = %holder.replica,
                            "websocket session resumed on another replica; closing its connection here");
                        if let Some(conn) = &lock(&session.state).conn {
                            conn.kick.cancel();
                        }
                    }
                    _ => self.ctx.claim(&session.id, &session.owner).await,
                }
            }
        }
    }
}

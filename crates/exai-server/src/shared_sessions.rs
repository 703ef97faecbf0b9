//! The legacy MCP session manager of `/mcp`: rmcp's in-memory sessions, restorable from their shared records, and
//! ended here as soon as a DELETE on any replica removed the record (a deleted session is gone fleet-wide).

use std::sync::Arc;

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, LocalSessionManagerError};
use rmcp::transport::streamable_http_server::session::{RestoreOutcome, ServerSseMessage, SessionId, SessionManager};

use crate::session_store::SessionRecords;

/// rmcp's [`LocalSessionManager`] plus a record check on use.
pub struct SharedSessions {
    local: LocalSessionManager,
    records: Arc<SessionRecords>,
}

impl SharedSessions {
    pub fn new(records: Arc<SessionRecords>) -> Self {
        Self {
            local: LocalSessionManager::default(),
            records,
        }
    }

    /// How many sessions this replica holds in memory (a session that moved counts on both replicas until the one
    /// it left ends its idle worker, after rmcp's 5 minutes).
    pub async fn open(&self) -> usize {
        self.local.sessions.read().await.len()
    }
}

impl SessionManager for SharedSessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.local.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.local.initialize_session(id, message).await
    }

    /// rmcp asks this before every request of a session. A session held here whose record is gone was deleted
    /// elsewhere (or lapsed): it is closed here too and reported unknown, so rmcp finds no record to restore and
    /// answers 404. If the store cannot answer, the session is served from memory (logged and counted): a DELETE
    /// elsewhere could not have removed the record during that outage either, and a store hiccup should not break
    /// every live session.
    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if !self.local.has_session(id).await? {
            return Ok(false);
        }
        if !self.records.persisted(id) {
            return Ok(true);
        }
        match self.records.live(id).await {
            Ok(true) | Err(_) => Ok(true),
            Ok(false) => {
                tracing::info!(session = %id, "MCP session deleted on another replica or lapsed: closing it here");
                self.records.forget(id);
                self.local.close_session(id).await?;
                Ok(false)
            }
        }
    }

    /// Called for a DELETE (rmcp then deletes the record) and when a session's worker ends (idle, shutdown): the
    /// record is left alone then, so the session can come back on any replica.
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.records.forget(id);
        self.local.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_stream(id, message).await
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.local.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.resume(id, last_event_id).await
    }

    /// rmcp calls this only after loading the record, so the restored session has one to check.
    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        let outcome = self.local.restore_session(id.clone()).await?;
        if matches!(outcome, RestoreOutcome::Restored(_)) {
            self.records.mark(&id);
        }
        Ok(outcome)
    }
}

//! Records every finished tool call in the live window ([`exai_core::observe`]) and, through the app's journal
//! ([`exai_core::observe::journal`]), in the `tool_executions` table: batched, off the reply path, bounded.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exai_core::app::App;
use exai_core::error::ToolError;
use exai_core::store::Execution;
use exai_core::tools::UsedModel;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A bounded name for what went wrong (the `error_kind` column).
pub fn error_kind(error: &ToolError) -> &'static str {
    match error {
        ToolError::UnknownTool { .. } => "unknown_tool",
        ToolError::InvalidArguments { .. } => "invalid_arguments",
        ToolError::Timeout { .. } => "timeout",
        ToolError::Cancelled { .. } => "cancelled",
        ToolError::Unavailable(_) => "unavailable",
        ToolError::Provider(_) => "provider",
        ToolError::Exhausted { .. } => "exhausted",
        ToolError::OverCapacity(_) => "over_capacity",
        ToolError::FleetUnavailable(_) => "fleet_unavailable",
        ToolError::CircuitOpen(_) => "circuit_open",
        ToolError::Internal(_) => "internal",
    }
}

/// One finished call, as the table keeps it.
pub struct Finished<'a> {
    pub tool: &'a str,
    pub latency: Duration,
    pub status: &'static str,
    pub error_kind: Option<&'static str>,
    pub used: Option<UsedModel>,
    pub session: &'a str,
}

/// Records `call` in the window and queues it for the table; never waits, never fails the call.
pub fn record(app: &Arc<App>, call: Finished<'_>) {
    let now = now_ms();
    let used = call.used.unwrap_or_default();
    let some = |s: String| (!s.is_empty()).then_some(s);
    let execution = Execution {
        at_ms: now,
        tool: call.tool.to_owned(),
        provider: some(used.provider),
        model: some(used.model),
        latency_ms: call.latency.as_millis() as i64,
        status: call.status.to_owned(),
        error_kind: call.error_kind.map(str::to_owned),
        tokens_in: used.tokens_in,
        tokens_out: used.tokens_out,
        session: some(call.session.to_owned()),
    };
    app.observe.record_call(execution.clone());
    let retention = app.config.observability.executions_retention;
    app.journal.record(execution, &app.store, &app.background, retention);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use exai_core::observe::journal::Journal;
    use exai_core::store::{Execution, Store};
    use exai_store::SqliteStore;
    use tokio_util::task::TaskTracker;

    fn row(at_ms: i64) -> Execution {
        Execution {
            at_ms,
            tool: "version".into(),
            provider: None,
            model: None,
            latency_ms: 1,
            status: "ok".into(),
            error_kind: None,
            tokens_in: None,
            tokens_out: None,
            session: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_journal_writes_batches_and_drops_past_its_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let journal = Journal::with_backlog(3);
        let tracker = TaskTracker::new();
        let week = Duration::from_secs(7 * 86_400);
        // Nothing yields between these, so the writer has not run: three fit the backlog, two are dropped.
        for at in 1..=5 {
            journal.record(row(at), &store, &tracker, week);
        }
        assert_eq!(journal.dropped(), 2);
        tracker.close();
        tracker.wait().await;
        let written: Vec<i64> = store
            .recent_executions(10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.at_ms)
            .collect();
        assert_eq!(written, [3, 2, 1]);
        // The writer stopped when its queue emptied; the next row starts another.
        let tracker = TaskTracker::new();
        journal.record(row(6), &store, &tracker, week);
        tracker.close();
        tracker.wait().await;
        assert_eq!(store.recent_executions(1).await.unwrap()[0].at_ms, 6);
        assert_eq!(journal.dropped(), 2);
    }
}

//! Records every finished tool call in the live window ([`exai_core::observe`]) and in the `tool_executions`
//! table on a tracked background task (never delaying the reply), and purges rows past
//! `observability.executions_retention_days` on the first call and hourly.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exai_core::app::App;
use exai_core::error::ToolError;
use exai_core::store::Execution;
use exai_core::tools::UsedModel;

/// How often old rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// When this process last purged (Unix ms; 0: not yet).
static LAST_PURGE_MS: AtomicI64 = AtomicI64::new(0);

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

/// Writes `call` to the store in the background; a failure is logged and counted, never returned.
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
    let last = LAST_PURGE_MS.load(Ordering::Relaxed);
    let purge = now - last >= PURGE_EVERY.as_millis() as i64
        && LAST_PURGE_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
    let retention = app.config.observability.executions_retention;
    let store = Arc::clone(&app.store);
    app.background.spawn(async move {
        if let Err(e) = store.record_execution(&execution).await {
            metrics::counter!("exai_execution_records_failed_total").increment(1);
            tracing::warn!(tool = %execution.tool, error = %e, "cannot record the tool call");
        }
        if purge {
            match store.purge_executions(now - retention.as_millis() as i64).await {
                Ok(n) => tracing::debug!(purged = n, "purged old tool executions"),
                Err(e) => tracing::warn!(error = %e, "cannot purge old tool executions"),
            }
        }
    });
}

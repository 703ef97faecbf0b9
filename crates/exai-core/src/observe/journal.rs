//! Writes finished calls to the `tool_executions` table off the reply path: queued, written in batches by at most
//! one writer at a time, with a bounded backlog. A database slower than the traffic costs rows (dropped and
//! counted), never memory; the writer stops when the queue is empty, so shutdown waits only for real work.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::store::{Execution, Store};

/// Calls waiting to be written, at most (about 200 bytes each).
pub const BACKLOG: usize = 10_000;
/// How often rows past the retention are purged.
const PURGE_EVERY_MS: i64 = 3_600_000;

#[derive(Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backlog: usize,
    state: Mutex<State>,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    rows: Vec<Execution>,
    /// A writer task is running (it takes every queued row before it stops).
    writing: bool,
    /// When rows were last purged (Unix ms; 0: not yet in this process).
    last_purge_ms: i64,
}

impl Default for Journal {
    fn default() -> Self {
        Self::with_backlog(BACKLOG)
    }
}

impl Journal {
    pub fn with_backlog(backlog: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                backlog,
                state: Mutex::default(),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Rows dropped because the backlog was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Queues `row` for `store`, starting a writer on `tracker` when none runs; rows older than `retention`, lapsed
    /// conversations and lapsed shared records are purged on the first write and then hourly. Never waits.
    pub fn record(&self, row: Execution, store: &Arc<dyn Store>, tracker: &TaskTracker, retention: Duration) {
        let start = {
            let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.rows.len() >= self.inner.backlog {
                drop(state);
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("exai_execution_records_dropped_total").increment(1);
                return;
            }
            state.rows.push(row);
            !std::mem::replace(&mut state.writing, true)
        };
        if start {
            let (inner, store) = (Arc::clone(&self.inner), Arc::clone(store));
            tracker.spawn(write(inner, store, retention));
        }
    }
}

/// Writes batches until the queue is empty.
async fn write(inner: Arc<Inner>, store: Arc<dyn Store>, retention: Duration) {
    loop {
        let (batch, purge_before) = {
            let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.rows.is_empty() {
                state.writing = false;
                return;
            }
            let batch = std::mem::take(&mut state.rows);
            let now = batch.last().map_or(0, |r| r.at_ms);
            let purge = now - state.last_purge_ms >= PURGE_EVERY_MS;
            if purge {
                state.last_purge_ms = now;
            }
            (batch, purge.then(|| now - retention.as_millis() as i64))
        };
        if let Err(e) = store.record_executions(&batch).await {
            metrics::counter!("exai_execution_records_failed_total").increment(batch.len() as u64);
            tracing::warn!(rows = batch.len(), error = %e, "cannot record tool calls");
        }
        if let Some(before) = purge_before {
            match store.purge_executions(before).await {
                Ok(n) => tracing::debug!(purged = n, "purged old tool executions"),
                Err(e) => tracing::warn!(error = %e, "cannot purge old tool executions"),
            }
            // Lapsed conversations and shared records (sessions, kept results, tasks) go at the same pace.
            let now = batch.last().map_or(0, |r| r.at_ms);
            if let Err(e) = store.purge_expired(now).await {
                tracing::warn!(error = %e, "cannot purge lapsed conversations");
            }
            if let Err(e) = store.purge_shared(now).await {
                tracing::warn!(error = %e, "cannot purge lapsed shared records");
            }
        }
    }
}

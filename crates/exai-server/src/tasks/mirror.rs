//! Mirrors one running task's state to its shared record: one writer per task, so writes land in order; a running
//! state at most once per [`WRITE_EVERY`], the final state at once; waiters wait a bounded time, never a store.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exai_core::store::Store;
use rmcp::model::{CallToolResult, DetailedTask, TaskPayload};
use rmcp::task_manager::{TaskExit, TaskManager, current_timestamp};
use tokio::sync::watch;

use super::record::{TASK_SCOPE, TaskRecord, object, same_state};

/// At most one write of a running task's state this often (status messages change with every heartbeat).
const WRITE_EVERY: Duration = Duration::from_secs(1);
/// The longest a store call may take before it counts as failed.
pub const STORE_WAIT: Duration = Duration::from_secs(5);

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Counts and logs a failed store call of the shared task records (`operation`: write, read, signal, poll).
pub fn failed(operation: &'static str, task: &str, error: &dyn std::fmt::Display) {
    metrics::counter!("exai_task_records_failed_total", "operation" => operation).increment(1);
    tracing::warn!(task, operation, %error, "shared task record");
}

/// The latest state to write, numbered.
#[derive(Default)]
struct Pending {
    version: u64,
    task: Option<DetailedTask>,
}

impl Pending {
    fn finished(&self) -> bool {
        self.task.as_ref().is_some_and(|t| t.status().is_terminal())
    }
}

/// The handle of one task's writer. Dropping every clone lets the writer finish what it has and stop.
#[derive(Clone)]
pub struct Mirror {
    id: Arc<str>,
    pending: Arc<watch::Sender<Pending>>,
    written: watch::Receiver<u64>,
}

impl Mirror {
    /// Starts the writer of task `id` whose record carries `owner`, `session` and `created_ms`.
    pub fn start(store: Arc<dyn Store>, id: &str, owner: String, session: Option<String>, created_ms: i64) -> Self {
        let (pending, rx) = watch::channel(Pending::default());
        let (written_tx, written) = watch::channel(0);
        let record = Record {
            store,
            id: id.to_owned(),
            owner,
            session,
            created_ms,
        };
        tokio::spawn(record.write_loop(rx, written_tx));
        Self {
            id: id.into(),
            pending: Arc::new(pending),
            written,
        }
    }

    /// Queues `task` for writing unless it says what was last queued or the final state is already queued (a
    /// late snapshot must never overwrite the end); returns its number when queued.
    pub fn publish(&self, task: DetailedTask) -> Option<u64> {
        let mut queued = None;
        self.pending.send_if_modified(|p| {
            if p.finished() || p.task.as_ref().is_some_and(|last| same_state(last, &task)) {
                return false;
            }
            p.version += 1;
            p.task = Some(task);
            queued = Some(p.version);
            true
        });
        queued
    }

    /// Waits until state number `version` was written (or its write failed), at most `bound`.
    pub async fn written(&self, version: u64, bound: Duration) {
        let mut written = self.written.clone();
        if tokio::time::timeout(bound, written.wait_for(|w| *w >= version))
            .await
            .is_err()
        {
            tracing::warn!(task = %self.id, "shared task record not written within {bound:?}; going on");
        }
    }

    /// Writes the state `outcome` gives the task before rmcp records it locally (at most `bound`), so no replica
    /// reads the task as running once its holder answers it finished.
    pub async fn settle(&self, manager: &TaskManager, outcome: &Result<CallToolResult, TaskExit>, bound: Duration) {
        let Ok(now) = manager.get_task(&self.id) else {
            return;
        };
        let task = if now.status().is_terminal() {
            now
        } else {
            let payload = match outcome {
                Ok(result) => TaskPayload::Completed { result: object(result) },
                Err(TaskExit::Cancelled) => TaskPayload::Cancelled,
                Err(TaskExit::Error(error)) => TaskPayload::Failed { error: object(error) },
            };
            let mut task = now.task;
            task.last_updated_at = current_timestamp();
            DetailedTask::new(task, payload)
        };
        if let Some(version) = self.publish(task) {
            self.written(version, bound).await;
        }
    }
}

/// What the writer needs to put a task's record.
struct Record {
    store: Arc<dyn Store>,
    id: String,
    owner: String,
    session: Option<String>,
    created_ms: i64,
}

impl Record {
    async fn write_loop(self, mut pending: watch::Receiver<Pending>, written: watch::Sender<u64>) {
        let mut last = 0;
        loop {
            let (version, task) = {
                let p = pending.borrow_and_update();
                (p.version, p.task.clone())
            };
            if version > last {
                let finished = task.as_ref().is_some_and(|t| t.status().is_terminal());
                if let Some(task) = task {
                    self.put(task).await;
                }
                last = version;
                let _ = written.send(last);
                if finished {
                    return;
                }
                // The next running state waits its turn; the final state does not.
                tokio::select! {
                    () = tokio::time::sleep(WRITE_EVERY) => {}
                    _ = pending.wait_for(Pending::finished) => {}
                }
            } else if pending.changed().await.is_err() {
                return;
            }
        }
    }

    async fn put(&self, task: DetailedTask) {
        let record = TaskRecord {
            owner: self.owner.clone(),
            session: self.session.clone(),
            created_ms: self.created_ms,
            task,
        };
        let (expires, body) = (record.expires_at_ms(now_ms()), record.encode());
        let put = self.store.put_shared(TASK_SCOPE, &self.id, &body, expires);
        match tokio::time::timeout(STORE_WAIT, put).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed("write", &self.id, &e),
            Err(_) => failed("write", &self.id, &"timed out"),
        }
    }
}

//! Tasks shared by the replicas of one store: reads another replica's task record, leaves it signals (cancel,
//! input responses), and while this replica runs tasks, polls the signals left for it and mirrors their states.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use exai_core::store::Store;
use rmcp::ErrorData;
use rmcp::task_manager::TaskManager;
use tokio_util::sync::CancellationToken;

use super::mirror::{Mirror, STORE_WAIT, failed, now_ms};
use super::record::{Signal, TASK_SCOPE, TaskRecord, signal_scope};

/// How often a replica running tasks takes the signals left for it and looks for state changes to mirror: one
/// store query per interval, and only while it runs tasks.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// This replica's side of the shared tasks. Cheap to clone.
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// A random id for this process: the owner named in its tasks' records, the scope of its signals.
    replica: String,
    manager: TaskManager,
    stop: CancellationToken,
    running: Mutex<Running>,
}

/// The tasks this replica runs, and whether the poller is on.
#[derive(Default)]
struct Running {
    tasks: HashMap<String, Mirror>,
    polling: bool,
}

impl Shared {
    pub fn new(store: Arc<dyn Store>, manager: TaskManager, stop: CancellationToken) -> Self {
        let inner = Inner {
            store,
            replica: uuid::Uuid::new_v4().to_string(),
            manager,
            stop,
            running: Mutex::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Starts mirroring task `id` (run here, started in `session`) and polling, if it is not on yet.
    pub fn track(&self, id: &str, session: Option<String>, created_ms: i64) -> Mirror {
        let inner = &self.inner;
        let mirror = Mirror::start(Arc::clone(&inner.store), id, inner.replica.clone(), session, created_ms);
        let mut running = inner.running();
        running.tasks.insert(id.to_owned(), mirror.clone());
        if !running.polling {
            running.polling = true;
            tokio::spawn(Arc::clone(inner).poll_loop());
        }
        mirror
    }

    /// The record of task `id`, if a live one exists.
    pub async fn record(&self, id: &str) -> Result<Option<TaskRecord>, ErrorData> {
        let read = self.inner.store.shared(TASK_SCOPE, id, now_ms());
        let record = match tokio::time::timeout(STORE_WAIT, read).await {
            Ok(Ok(record)) => record,
            Ok(Err(e)) => return Err(unavailable("read", id, &e)),
            Err(_) => return Err(unavailable("read", id, &"timed out")),
        };
        let Some(record) = record else { return Ok(None) };
        match TaskRecord::decode(&record.body) {
            Ok(task) => Ok(Some(task)),
            Err(e) => Err(unavailable("read", id, &e)),
        }
    }

    /// Leaves `signal` for the replica running the task of `record`; it acts on it within [`POLL_EVERY`].
    pub async fn signal(&self, record: &TaskRecord, signal: Signal) -> Result<(), ErrorData> {
        let (scope, name, body) = (signal_scope(&record.owner), signal.name(), signal.encode());
        let expires = record.expires_at_ms(now_ms());
        let put = self.inner.store.put_shared(&scope, &name, &body, expires);
        match tokio::time::timeout(STORE_WAIT, put).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable("signal", signal.task(), &e)),
            Err(_) => Err(unavailable("signal", signal.task(), &"timed out")),
        }
    }
}

impl Inner {
    fn running(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Until this replica runs no task (or stops): acts on the signals left for it, and queues each running task's
    /// state for its mirror when it changed (status message, input requests; the final state is queued by the
    /// task itself, this only catches a task rmcp ended on its own, at its TTL).
    async fn poll_loop(self: Arc<Self>) {
        let scope = signal_scope(&self.replica);
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = self.stop.cancelled() => return,
            }
            let tasks: Vec<(String, Mirror)> = {
                let mut running = self.running();
                if running.tasks.is_empty() {
                    running.polling = false;
                    return;
                }
                running.tasks.iter().map(|(id, m)| (id.clone(), m.clone())).collect()
            };
            match tokio::time::timeout(STORE_WAIT, self.store.take_shared(&scope, now_ms())).await {
                Ok(Ok(signals)) => signals.iter().for_each(|s| self.act(&s.body)),
                Ok(Err(e)) => failed("poll", "", &e),
                Err(_) => failed("poll", "", &"timed out"),
            }
            for (id, mirror) in tasks {
                let state = self.manager.get_task(&id).ok();
                let done = state.as_ref().is_none_or(|s| s.status().is_terminal());
                if let Some(state) = state {
                    mirror.publish(state);
                }
                if done {
                    self.running().tasks.remove(&id);
                }
            }
        }
    }

    /// Acts on one signal as if its request had come here (the sender checked the caller may see the task).
    fn act(&self, body: &str) {
        let outcome = match Signal::decode(body) {
            Ok(Signal::Cancel { task }) => self.manager.cancel_task(&task).map(|()| task),
            Ok(Signal::Update { task, responses }) => self.manager.update_task(&task, responses).map(|()| task),
            Err(e) => {
                tracing::warn!(%e, "unreadable task signal skipped");
                return;
            }
        };
        match outcome {
            Ok(task) => tracing::info!(%task, "task signal from another replica applied"),
            // The task ended and was forgotten here meanwhile: nothing left to do.
            Err(e) => tracing::debug!(error = %e.message, "task signal for a task no longer here"),
        }
    }
}

/// The error for a request the shared records could not answer: the task may exist on another replica, so it is
/// not "unknown".
fn unavailable(operation: &'static str, task: &str, error: &dyn std::fmt::Display) -> ErrorData {
    failed(operation, task, error);
    ErrorData::internal_error(
        format!("task {task}: the shared task records are out of reach ({operation}: {error}); try again"),
        None,
    )
}

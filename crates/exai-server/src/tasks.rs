//! The MCP Tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`): a model-backed `tools/call` from a client
//! that declares the extension runs in the background; `tasks/get` polls it and `tasks/cancel` drops its work.
//! Children: `record` (a task in the shared records), `mirror` (writes one task's state there), `shared` (reads
//! other replicas' tasks, signals them, polls this replica's signals).

mod mirror;
mod record;
mod shared;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use exai_core::store::Store;
use exai_core::tools::{ProgressSink, Tier, ToolSpec};
use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::model::{
    CallToolResponse, CallToolResult, ClientCapabilities, CreateTaskResult, DetailedTask, InputResponses, JsonObject,
    ServerCapabilities, TASKS_EXTENSION_ID, TaskPayload,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use rmcp::{ErrorData, RoleServer};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::record::{Signal, TaskRecord};
use self::shared::Shared;

/// How long a task stays retrievable beyond its deadline. rmcp keeps a finished task for one TTL (deadline plus
/// this) after it ends, then forgets it, so memory stays bounded by what was started in that window.
const RETENTION: Duration = Duration::from_secs(600);
/// The `pollIntervalMs` suggested to clients.
const POLL_INTERVAL_MS: u64 = 500;
/// The longest status message kept from a progress report.
const STATUS_CHARS: usize = 200;
/// The longest a task handle waits for the task's shared record to be written (a slow store delays the handle by
/// at most this; without the record another replica would answer "unknown task" for a moment).
const START_WAIT: Duration = Duration::from_secs(1);
/// The longest a finished task waits for its final state to be written before rmcp records it locally.
const FINAL_WAIT: Duration = Duration::from_secs(2);

/// Whether a tool may run as a task: it calls a model (open world) and is not a tier-1 quick answer.
pub fn eligible(spec: &ToolSpec) -> bool {
    spec.hints.open_world && spec.tier != Tier::Tier1
}

/// Whether the request's client declared the tasks extension (in the request's `_meta` or at `initialize`).
/// SEP-2663 has no per-call flag: a declaring client accepts a task handle from any task-capable tool.
pub fn requested(context: &RequestContext<RoleServer>) -> bool {
    context.client_capabilities().is_some_and(|c| c.supports_tasks())
}

/// Adds the extension to advertised capabilities.
pub fn advertise(capabilities: &mut ServerCapabilities) {
    capabilities
        .extensions
        .get_or_insert_with(Default::default)
        .insert(TASKS_EXTENSION_ID.to_owned(), JsonObject::new());
}

/// The `-32021` answer for a tool that only runs as a task, called by a client without the extension.
pub fn required() -> ErrorData {
    ErrorData::missing_required_client_capability(ClientCapabilities::builder().enable_tasks().build())
}

/// A progress sink that turns each report's message into the task's status message.
pub fn status_sink(task: TaskContext) -> ProgressSink {
    ProgressSink::new(move |p| {
        if let Some(message) = p.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            task.set_status_message(clip(message));
        }
        futures::future::ready(()).boxed()
    })
}

fn clip(message: &str) -> String {
    match message.char_indices().nth(STATUS_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

/// The tasks of one server: shared by every HTTP session and stateless request, one per stdio client. Running work
/// stops when the token given to [`Tasks::new`] is cancelled (shutdown) or the last clone is dropped. Built with
/// [`Tasks::shared`], every task is also visible from the other replicas of the same store ([`shared`]).
#[derive(Clone)]
pub struct Tasks {
    manager: TaskManager,
    owners: Arc<Mutex<HashMap<String, Owner>>>,
    /// The other replicas' view, for HTTP; `None` keeps tasks in this process only (stdio, WebSocket).
    shared: Option<Shared>,
    stop: CancellationToken,
    _stop_on_drop: Arc<DropGuard>,
}

/// Who may see a task.
struct Owner {
    /// The legacy HTTP session (`Mcp-Session-Id`) that started it; `None` for stateless requests and stdio, where
    /// the unguessable task id is the only handle.
    session: Option<String>,
    /// After this rmcp has forgotten the task too.
    forget_at: Instant,
}

impl Tasks {
    /// Tasks held in this process only.
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            manager: TaskManager::new(),
            owners: Arc::default(),
            shared: None,
            _stop_on_drop: Arc::new(stop.clone().drop_guard()),
            stop,
        }
    }

    /// Tasks every replica sharing `store` can poll, cancel and answer.
    pub fn shared(stop: CancellationToken, store: Arc<dyn Store>) -> Self {
        let mut tasks = Self::new(stop);
        tasks.shared = Some(Shared::new(store, tasks.manager.clone(), tasks.stop.clone()));
        tasks
    }

    /// Starts `work` in the background under `limit` (its deadline, enforced by the work itself) and returns the
    /// task handle. `work` gets the task's handle (status messages, input requests) and a token cancelled when the
    /// task ends or the server stops. `tasks/cancel` or shutdown drops its future, closing whatever it had open.
    /// Shared, the handle goes back once the task's record is written (or after [`START_WAIT`]).
    pub async fn start<W>(
        &self,
        context: &RequestContext<RoleServer>,
        limit: Duration,
        status: impl Into<String>,
        work: W,
    ) -> CallToolResponse
    where
        W: FnOnce(TaskContext, CancellationToken) -> BoxFuture<'static, Result<CallToolResult, TaskExit>>,
    {
        let ttl = limit + RETENTION;
        let options = TaskOptions::new()
            .with_ttl_ms(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .with_poll_interval_ms(POLL_INTERVAL_MS)
            .with_status_message(status);
        let (stop, manager, owner) = (self.stop.clone(), self.manager.clone(), session(context));
        let created_ms = mirror::now_ms();
        let mut started = None;
        let task = self.manager.spawn(options, |task| {
            let mirror = self
                .shared
                .as_ref()
                .map(|s| s.track(task.task_id(), owner.clone(), created_ms));
            started.clone_from(&mirror);
            let cancel = stop.child_token();
            let running = work(task.clone(), cancel.clone());
            async move {
                let _cancel_on_exit = cancel.clone().drop_guard();
                let outcome = tokio::select! {
                    outcome = running => outcome,
                    () = task.cancelled() => Err(TaskExit::Cancelled),
                    () = cancel.cancelled() => Err(TaskExit::Cancelled),
                };
                if let Some(mirror) = mirror {
                    mirror.settle(&manager, &outcome, FINAL_WAIT).await;
                }
                outcome
            }
            .boxed()
        });
        let now = Instant::now();
        {
            let mut owners = self.owners();
            owners.retain(|_, o| o.forget_at > now);
            let owner = Owner {
                session: owner,
                forget_at: now + ttl * 2 + Duration::from_secs(60),
            };
            owners.insert(task.task_id.clone(), owner);
        }
        if let Some(mirror) = started
            && let Some(version) = mirror.publish(DetailedTask::new(task.clone(), TaskPayload::Working))
        {
            mirror.written(version, START_WAIT).await;
        }
        tracing::info!(task = %task.task_id, "task started");
        CallToolResponse::Task(CreateTaskResult::new(task))
    }

    /// `tasks/get`: the task's status, with its result or error once it has one.
    pub async fn get(&self, task_id: &str, context: &RequestContext<RoleServer>) -> Result<DetailedTask, ErrorData> {
        if let Some(record) = self.elsewhere(task_id, context).await? {
            return Ok(record.view(mirror::now_ms()));
        }
        self.check(task_id, context)?;
        self.manager.get_task(task_id)
    }

    /// `tasks/update`: answers to the task's input requests (unknown keys are ignored, as the spec says). For a
    /// task another replica runs, they reach it within a poll interval.
    pub async fn update(
        &self,
        task_id: &str,
        responses: InputResponses,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Some(record) = self.elsewhere(task_id, context).await? {
            return self
                .signal(
                    &record,
                    Signal::Update {
                        task: task_id.to_owned(),
                        responses,
                    },
                )
                .await;
        }
        self.check(task_id, context)?;
        self.manager.update_task(task_id, responses)
    }

    /// `tasks/cancel`: the work is dropped at once and the task settles as `cancelled` (a finished task is kept).
    /// For a task another replica runs, within a poll interval; the ack is empty either way, as the spec says.
    pub async fn cancel(&self, task_id: &str, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        if let Some(record) = self.elsewhere(task_id, context).await? {
            return self
                .signal(
                    &record,
                    Signal::Cancel {
                        task: task_id.to_owned(),
                    },
                )
                .await;
        }
        self.check(task_id, context)?;
        self.manager.cancel_task(task_id)
    }

    /// The shared record of a task this replica does not hold, once the caller may see it; `None` for a task held
    /// here (or with no sharing). A task unknown here and in the records is "unknown", as ever.
    async fn elsewhere(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<TaskRecord>, ErrorData> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        if self.owners().contains_key(task_id) {
            return Ok(None);
        }
        match shared.record(task_id).await? {
            Some(record) if record.session.is_none() || record.session == session(context) => Ok(Some(record)),
            _ => Err(unknown(task_id)),
        }
    }

    /// Leaves `signal` for the task's holder, unless the task has finished (then, as here, nothing changes).
    async fn signal(&self, record: &TaskRecord, signal: Signal) -> Result<(), ErrorData> {
        match &self.shared {
            Some(shared) if !record.finished(mirror::now_ms()) => shared.signal(record, signal).await,
            _ => Ok(()),
        }
    }

    /// A task started in another legacy session is "unknown" here, exactly like one that never existed.
    fn check(&self, task_id: &str, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        match self.owners().get(task_id) {
            Some(Owner {
                session: Some(owner), ..
            }) if session(context).as_deref() != Some(owner.as_str()) => Err(unknown(task_id)),
            _ => Ok(()),
        }
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, Owner>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// rmcp's answer for a task it does not hold (`-32602`).
fn unknown(task_id: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown task: {task_id}"), None)
}

/// The legacy HTTP session of a request (2025-era Streamable HTTP), if any.
fn session(context: &RequestContext<RoleServer>) -> Option<String> {
    let parts = context.extensions.get::<http::request::Parts>()?;
    let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
    Some(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_status_messages_are_clipped_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(STATUS_CHARS + 5);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), STATUS_CHARS + 1);
        assert!(clipped.ends_with('…'));
    }

    #[test]
    fn advertising_adds_the_extension_next_to_tools() {
        let mut caps = ServerCapabilities::builder().enable_tools().build();
        advertise(&mut caps);
        let value = serde_json::to_value(&caps).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"tools": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}})
        );
        assert!(caps.supports_tasks());
    }
}

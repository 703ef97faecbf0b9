//! How a task looks in the store's shared records: the `task` record (its holder, its session and its state as
//! `tasks/get` answers it) and the signals (`cancel`, input responses) other replicas leave for the holder.

use rmcp::ErrorData;
use rmcp::model::{DetailedTask, InputResponses, JsonObject, TaskPayload};
use serde::{Deserialize, Serialize};

/// The scope of task records; the name is the task id.
pub const TASK_SCOPE: &str = "task";

/// The scope of the signals left for the replica `replica` (it takes them all at once).
pub fn signal_scope(replica: &str) -> String {
    format!("task-signal:{replica}")
}

/// One task as every replica sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The replica running the task (the one that takes its signals).
    pub owner: String,
    /// The legacy HTTP session that started it, if any: the only session allowed to see it.
    pub session: Option<String>,
    /// When it started, Unix ms (its TTL counts from here).
    pub created_ms: i64,
    /// The answer to `tasks/get` when it was written.
    pub task: DetailedTask,
}

impl TaskRecord {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a task record always serializes")
    }

    pub fn decode(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }

    /// The task's TTL in ms (rmcp's `ttlMs`); exai always sets one.
    fn ttl_ms(&self) -> i64 {
        self.task
            .task
            .ttl_ms
            .map_or(i64::MAX, |t| i64::try_from(t).unwrap_or(i64::MAX))
    }

    /// When the record lapses: a running task's after two TTLs (rmcp keeps a task that long at most), a finished
    /// one's one TTL after `now_ms` (rmcp keeps a finished task one TTL after it ends).
    pub fn expires_at_ms(&self, now_ms: i64) -> i64 {
        let base = if self.task.status().is_terminal() {
            now_ms
        } else {
            self.created_ms.saturating_add(self.ttl_ms())
        };
        base.saturating_add(self.ttl_ms())
    }

    /// The task as `tasks/get` answers at `now_ms`: what was written, except that a task still running past its
    /// TTL has failed, as rmcp marks it on the holder (or its holder is gone and it will never finish).
    pub fn view(&self, now_ms: i64) -> DetailedTask {
        let overdue = now_ms >= self.created_ms.saturating_add(self.ttl_ms());
        if self.task.status().is_terminal() || !overdue {
            return self.task.clone();
        }
        let error = ErrorData::internal_error("task expired: TTL elapsed before completion", None);
        DetailedTask::new(self.task.task.clone(), TaskPayload::Failed { error: object(&error) })
    }

    /// Whether the task has finished (as seen at `now_ms`).
    pub fn finished(&self, now_ms: i64) -> bool {
        self.view(now_ms).status().is_terminal()
    }
}

/// Whether `a` and `b` would answer `tasks/get` the same, apart from `lastUpdatedAt`.
pub fn same_state(a: &DetailedTask, b: &DetailedTask) -> bool {
    a.status() == b.status() && a.task.status_message == b.task.status_message && a.payload == b.payload
}

/// A JSON object of `value` (rmcp inlines results and errors as objects).
pub fn object(value: &impl Serialize) -> JsonObject {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => JsonObject::new(),
    }
}

/// What a replica asks the holder of a task to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Signal {
    /// `tasks/cancel`.
    Cancel { task: String },
    /// `tasks/update`'s input responses.
    Update { task: String, responses: InputResponses },
}

impl Signal {
    pub fn task(&self) -> &str {
        match self {
            Signal::Cancel { task } | Signal::Update { task, .. } => task,
        }
    }

    /// A name unique to this signal (many may wait for one task), sorting by task.
    pub fn name(&self) -> String {
        let kind = match self {
            Signal::Cancel { .. } => "cancel",
            Signal::Update { .. } => "update",
        };
        format!("{}:{kind}:{}", self.task(), uuid::Uuid::new_v4())
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a task signal always serializes")
    }

    pub fn decode(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{CallToolResult, ContentBlock, Task, TaskStatus};
    use serde_json::json;

    use super::*;

    const TTL: u64 = 60_000;

    fn record(payload: TaskPayload) -> TaskRecord {
        let task = Task::new(
            "t-1",
            TaskStatus::Working,
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:01Z",
        )
        .with_ttl_ms(TTL)
        .with_poll_interval_ms(500)
        .with_status_message("waiting for glm-4.6 (3 s)");
        TaskRecord {
            owner: "replica-a".into(),
            session: Some("s-1".into()),
            created_ms: 1_000_000,
            task: DetailedTask::new(task, payload),
        }
    }

    #[test]
    fn a_record_round_trips_with_the_task_in_its_wire_shape() {
        let result = CallToolResult::success(vec![ContentBlock::text("done")]);
        let done = record(TaskPayload::Completed {
            result: object(&result),
        });
        let body = done.encode();
        assert_eq!(TaskRecord::decode(&body).unwrap(), done);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["owner"], "replica-a");
        assert_eq!(value["session"], "s-1");
        // The task is stored exactly as `tasks/get` puts it on the wire: status and payload flattened.
        assert_eq!(value["task"], serde_json::to_value(&done.task).unwrap());
        assert_eq!(value["task"]["status"], "completed");
        assert_eq!(value["task"]["result"]["content"][0]["text"], "done");
        assert_eq!(value["task"]["statusMessage"], "waiting for glm-4.6 (3 s)");
        assert_eq!(value["task"]["ttlMs"], TTL);
    }

    #[test]
    fn every_payload_round_trips() {
        let ask = json!({"method": "elicitation/create", "params": {"message": "Sure?",
            "requestedSchema": {"type": "object", "properties": {}}}});
        let inputs = [("confirm".to_owned(), serde_json::from_value(ask).unwrap())].into();
        let error = object(&ErrorData::internal_error("boom", None));
        for payload in [
            TaskPayload::Working,
            TaskPayload::InputRequired { input_requests: inputs },
            TaskPayload::Failed { error },
            TaskPayload::Cancelled,
        ] {
            let r = record(payload);
            assert_eq!(TaskRecord::decode(&r.encode()).unwrap(), r);
        }
        assert!(TaskRecord::decode("{\"owner\": 1}").is_err());
    }

    #[test]
    fn a_running_task_lapses_after_two_ttls_and_a_finished_one_a_ttl_after_it_ends() {
        let running = record(TaskPayload::Working);
        assert_eq!(running.expires_at_ms(1_000_500), 1_000_000 + 2 * TTL as i64);
        let cancelled = record(TaskPayload::Cancelled);
        assert_eq!(cancelled.expires_at_ms(1_030_000), 1_030_000 + TTL as i64);
    }

    #[test]
    fn a_running_task_past_its_ttl_reads_as_failed() {
        let running = record(TaskPayload::Working);
        let before = 1_000_000 + TTL as i64 - 1;
        assert_eq!(running.view(before), running.task);
        assert!(!running.finished(before));
        let after = running.view(before + 1);
        assert_eq!(after.status(), TaskStatus::Failed);
        let TaskPayload::Failed { error } = &after.payload else {
            panic!("{after:?}")
        };
        assert!(error["message"].as_str().unwrap().contains("TTL elapsed"), "{error:?}");
        assert_eq!(after.task.task_id, "t-1");
        // A finished task stays as it finished.
        let done = record(TaskPayload::Cancelled);
        assert_eq!(done.view(before + 10 * TTL as i64), done.task);
    }

    #[test]
    fn same_state_ignores_only_the_update_time() {
        let a = record(TaskPayload::Working).task;
        let mut b = a.clone();
        b.task.last_updated_at = "2026-01-01T00:00:09Z".into();
        assert!(same_state(&a, &b));
        b.task.status_message = Some("waiting for glm-4.6 (4 s)".into());
        assert!(!same_state(&a, &b));
        assert!(!same_state(&a, &record(TaskPayload::Cancelled).task));
    }

    #[test]
    fn signals_round_trip_and_their_names_are_unique_per_task() {
        let cancel = Signal::Cancel { task: "t-1".into() };
        let update = Signal::Update {
            task: "t-1".into(),
            responses: [("confirm".to_owned(), json!({"action": "accept"}))].into(),
        };
        for s in [&cancel, &update] {
            assert_eq!(&Signal::decode(&s.encode()).unwrap(), s);
            assert_eq!(s.task(), "t-1");
        }
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&cancel.encode()).unwrap(),
            json!({"kind": "cancel", "task": "t-1"})
        );
        let (a, b) = (cancel.name(), cancel.name());
        assert!(a.starts_with("t-1:cancel:") && a != b, "{a} {b}");
        assert_eq!(signal_scope("r1"), "task-signal:r1");
    }
}

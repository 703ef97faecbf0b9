//! SEP-2663 tasks fixtures: `greet` (sync) and the task tools `slow_compute`, `failing_job`, `protocol_error_job`,
//! `confirm_delete`, `multi_input` and `test_tool_with_task`, run through exai's own task store.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputResponses, Tool};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit};
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::mrtr::{elicitation, elicited, input_required};
use super::{no_args, text_result, tool};
use crate::tasks::{self, Tasks};

/// The deadline of a fixture task.
const LIMIT: Duration = Duration::from_secs(120);

pub fn tools() -> Vec<Tool> {
    let string = |name: &str| json!({"type": "object", "properties": {name: {"type": "string"}}, "required": [name]});
    let compute = json!({"type": "object", "properties": {
        "seconds": {"type": "number", "minimum": 0}, "label": {"type": "string"}}});
    vec![
        tool(
            "greet",
            "Conformance fixture: says hello (never a task).",
            string("name"),
        ),
        tool(
            "slow_compute",
            "Conformance fixture: sleeps `seconds`, as a task.",
            compute,
        ),
        tool(
            "failing_job",
            "Conformance fixture: a task ending in a tool error.",
            no_args(),
        ),
        tool(
            "protocol_error_job",
            "Conformance fixture: a task ending in a protocol error.",
            no_args(),
        ),
        tool(
            "confirm_delete",
            "Conformance fixture: a task asking for confirmation.",
            string("filename"),
        ),
        tool(
            "multi_input",
            "Conformance fixture: a task asking two questions at once.",
            no_args(),
        ),
        tool(
            "test_tool_with_task",
            "Conformance fixture: MRTR round, then a task.",
            no_args(),
        ),
    ]
}

pub async fn call(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
    tasks: &Tasks,
) -> Option<Result<CallToolResponse, ErrorData>> {
    let args = request.arguments.clone().unwrap_or_default();
    let text = |key: &str| args.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let fixture = match request.name.as_ref() {
        "greet" => return Some(text_result(format!("Hello, {}!", text("name")))),
        "test_tool_with_task" => return Some(mrtr_then_task(request, context, tasks).await),
        "slow_compute" => Fixture::SlowCompute,
        "failing_job" => Fixture::Failing,
        "protocol_error_job" => Fixture::ProtocolError,
        "confirm_delete" => Fixture::ConfirmDelete,
        "multi_input" => Fixture::MultiInput,
        _ => return None,
    };
    let seconds = args
        .get("seconds")
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .clamp(0.0, 600.0);
    let (label, filename) = (text("label"), text("filename"));
    if !tasks::requested(context) {
        // Only `slow_compute` also runs synchronously; the others need the extension (-32021).
        let Fixture::SlowCompute = fixture else {
            return Some(Err(tasks::required()));
        };
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
            () = context.ct.cancelled() => return Some(text_result("slow_compute cancelled")),
        }
        return Some(Ok(text_done(format!("computed {label} after {seconds} s")).into()));
    }
    let status = format!("{}: started", request.name);
    let work = move |task: TaskContext, _cancel| fixture.run(task, seconds, label, filename);
    Some(Ok(tasks.start(context, LIMIT, status, work).await))
}

/// The task fixtures.
#[derive(Clone, Copy)]
enum Fixture {
    /// Sleeps `seconds`, then answers (settles `cancelled` when cancelled first).
    SlowCompute,
    /// Ends `completed` with `isError: true`.
    Failing,
    /// Ends `failed` with a JSON-RPC error.
    ProtocolError,
    /// Parks `input_required` on one elicitation.
    ConfirmDelete,
    /// Parks `input_required` on two elicitations at once.
    MultiInput,
}

impl Fixture {
    fn run(
        self,
        task: TaskContext,
        seconds: f64,
        label: String,
        filename: String,
    ) -> BoxFuture<'static, Result<CallToolResult, TaskExit>> {
        match self {
            Fixture::SlowCompute => async move {
                tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                Ok(text_done(format!("computed {label} after {seconds} s")))
            }
            .boxed(),
            Fixture::Failing => async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let text = ContentBlock::text("failing_job failed, as it always does");
                Ok(CallToolResult::error(vec![text]))
            }
            .boxed(),
            Fixture::ProtocolError => async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let error = ErrorData::internal_error("protocol_error_job: a simulated internal failure", None);
                Err(TaskExit::Error(error))
            }
            .boxed(),
            Fixture::ConfirmDelete => async move {
                let answer = task.request_input("confirm", ask(&format!("Delete {filename}?"), "confirm", "boolean")?);
                let answer = answer.await?;
                let yes = answer["action"] == "accept" && answer["content"]["confirm"] == true;
                Ok(text_done(format!(
                    "{filename} {}",
                    if yes { "deleted" } else { "kept" }
                )))
            }
            .boxed(),
            Fixture::MultiInput => async move {
                let (who, sure) = (
                    ask("Your name?", "name", "string")?,
                    ask("Sure?", "confirm", "boolean")?,
                );
                let (who, sure) = futures::join!(task.request_input("name", who), task.request_input("confirm", sure));
                let (who, sure) = (who?, sure?);
                let text = format!(
                    "name: {}, confirm: {}",
                    who["content"]["name"], sure["content"]["confirm"]
                );
                Ok(text_done(text))
            }
            .boxed(),
        }
    }
}

/// Round 1 asks for a name (MRTR `input_required`); round 2, carrying the answer, becomes a task greeting it.
async fn mrtr_then_task(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
    tasks: &Tasks,
) -> Result<CallToolResponse, ErrorData> {
    if !tasks::requested(context) {
        return Err(tasks::required());
    }
    let empty = InputResponses::new();
    let responses = request.input_responses.as_ref().unwrap_or(&empty);
    let Some(name) = elicited(responses, "user_name", "name")? else {
        let ask = elicitation("What is your name?", "name", "string");
        return Ok(input_required(vec![("user_name", ask)], None)?.into());
    };
    let work = move |_task, _cancel| async move { Ok(text_done(format!("Hello, {name}!"))) }.boxed();
    Ok(tasks.start(context, LIMIT, "test_tool_with_task: started", work).await)
}

fn ask(message: &str, field: &str, kind: &str) -> Result<rmcp::model::InputRequest, TaskExit> {
    Ok(parse!(elicitation(message, field, kind))?)
}

fn text_done(text: String) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

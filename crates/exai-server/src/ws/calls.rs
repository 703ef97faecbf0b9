//! One `call_tool`: runs through the same path as MCP calls (`handler::execute`: the tier's budget, the session
//! and global permits, cancellation), reports progress as `progress` frames and ends with exactly one final frame.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use exai_core::app::App;
use exai_core::error::ToolError;
use exai_core::tools::{JsonObject, Progress, ProgressSink};
use futures::FutureExt;
use serde_json::Value;

use super::frames;
use super::session::{Kind, Session};
use crate::{handler, rescue};

/// Starts a call in its own task, or answers a connection-level error when `request_id` is already running.
pub(super) fn start(app: &Arc<App>, session: &Arc<Session>, request_id: Value, name: String, args: JsonObject) {
    let key = request_id.to_string();
    let Some(cancel) = session.begin_call(&key) else {
        let message = format!("request_id {key} is already used by a running call of this session");
        session.deliver(frames::error(None, "VALIDATION_ERROR", &message), Kind::Live);
        return;
    };
    let app = Arc::clone(app);
    let session = Arc::clone(session);
    tokio::spawn(async move {
        let outcome = match app.tools.get(&name).cloned() {
            None => Err(ToolError::UnknownTool {
                available: app.tools.names().join(", "),
                name,
            }),
            Some(tool) => {
                let limit = handler::deadline(&app, tool.spec().tier);
                let progress = progress_sink(&session, &request_id);
                let work = handler::execute(
                    Arc::clone(&app),
                    tool,
                    args,
                    limit,
                    session.limit_key(),
                    progress,
                    cancel,
                );
                AssertUnwindSafe(work)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(ToolError::Internal(format!("the `{name}` call panicked"))))
            }
        };
        session.end_call(&key);
        session.deliver(frames::stream_complete(&request_id), Kind::Keep);
        let last = match outcome {
            Ok(out) => frames::call_tool_res(&request_id, &out),
            Err(e) => frames::error(Some(&request_id), rescue::ws_error_code(&e), &e.to_string()),
        };
        session.deliver(last, Kind::Final);
    });
}

/// Streamed answer text as `stream_chunk` frames, everything else (heartbeats, searches, retries) as `progress`.
fn progress_sink(session: &Arc<Session>, request_id: &Value) -> ProgressSink {
    let session = Arc::clone(session);
    let request_id = request_id.clone();
    ProgressSink::new(move |p: Progress| {
        let message = p.message.unwrap_or_default();
        let frame = if p.answer_text {
            frames::stream_chunk(&request_id, &message)
        } else {
            frames::progress(&request_id, p.progress, &message)
        };
        session.deliver(frame, Kind::Live);
        futures::future::ready(()).boxed()
    })
}

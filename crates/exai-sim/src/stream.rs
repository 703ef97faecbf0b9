//! Server-sent events: renders a `Plan` as `chat.completion.chunk` events plus `data: [DONE]`, and drives a
//! response body through them with the scripted delays, hangs and resets.
//!
//! Chunk shapes mirror what the providers send:
//! - every chunk: `{"id","object":"chat.completion.chunk","created","model","choices":[{"index":0,"delta":{…},
//!   "finish_reason":null}]}` (real GLM chunks omit `object`; clients must not rely on it);
//! - first chunk `delta: {"role":"assistant","content":""}`, then `reasoning_content` deltas, then `content`
//!   deltas (GLM repeats `"role":"assistant"` in every delta, as recorded from api.z.ai);
//! - the final chunk carries `finish_reason` and the usage: **GLM** top-level `usage` on that chunk, always
//!   (with `prompt_tokens_details.cached_tokens`); **Kimi** `choices[0].usage` inside the choice, always (with
//!   a top-level `cached_tokens` in it); **OpenAI** only with `stream_options.include_usage`, as an extra chunk
//!   with `choices: []`;
//! - then `data: [DONE]`.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::Family;
use crate::record::{Guard, Outcome};
use crate::reply::Plan;

/// One body piece and the delay before it.
pub(crate) type Event = (Duration, Bytes);

fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn chunk(plan: &Plan, mut delta: Value, finish_reason: Option<&str>) -> Value {
    if plan.family == Family::Glm {
        delta["role"] = json!("assistant");
    }
    json!({
        "id": plan.id,
        "object": "chat.completion.chunk",
        "created": plan.created,
        "model": plan.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

/// The whole event sequence for a streamed answer.
pub(crate) fn sse_events(plan: &Plan, malformed: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let mut inter = plan.inter.iter().copied();
    let mut next_delay = || inter.next().unwrap_or_default();

    events.push((
        plan.ttft,
        data(&chunk(plan, json!({"role": "assistant", "content": ""}), None)),
    ));
    if malformed {
        let broken = format!(
            "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"sim\n\n",
            plan.id
        );
        events.push((Duration::ZERO, Bytes::from(broken)));
    }
    for piece in &plan.reasoning_chunks {
        events.push((
            next_delay(),
            data(&chunk(plan, json!({"reasoning_content": piece}), None)),
        ));
    }
    for piece in &plan.content_chunks {
        events.push((next_delay(), data(&chunk(plan, json!({"content": piece}), None))));
    }
    if let Some(call) = &plan.tool_call {
        let mut call = call.clone();
        call["index"] = json!(0);
        events.push((next_delay(), data(&chunk(plan, json!({"tool_calls": [call]}), None))));
    }

    let final_delta = if plan.family == Family::Glm {
        json!({"content": ""})
    } else {
        json!({})
    };
    let mut last = chunk(plan, final_delta, Some(&plan.finish_reason));
    match plan.family {
        Family::Glm => last["usage"] = plan.usage_json(),
        Family::Kimi => last["choices"][0]["usage"] = plan.usage_json(),
        Family::OpenAi => {}
    }
    events.push((Duration::ZERO, data(&last)));
    if plan.family == Family::OpenAi && plan.include_usage {
        let usage_chunk = json!({
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": plan.model,
            "choices": [],
            "usage": plan.usage_json(),
        });
        events.push((Duration::ZERO, data(&usage_chunk)));
    }
    events.push((Duration::ZERO, Bytes::from_static(b"data: [DONE]\n\n")));
    events
}

/// What goes wrong part-way through a body.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    /// After this many events, go silent until shutdown.
    HangAfter(usize),
    /// After this many events, abort the connection.
    ResetAfter(usize),
}

impl Fault {
    /// The fault a script asks for, capped so the last event (`[DONE]`, or the end of the JSON) is never sent.
    pub(crate) fn from_script(script: &crate::Script, events: usize) -> Option<Fault> {
        let cap = events.saturating_sub(1);
        if let Some(n) = script.reset_after_chunks {
            Some(Fault::ResetAfter(n.min(cap)))
        } else {
            script.hang_after_chunks.map(|n| Fault::HangAfter(n.min(cap)))
        }
    }
}

struct Driver {
    events: VecDeque<Event>,
    fault: Option<Fault>,
    guard: Guard,
    shutdown: CancellationToken,
    sent: usize,
    done: bool,
}

fn cut(reason: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, reason)
}

impl Driver {
    async fn step(mut self) -> Option<(io::Result<Bytes>, Self)> {
        if self.done {
            return None;
        }
        match self.fault {
            Some(Fault::ResetAfter(n)) if self.sent >= n => {
                // Return Pending once so hyper flushes what was sent before the connection is cut.
                tokio::task::yield_now().await;
                self.done = true;
                self.guard.finish(Outcome::Aborted);
                tracing::debug!(sent = self.sent, "exai-sim: scripted connection reset");
                return Some((Err(cut("exai-sim: scripted connection reset")), self));
            }
            Some(Fault::HangAfter(n)) if self.sent >= n => {
                self.shutdown.cancelled().await;
                self.done = true;
                return Some((Err(cut("exai-sim: shutting down")), self));
            }
            _ => {}
        }
        let Some((delay, bytes)) = self.events.pop_front() else {
            self.guard.finish(Outcome::Completed);
            return None;
        };
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => {
                    self.done = true;
                    return Some((Err(cut("exai-sim: shutting down")), self));
                }
            }
        }
        self.sent += 1;
        self.guard.chunk_sent();
        Some((Ok(bytes), self))
    }
}

/// A response body that plays `events` with their delays, applying `fault`; the guard records the outcome.
pub(crate) fn body(events: Vec<Event>, fault: Option<Fault>, guard: Guard, shutdown: CancellationToken) -> Body {
    let driver = Driver {
        events: events.into(),
        fault,
        guard,
        shutdown,
        sent: 0,
        done: false,
    };
    Body::from_stream(futures::stream::unfold(driver, Driver::step))
}

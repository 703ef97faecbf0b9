//! One upstream attempt: send the request, fold the event stream into an [`Answer`], and report progress as
//! text arrives (coalesced) or, while upstream is silent, as heartbeats, through a [`Reporter`] shared by all
//! attempts of the call so progress keeps increasing.

use std::time::Duration;

use futures::StreamExt;

use super::Answer;
use crate::provider::{ChatEvent, ChatRequest, Provider, ProviderError};
use crate::tools::ProgressSink;

/// Least time between two progress notifications carrying answer text (heartbeats aside).
const COALESCE: Duration = Duration::from_millis(150);

/// Progress for one call, across attempts and fallbacks.
pub struct Reporter {
    sink: ProgressSink,
    heartbeat: Duration,
    sent: f64,
    last: tokio::time::Instant,
    started: tokio::time::Instant,
}

impl Reporter {
    pub fn new(sink: ProgressSink, heartbeat: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            sink,
            heartbeat,
            sent: 0.0,
            last: now,
            started: now,
        }
    }

    /// Sends a status `message` now (progress must increase with every notification).
    pub async fn say(&mut self, message: String) {
        self.sent += 1.0;
        self.sink.report(self.sent, None, Some(message)).await;
        self.last = tokio::time::Instant::now();
    }

    /// Sends a piece of the answer now.
    async fn say_text(&mut self, text: String) {
        self.sent += 1.0;
        self.sink.report_text(self.sent, text).await;
        self.last = tokio::time::Instant::now();
    }

    /// Sends what is pending: answer text as text, anything else (searches, heartbeats) as status.
    async fn flush(&mut self, pending: &mut Pending) {
        if !pending.text.is_empty() {
            self.say_text(std::mem::take(&mut pending.text)).await;
        }
        if !pending.note.is_empty() {
            self.say(std::mem::take(&mut pending.note)).await;
        }
    }
}

/// What is waiting to be reported: answer text, and status notes.
#[derive(Default)]
struct Pending {
    text: String,
    note: String,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.text.is_empty() && self.note.is_empty()
    }
}

/// A failed attempt and whether any answer text had already reached the caller (then it may not be retried).
pub struct Failed {
    pub error: ProviderError,
    pub streamed: bool,
}

/// Runs one request to completion.
pub async fn run(
    provider: &dyn Provider,
    request: ChatRequest,
    reporter: &mut Reporter,
    asked: &str,
) -> Result<Answer, Failed> {
    let model = request.model.clone();
    let attempt_started = tokio::time::Instant::now();
    let mut events = provider.chat(request);
    let mut answer = Answer::empty(provider.name(), &model, asked);
    let mut pending = Pending::default();
    let mut first_token: Option<Duration> = None;
    let done = loop {
        let wake = reporter.last
            + if pending.is_empty() {
                reporter.heartbeat
            } else {
                COALESCE
            };
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(ChatEvent::Text(t))) => {
                    first_token.get_or_insert_with(|| attempt_started.elapsed());
                    answer.content.push_str(&t);
                    pending.text.push_str(&t);
                }
                Some(Ok(ChatEvent::Reasoning(t))) => answer.reasoning.get_or_insert_with(String::new).push_str(&t),
                Some(Ok(ChatEvent::WebSearch(q))) => {
                    let q = q.unwrap_or_default();
                    pending.note.push_str(&format!("[searching the web: {q}]\n"));
                    answer.web_searches.push(q);
                }
                Some(Ok(ChatEvent::Usage(u))) => answer.usage = Some(u),
                Some(Ok(ChatEvent::Done { finish_reason, model, simulated })) => {
                    if simulated {
                        answer.provider = "sim".to_owned();
                    }
                    break Some((finish_reason, model));
                }
                Some(Err(error)) => return Err(Failed { error, streamed: !answer.content.is_empty() }),
                None => break None,
            },
            // Held-back text goes out `COALESCE` after the last notification; with nothing to say, a heartbeat
            // goes out `heartbeat` after it.
            () = tokio::time::sleep_until(wake) => {
                if pending.is_empty() {
                    let waited = reporter.started.elapsed().as_secs();
                    pending.note = format!("waiting for {model} ({waited} s, {} characters so far)", answer.content.len());
                }
            }
        }
        if !pending.is_empty() && (reporter.last.elapsed() >= COALESCE || reporter.sent == 0.0) {
            reporter.flush(&mut pending).await;
        }
    };
    let Some((finish_reason, reported_model)) = done else {
        return Err(Failed {
            error: ProviderError::StreamBroken {
                provider: answer.provider.clone(),
                received_chars: answer.content.len(),
                message: "the stream ended without a finish reason".into(),
            },
            streamed: !answer.content.is_empty(),
        });
    };
    if !pending.is_empty() {
        reporter.flush(&mut pending).await;
    }
    answer.finish_reason = finish_reason;
    if !reported_model.is_empty() {
        answer.model = reported_model;
    }
    let took = attempt_started.elapsed();
    answer.latency_ms = took.as_millis() as u64;
    // Labelled by the registry's model name (bounded), not whatever name upstream reported.
    let (provider, model) = (answer.provider.clone(), model);
    if let Some(first) = first_token {
        metrics::histogram!("exai_upstream_first_token_seconds", "provider" => provider.clone(), "model" => model.clone())
            .record(first.as_secs_f64());
    }
    metrics::histogram!("exai_upstream_latency_seconds", "provider" => provider, "model" => model)
        .record(took.as_secs_f64());
    Ok(answer)
}

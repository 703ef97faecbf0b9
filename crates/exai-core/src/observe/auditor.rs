//! The AI auditor (`AI_AUDITOR_ENABLED`): a background task that reads the event stream (finished tool calls,
//! raised and cleared alerts), sends batches to a cheap model (`AI_AUDITOR_MODEL`) asking what it notices, and
//! stores each well-formed observation in `auditor_observations`.
//!
//! It never slows or breaks the request path:
//! - events reach it through [`super::Observe::attach_auditor`]'s bounded channel (`AI_AUDITOR_QUEUE`); a full
//!   channel drops the event and counts it (`exai_auditor_events_dropped_total`) instead of waiting;
//! - it calls the model straight through the registry and provider, not through a tool, so its requests are
//!   neither tool executions (nothing it does feeds back into its own input) nor holders of the providers'
//!   permits that tool calls queue for; at most one request runs at a time, at most one per
//!   `AI_AUDITOR_RATE_LIMIT` seconds, each within `AI_AUDITOR_TIMEOUT_SECS`;
//! - its own circuit breaker (target `auditor/<model>`, tuned by `breaker.*`) skips batches while the model fails;
//! - output that is not a JSON array of observations, and items in it that are not valid, are logged and
//!   skipped (`exai_auditor_invalid_outputs_total{what}`).
//!
//! A batch goes out once `AI_AUDITOR_BATCH_SIZE` events have arrived, or when its first event has waited
//! `AI_AUDITOR_RATE_LIMIT` seconds (a linger, so a quiet server is still audited), and never sooner than the
//! rate limit after the previous request.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Event, Severity};
use crate::app::App;
use crate::conversation::now_ms;
use crate::models::{Model, Thinking};
use crate::provider::{ChatEvent, ChatRequest, Message, Role};
use crate::resilience::breaker::{Breaker, Breakers};
use crate::store::Observation;

/// Most observations kept from one reply (the rest are skipped as invalid).
const MAX_PER_BATCH: usize = 20;
/// Longest category, message and evidence stored, in characters (longer text is cut).
const MAX_CATEGORY: usize = 64;
const MAX_MESSAGE: usize = 1_000;
const MAX_EVIDENCE: usize = 2_000;
/// Most characters of a rejected reply written to the log.
const LOGGED_OUTPUT: usize = 300;

const SYSTEM_PROMPT: &str = "You audit the operation of exai, an MCP server through which coding assistants \
consult GLM and Kimi models. You receive a batch of its recent events, one JSON object per line: finished tool \
calls (type \"call\": tool, status, error_kind, latency_ms, provider, model, tokens) and alerts raised or cleared \
(type \"alert\"). Point out what an operator should know: failures and their likely cause, slow tools or models, \
unusual token use, patterns across calls, alerts that deserve attention. Do not restate healthy calls one by one. \
Answer with a JSON array only, no prose, each item an object {\"severity\": \"info\" | \"warning\" | \"critical\", \
\"category\": a short lowercase word such as errors, latency, capacity, cost or usage, \"message\": one sentence, \
\"evidence\": the events or numbers that show it}. Answer [] when nothing is worth noting.";

/// One observation as the model stated it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub category: String,
    pub message: String,
    pub evidence: String,
}

/// A reply with no usable list of observations in it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidOutput {
    #[error("the reply is not JSON: {0}")]
    NotJson(String),
    #[error("expected a JSON array of observations, got {0}")]
    NotAList(&'static str),
}

/// What could be read from one reply: the valid observations and why each other item was skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub findings: Vec<Finding>,
    pub skipped: Vec<String>,
}

/// The text inside a Markdown code fence (```json … ```), or the text itself.
fn unfence(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Parses a reply: a JSON array (or `{"observations": [...]}`), bare or in a ```json fence, perhaps with prose
/// around it. Items that are not valid observations are skipped with a reason.
pub fn parse(text: &str) -> Result<Parsed, InvalidOutput> {
    let body = unfence(text);
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        // Prose around the array: try the outermost brackets.
        Err(e) => match (body.find('['), body.rfind(']')) {
            (Some(start), Some(end)) if start < end => {
                serde_json::from_str(&body[start..=end]).map_err(|_| InvalidOutput::NotJson(e.to_string()))?
            }
            _ => return Err(InvalidOutput::NotJson(e.to_string())),
        },
    };
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("observations") {
            Some(Value::Array(items)) => items,
            _ => return Err(InvalidOutput::NotAList("an object without an `observations` array")),
        },
        other => return Err(InvalidOutput::NotAList(kind(&other))),
    };
    let mut parsed = Parsed::default();
    for (i, item) in items.into_iter().enumerate() {
        if parsed.findings.len() == MAX_PER_BATCH {
            parsed
                .skipped
                .push(format!("item {i}: more than {MAX_PER_BATCH} observations in one reply"));
            continue;
        }
        match finding(item) {
            Ok(f) => parsed.findings.push(f),
            Err(why) => parsed.skipped.push(format!("item {i}: {why}")),
        }
    }
    Ok(parsed)
}

fn finding(item: Value) -> Result<Finding, String> {
    let Value::Object(o) = item else {
        return Err(format!("expected an object, got {}", kind(&item)));
    };
    let text = |field: &str| -> Result<String, String> {
        match o.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Some(Value::String(_)) => Err(format!("`{field}` is empty")),
            Some(other) => Err(format!("`{field}` is {}, not a string", kind(other))),
            None => Err(format!("`{field}` is missing")),
        }
    };
    let severity = match text("severity")?.to_ascii_lowercase().as_str() {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        other => return Err(format!("severity `{other}` is not info, warning or critical")),
    };
    let category = text("category")?.to_ascii_lowercase();
    let message = text("message")?;
    // Evidence may come as a list or an object of facts: kept as compact JSON rather than lost.
    let evidence = match o.get("evidence") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Null) | None => return Err("`evidence` is missing".into()),
        Some(other) => other.to_string(),
    };
    Ok(Finding {
        severity,
        category: cut(&category, MAX_CATEGORY),
        message: cut(&message, MAX_MESSAGE),
        evidence: cut(&evidence, MAX_EVIDENCE),
    })
}

/// The messages for one batch: the instructions, then one compact JSON line per event (session keys left out).
pub fn prompt(events: &[Event]) -> Vec<Message> {
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.remove("session");
                o.retain(|_, v| !v.is_null());
            }
            v.to_string()
        })
        .collect();
    vec![
        Message::text(Role::System, SYSTEM_PROMPT),
        Message::text(
            Role::User,
            format!("{} events, oldest first:\n{}", events.len(), lines.join("\n")),
        ),
    ]
}

/// Waits for the next batch: up to `size` events, or fewer once the first has waited `linger`.
/// `None` when the channel is closed and empty.
pub async fn next_batch(rx: &mut mpsc::Receiver<Event>, size: usize, linger: Duration) -> Option<Vec<Event>> {
    let mut batch = vec![rx.recv().await?];
    let deadline = Instant::now() + linger;
    while batch.len() < size {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) => batch.push(event),
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

/// Spaces requests at least `gap` apart.
#[derive(Debug)]
pub struct Pace {
    gap: Duration,
    last: Option<Instant>,
}

impl Pace {
    pub fn new(gap: Duration) -> Self {
        Self { gap, last: None }
    }

    /// Returns once `gap` has passed since the previous return.
    pub async fn wait(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.gap).await;
        }
        self.last = Some(Instant::now());
    }
}

/// Asks the model directly (no tool, no shared permit), within `timeout`; the answer's text.
async fn ask(app: &App, model: &Model, messages: Vec<Message>, timeout: Duration) -> Result<String, String> {
    let provider = app
        .providers
        .get(&model.provider)
        .ok_or_else(|| format!("no provider `{}` is configured", model.provider))?;
    let request = ChatRequest {
        model: model.name.clone(),
        messages,
        temperature: None,
        max_output_tokens: Some(2_048),
        thinking: model.thinking == Thinking::Always,
        web_search: false,
        stream: false,
        timeout,
    };
    let mut events = provider.chat(request);
    let answer = async {
        let mut text = String::new();
        while let Some(event) = events.next().await {
            match event.map_err(|e| e.to_string())? {
                ChatEvent::Text(t) => text.push_str(&t),
                ChatEvent::Done { .. } => return Ok(text),
                _ => {}
            }
        }
        Err("the answer ended without finishing".to_owned())
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

fn batch_outcome(outcome: &'static str) {
    metrics::counter!("exai_auditor_batches_total", "outcome" => outcome).increment(1);
}

/// Sends one batch and stores what came back; every failure is logged and counted, none is returned.
async fn audit(app: &App, model: &Model, breaker: &Breaker, batch: &[Event]) {
    if let Err(open) = breaker.admit() {
        tracing::debug!(events = batch.len(), error = %open, "auditor batch skipped");
        return batch_outcome("circuit_open");
    }
    let text = match ask(app, model, prompt(batch), app.config.auditor.timeout).await {
        Ok(text) => {
            breaker.on_success();
            text
        }
        Err(error) => {
            breaker.on_failure();
            metrics::counter!("exai_auditor_model_failures_total").increment(1);
            tracing::warn!(model = %model.name, %error, "auditor model request failed; batch skipped");
            return batch_outcome("model_error");
        }
    };
    let parsed = match parse(&text) {
        Ok(parsed) => parsed,
        Err(error) => {
            metrics::counter!("exai_auditor_invalid_outputs_total", "what" => "output").increment(1);
            tracing::warn!(%error, output = %cut(&text, LOGGED_OUTPUT), "auditor output is not valid; skipped");
            return batch_outcome("invalid");
        }
    };
    for why in &parsed.skipped {
        metrics::counter!("exai_auditor_invalid_outputs_total", "what" => "item").increment(1);
        tracing::warn!(reason = %why, "auditor observation is not valid; skipped");
    }
    let mut stored_all = true;
    for f in parsed.findings {
        let observation = Observation {
            id: 0,
            at_ms: now_ms(),
            severity: f.severity.as_str().to_owned(),
            category: f.category,
            message: f.message,
            evidence: f.evidence,
            acknowledged: false,
            acknowledged_at_ms: None,
        };
        match app.store.record_observation(&observation).await {
            Ok(id) => {
                metrics::counter!("exai_auditor_observations_total", "severity" => f.severity.as_str()).increment(1);
                tracing::info!(
                    id,
                    severity = f.severity.as_str(),
                    category = %observation.category,
                    message = %observation.message,
                    "auditor observation"
                );
            }
            Err(e) => {
                stored_all = false;
                tracing::warn!(error = %e, "cannot store an auditor observation");
            }
        }
    }
    batch_outcome(if stored_all { "ok" } else { "store_error" });
}

/// Audits batches from `rx` until `shutdown` or until the channel closes.
pub async fn run(app: Arc<App>, mut rx: mpsc::Receiver<Event>, shutdown: CancellationToken) {
    let config = app.config.auditor.clone();
    let model = match app.models.resolve(&config.model) {
        Ok(m) => m.clone(),
        Err(e) => {
            tracing::error!(error = %e, "AI_AUDITOR_MODEL: the auditor does not run");
            return;
        }
    };
    let breaker = Breakers::new(app.resilience.config.breaker).get("auditor", &model.name);
    let mut pace = Pace::new(config.rate_limit);
    tracing::info!(
        model = %model.name,
        batch_size = config.batch_size,
        rate_limit_s = config.rate_limit.as_secs(),
        "AI auditor running"
    );
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            batch = next_batch(&mut rx, config.batch_size, config.rate_limit) => match batch {
                Some(batch) => batch,
                None => break,
            },
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = pace.wait() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = audit(&app, &model, &breaker, &batch) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::AlertChange;
    use crate::store::Execution;

    fn call(tool: &str) -> Event {
        Event::Call(Execution {
            at_ms: 1,
            tool: tool.into(),
            provider: Some("glm".into()),
            model: Some("glm-4.6".into()),
            latency_ms: 1_200,
            status: "timeout".into(),
            error_kind: Some("timeout".into()),
            tokens_in: None,
            tokens_out: None,
            session: Some("secret-session".into()),
        })
    }

    const GOOD: &str = r#"[{"severity": "warning", "category": "Latency", "message": "chat is slow",
        "evidence": "p95 12 s over 8 calls"}, {"severity": "critical", "category": "errors",
        "message": "GLM is failing", "evidence": ["3 timeouts", "2 HTTP 500"]}]"#;

    #[test]
    fn parses_a_good_reply() {
        let parsed = parse(GOOD).unwrap();
        assert!(parsed.skipped.is_empty());
        assert_eq!(
            parsed.findings[0],
            Finding {
                severity: Severity::Warning,
                category: "latency".into(),
                message: "chat is slow".into(),
                evidence: "p95 12 s over 8 calls".into(),
            }
        );
        assert_eq!(parsed.findings[1].severity, Severity::Critical);
        assert_eq!(parsed.findings[1].evidence, r#"["3 timeouts","2 HTTP 500"]"#);
        assert_eq!(parse("[]").unwrap(), Parsed::default());
        let wrapped = format!(r#"{{"observations": {GOOD}}}"#);
        assert_eq!(parse(&wrapped).unwrap().findings.len(), 2);
    }

    #[test]
    fn parses_a_fenced_reply_and_one_with_prose_around_it() {
        let fenced = format!("```json\n{GOOD}\n```\n");
        assert_eq!(parse(&fenced).unwrap().findings.len(), 2);
        assert_eq!(parse(&format!("```\n{GOOD}```")).unwrap().findings.len(), 2);
        let chatty = format!("Here is what I noticed:\n{GOOD}\nHope this helps.");
        assert_eq!(parse(&chatty).unwrap().findings.len(), 2);
    }

    #[test]
    fn rejects_malformed_replies() {
        assert!(matches!(
            parse("Everything looks fine."),
            Err(InvalidOutput::NotJson(_))
        ));
        assert!(matches!(
            parse("```json\n[{\"severity\": \n```"),
            Err(InvalidOutput::NotJson(_))
        ));
        assert_eq!(parse("42"), Err(InvalidOutput::NotAList("a number")));
        assert!(matches!(parse(r#"{"note": "hi"}"#), Err(InvalidOutput::NotAList(_))));
    }

    #[test]
    fn keeps_the_valid_items_of_a_partially_valid_reply() {
        let reply = r#"[
            {"severity": "warning", "category": "errors", "message": "ok one", "evidence": "e"},
            {"severity": "urgent", "category": "errors", "message": "bad severity", "evidence": "e"},
            {"severity": "info", "category": "", "message": "no category", "evidence": "e"},
            {"severity": "info", "category": "usage", "message": "no evidence"},
            "just a string",
            {"severity": "INFO", "category": "usage", "message": 7, "evidence": "e"}
        ]"#;
        let parsed = parse(reply).unwrap();
        assert_eq!(parsed.findings.len(), 1);
        assert_eq!(parsed.findings[0].message, "ok one");
        assert_eq!(
            parsed.skipped,
            [
                "item 1: severity `urgent` is not info, warning or critical",
                "item 2: `category` is empty",
                "item 3: `evidence` is missing",
                "item 4: expected an object, got a string",
                "item 5: `message` is a number, not a string",
            ]
        );
        let many = format!(
            "[{}]",
            vec![r#"{"severity":"info","category":"c","message":"m","evidence":"e"}"#; 25].join(",")
        );
        let parsed = parse(&many).unwrap();
        assert_eq!((parsed.findings.len(), parsed.skipped.len()), (MAX_PER_BATCH, 5));
        let long = format!(
            r#"[{{"severity":"info","category":"c","message":"{}","evidence":"e"}}]"#,
            "x".repeat(5_000)
        );
        assert_eq!(
            parse(&long).unwrap().findings[0].message.chars().count(),
            MAX_MESSAGE + 1
        );
    }

    #[test]
    fn the_prompt_lists_events_without_sessions() {
        let alert = Event::Alert(AlertChange {
            rule: "error_rate".into(),
            severity: Severity::Critical,
            message: "3 of 4 calls failed".into(),
            firing: true,
            at_ms: 2,
        });
        let messages = prompt(&[call("chat"), alert]);
        assert_eq!(messages.len(), 2);
        let crate::provider::Part::Text { text } = &messages[1].parts[0] else {
            panic!("text expected");
        };
        assert!(text.starts_with("2 events, oldest first:\n"), "{text}");
        assert!(
            text.contains(r#""type":"call""#) && text.contains(r#""status":"timeout""#),
            "{text}"
        );
        assert!(
            text.contains(r#""type":"alert""#) && text.contains("3 of 4 calls failed"),
            "{text}"
        );
        assert!(
            !text.contains("secret-session") && !text.contains("tokens_in"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn batches_fill_up_or_linger() {
        let (tx, mut rx) = mpsc::channel(16);
        for tool in ["a", "b", "c"] {
            tx.send(call(tool)).await.unwrap();
        }
        let started = Instant::now();
        let batch = next_batch(&mut rx, 2, Duration::from_secs(5)).await.unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(started.elapsed(), Duration::ZERO, "a full batch goes at once");
        // One left: it waits the linger for company, then goes alone.
        let batch = next_batch(&mut rx, 2, Duration::from_secs(5)).await.unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(tx);
        assert!(next_batch(&mut rx, 2, Duration::from_secs(5)).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_limit() {
        let mut pace = Pace::new(Duration::from_secs(5));
        let started = Instant::now();
        pace.wait().await;
        assert_eq!(started.elapsed(), Duration::ZERO, "the first request goes at once");
        tokio::time::sleep(Duration::from_secs(2)).await;
        pace.wait().await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(9)).await;
        pace.wait().await;
        assert_eq!(started.elapsed(), Duration::from_secs(14), "no wait after a long pause");
    }
}

//! One model call as every model-backed tool makes it: resolve the model, send the request with what is left
//! of the call's deadline, stream the answer to the caller as progress (with heartbeats while upstream is
//! silent, so clients with a ~60 s tool timeout keep waiting), and return an [`Answer`] that says who answered.

use std::time::Duration;

use futures::StreamExt;
use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;

use super::ToolContext;
use crate::app::App;
use crate::error::ToolError;
use crate::models::{Model, Thinking};
use crate::provider::{ChatEvent, ChatRequest, Message, ProviderError, Usage};

/// Least time between two progress notifications carrying answer text (heartbeats aside).
const COALESCE: Duration = Duration::from_millis(150);

/// What a model tool returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Answer {
    /// The model's answer.
    pub content: String,
    /// The model's reasoning, when it produced any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Who answered: `glm`, `kimi`, `sim` (the simulator, never a real model) or a custom endpoint.
    pub provider: String,
    /// The model that answered, as the provider reported it.
    pub model: String,
    pub usage: Option<Usage>,
    /// `stop`, `length` (cut off at the output limit), `content_filter`, ...
    pub finish_reason: String,
    /// Web searches the provider ran for the model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub web_searches: Vec<String>,
    pub latency_ms: u64,
    /// Pass this back to continue the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_id: Option<String>,
}

/// The model named by a tool's `model` argument (`auto` or none: a sensible default for the tool).
pub fn resolve(app: &App, name: Option<&str>, deep: bool, tool: &str) -> Result<Model, ToolError> {
    match name.map(str::trim) {
        None | Some("") | Some("auto") => Ok(app.models.auto(deep, |p| app.providers.usable(p)).clone()),
        Some(name) => app
            .models
            .resolve(name)
            .cloned()
            .map_err(|e| ToolError::InvalidArguments {
                tool: tool.to_owned(),
                message: e.to_string(),
            }),
    }
}

/// What to ask.
pub struct CallSpec<'a> {
    pub model: &'a Model,
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub thinking: bool,
    pub web_search: bool,
}

/// The longest one request to `model` may take by configuration (the call's deadline may cut it shorter).
fn request_timeout(app: &App, model: &Model) -> Duration {
    let p = &app.config.providers;
    let provider_default = match model.provider.as_str() {
        "glm" => p.glm.timeout,
        "kimi" => p.kimi.timeout,
        _ => app.config.timeouts.simple_tool,
    };
    model.timeout.unwrap_or(provider_default)
}

/// Sends the request and gathers the answer, reporting progress as it streams.
pub async fn run(ctx: &ToolContext, spec: CallSpec<'_>) -> Result<Answer, ToolError> {
    let app = &ctx.app;
    let model = spec.model;
    let started = tokio::time::Instant::now();
    if let Some(t) = spec.temperature
        && !(model.temperature.0..=model.temperature.1).contains(&t)
    {
        return Err(ToolError::InvalidArguments {
            tool: "chat".into(),
            message: format!(
                "temperature {t} is outside {}'s range {}..={}",
                model.name, model.temperature.0, model.temperature.1
            ),
        });
    }
    let provider = app.providers.get(&model.provider).ok_or_else(|| {
        ToolError::Unavailable(format!(
            "no provider `{}` is configured for {}",
            model.provider, model.name
        ))
    })?;
    let request = ChatRequest {
        model: model.name.clone(),
        messages: spec.messages,
        temperature: spec.temperature,
        max_output_tokens: None,
        thinking: model.thinking == Thinking::Always || (spec.thinking && model.thinking == Thinking::Optional),
        web_search: spec.web_search,
        stream: model.streaming,
        timeout: request_timeout(app, model).min(ctx.remaining()),
    };
    let heartbeat = app.config.progress_heartbeat;
    let mut events = provider.chat(request);
    let mut answer = Answer {
        content: String::new(),
        reasoning: None,
        provider: provider.name().to_owned(),
        model: model.name.clone(),
        usage: None,
        finish_reason: String::new(),
        web_searches: Vec::new(),
        latency_ms: 0,
        continuation_id: None,
    };
    let mut sent = 0.0; // progress must increase with every notification
    let mut pending = String::new();
    let mut last_report = tokio::time::Instant::now();
    let done = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(ChatEvent::Text(t))) => {
                    answer.content.push_str(&t);
                    pending.push_str(&t);
                }
                Some(Ok(ChatEvent::Reasoning(t))) => answer.reasoning.get_or_insert_with(String::new).push_str(&t),
                Some(Ok(ChatEvent::WebSearch(q))) => {
                    let q = q.unwrap_or_default();
                    pending.push_str(&format!("[searching the web: {q}]\n"));
                    answer.web_searches.push(q);
                }
                Some(Ok(ChatEvent::Usage(u))) => answer.usage = Some(u),
                Some(Ok(ChatEvent::Done { finish_reason, model, simulated })) => {
                    if simulated {
                        answer.provider = "sim".to_owned();
                    }
                    break Some((finish_reason, model));
                }
                Some(Err(e)) => return Err(e.into()),
                None => break None,
            },
            // Held-back text goes out `COALESCE` after the last notification; with nothing to say, a
            // heartbeat goes out `heartbeat` after it.
            () = tokio::time::sleep_until(last_report + if pending.is_empty() { heartbeat } else { COALESCE }) => {
                if pending.is_empty() {
                    let waited = started.elapsed().as_secs();
                    pending =
                        format!("waiting for {} ({waited} s, {} characters so far)", model.name, answer.content.len());
                }
            }
        }
        if !pending.is_empty() && (last_report.elapsed() >= COALESCE || sent == 0.0) {
            sent += 1.0;
            ctx.progress
                .report(sent, None, Some(std::mem::take(&mut pending)))
                .await;
            last_report = tokio::time::Instant::now();
        }
    };
    let Some((finish_reason, reported_model)) = done else {
        return Err(ProviderError::StreamBroken {
            provider: answer.provider.clone(),
            received_chars: answer.content.len(),
            message: "the stream ended without a finish reason".into(),
        }
        .into());
    };
    if !pending.is_empty() {
        ctx.progress.report(sent + 1.0, None, Some(pending)).await;
    }
    answer.finish_reason = finish_reason;
    if !reported_model.is_empty() {
        answer.model = reported_model;
    }
    answer.latency_ms = started.elapsed().as_millis() as u64;
    Ok(answer)
}

/// The text content: the answer, then one line saying who answered, usage, latency and how to continue.
pub fn render(a: &Answer) -> String {
    let usage = a.usage.map_or(String::new(), |u| {
        format!(" · tokens in {} / out {}", u.input_tokens, u.output_tokens)
    });
    let cont = a
        .continuation_id
        .as_ref()
        .map_or(String::new(), |c| format!(" · continuation_id: {c}"));
    let cut = if a.finish_reason == "length" {
        " · cut off at the output limit"
    } else {
        ""
    };
    format!(
        "{}\n\n---\n{} via {} · {} ms{usage}{cut}{cont}",
        a.content, a.model, a.provider, a.latency_ms
    )
}

//! One model call as every model-backed tool makes it: resolve the model, then for it and its fallbacks take the
//! provider's permit, pass its circuit breaker, and attempt with retries — all spending one budget — and return an
//! [`Answer`] that says which model was asked for, which answered, and why it fell back. A deterministic call
//! that asked for it is answered from the response cache ([`cache`]) when an identical one was answered before.

mod attempt;
pub mod cache;

use std::time::Duration;

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::ToolContext;
use crate::app::App;
use crate::error::ToolError;
use crate::models::{Model, Thinking};
use crate::provider::{ChatRequest, Message, ProviderError, Usage};
use crate::resilience::retry::Decision;
use attempt::{Failed, Reporter};

/// What a model tool returns (and what the response cache stores).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Answer {
    /// The model's answer.
    pub content: String,
    /// The model's reasoning, when it produced any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Who answered: `glm`, `kimi`, `sim` (the simulator, never a real model) or a custom endpoint.
    pub provider: String,
    /// The model that answered, as the provider reported it.
    pub model: String,
    /// The model the caller asked for (or `auto` chose).
    pub model_requested: String,
    /// Set when another model answered: why the requested one did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub usage: Option<Usage>,
    /// `stop`, `length` (cut off at the output limit), `content_filter`, ...
    pub finish_reason: String,
    /// Web searches the provider ran for the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub web_searches: Vec<String>,
    pub latency_ms: u64,
    /// Pass this back to continue the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_id: Option<String>,
    /// Served from the response cache: no model was asked for this call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

impl Answer {
    fn empty(provider: &str, model: &str, asked: &str) -> Self {
        Self {
            content: String::new(),
            reasoning: None,
            provider: provider.to_owned(),
            model: model.to_owned(),
            model_requested: asked.to_owned(),
            fallback_reason: None,
            usage: None,
            finish_reason: String::new(),
            web_searches: Vec::new(),
            latency_ms: 0,
            continuation_id: None,
            cached: false,
        }
    }
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
    /// Answer from the response cache when the call is deterministic (`chat`'s `cache`, `cache.enabled_tools`).
    pub cache: bool,
}

/// The longest one request to `model` may take by configuration (the call's budget may cut it shorter).
fn request_cap(app: &App, model: &Model, web_search: bool, thinking: bool) -> Duration {
    let p = &app.config.providers;
    let kimi = app.config.resilience.kimi_modes;
    let provider_cap = match (model.provider.as_str(), web_search, thinking) {
        ("glm", ..) => p.glm.timeout,
        ("kimi", false, false) => p.kimi.timeout,
        ("kimi", true, false) => kimi.web_search,
        ("kimi", false, true) => kimi.thinking,
        ("kimi", true, true) => kimi.web_search_thinking,
        _ => app
            .config
            .custom_providers
            .iter()
            .find(|c| c.name == model.provider)
            .map_or(p.glm.timeout, |c| c.timeout),
    };
    model.timeout.map_or(provider_cap, |t| t.max(provider_cap))
}

/// Whether a failure says something about the model's health (it counts towards opening its circuit).
fn trips_breaker(e: &ProviderError) -> bool {
    match e {
        ProviderError::Http { status, .. } => *status >= 500,
        ProviderError::Connect { .. }
        | ProviderError::Timeout { .. }
        | ProviderError::StreamBroken { .. }
        | ProviderError::Malformed { .. } => true,
        ProviderError::MissingKey { .. } => false,
    }
}

/// Asks the model (then its fallbacks), retrying retriable failures within the call's budget — or, for a
/// deterministic call with `spec.cache`, the response cache first.
pub async fn run(ctx: &ToolContext, spec: CallSpec<'_>) -> Result<Answer, ToolError> {
    let asked = spec.model;
    if let Some(t) = spec.temperature
        && !(asked.temperature.0..=asked.temperature.1).contains(&t)
    {
        return Err(ToolError::InvalidArguments {
            tool: "chat".into(),
            message: format!(
                "temperature {t} is outside {}'s range {}..={}",
                asked.name, asked.temperature.0, asked.temperature.1
            ),
        });
    }
    match spec.cache.then(|| cache::key(&spec)).flatten() {
        Some(key) => ctx.app.cache.serve(key, call(ctx, spec)).await,
        None => call(ctx, spec).await,
    }
}

/// [`run`] without the cache.
async fn call(ctx: &ToolContext, spec: CallSpec<'_>) -> Result<Answer, ToolError> {
    let app = &ctx.app;
    let asked = spec.model;
    let budget = ctx.budget.clone();
    let res = &app.resilience;
    let mut chain = vec![asked.clone()];
    chain.extend(
        res.config
            .fallback
            .after(&asked.name)
            .iter()
            .filter_map(|m| app.models.resolve(m).ok().cloned()),
    );
    let mut reporter = Reporter::new(ctx.progress.clone(), app.config.progress_heartbeat);
    let mut notes: Vec<String> = Vec::new();
    let mut last: Option<ToolError> = None;
    for model in &chain {
        let provider = app.providers.get(&model.provider).ok_or_else(|| {
            ToolError::Unavailable(format!(
                "no provider `{}` is configured for {}",
                model.provider, model.name
            ))
        })?;
        let breaker = res.breakers.get(&model.provider, &model.name);
        if let Err(open) = breaker.admit() {
            notes.push(format!("{}: {open}", model.name));
            last = Some(open.into());
            continue;
        }
        let _permit = match res.limits.provider(&model.provider).acquire(&budget).await {
            Ok(p) => p,
            Err(full) => {
                breaker.on_abandon();
                notes.push(format!("{}: {full}", model.name));
                last = Some(full.into());
                continue;
            }
        };
        let retry_budget = res.retry_budget(&model.provider);
        retry_budget.deposit();
        let thinking = model.thinking == Thinking::Always || (spec.thinking && model.thinking == Thinking::Optional);
        let cap = request_cap(app, model, spec.web_search, thinking);
        let mut attempt_no = 0;
        loop {
            attempt_no += 1;
            let request = ChatRequest {
                model: model.name.clone(),
                messages: spec.messages.clone(),
                temperature: spec.temperature.filter(|_| model.name == asked.name),
                max_output_tokens: None,
                thinking,
                web_search: spec.web_search && model.web_search,
                stream: model.streaming,
                timeout: cap.min(budget.remaining()),
            };
            if let Err(e) = res.rates.pace(&model.provider, &budget).await {
                breaker.on_abandon();
                notes.push(format!("{}: {e}", model.name));
                last = Some(e.into());
                break;
            }
            let label = format!("attempt {attempt_no} {}", model.name);
            let outcome = budget
                .spend(
                    label,
                    attempt::run(provider.as_ref(), request, &mut reporter, &asked.name),
                )
                .await;
            match outcome {
                Ok(mut answer) => {
                    breaker.on_success();
                    ctx.usage.add(&answer.provider, &answer.model, answer.usage);
                    if let Some(u) = answer.usage {
                        let name = model.name.clone();
                        metrics::counter!("exai_tokens_total", "model" => name.clone(), "direction" => "in")
                            .increment(u.input_tokens);
                        metrics::counter!("exai_tokens_total", "model" => name, "direction" => "out")
                            .increment(u.output_tokens);
                    }
                    if model.name != asked.name {
                        answer.fallback_reason = Some(notes.join("; "));
                        metrics::counter!("exai_fallbacks_total", "from" => asked.name.clone(), "to" => model.name.clone())
                            .increment(1);
                    }
                    return Ok(answer);
                }
                Err(Failed { error, streamed }) => {
                    if trips_breaker(&error) {
                        breaker.on_failure();
                    } else {
                        breaker.on_abandon();
                    }
                    let decision = if streamed {
                        Decision::GiveUp("part of the answer had already been sent")
                    } else {
                        res.config
                            .retry
                            .decide(&error, attempt_no, budget.remaining(), &retry_budget)
                    };
                    match decision {
                        Decision::RetryAfter(delay) => {
                            metrics::counter!("exai_retries_total", "provider" => model.provider.clone()).increment(1);
                            tracing::info!(model = %model.name, attempt = attempt_no, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
                            reporter
                                .say(format!("{error}; retrying in {} ms", delay.as_millis()))
                                .await;
                            budget.spend("backoff", tokio::time::sleep(delay)).await;
                            if breaker.admit().is_err() {
                                notes.push(format!("{}: {error} (then its circuit opened)", model.name));
                                last = Some(error.into());
                                break;
                            }
                        }
                        Decision::GiveUp(why) => {
                            notes.push(format!("{}: {error} ({why} after {attempt_no} attempt(s))", model.name));
                            last = Some(error.into());
                            // A partial answer already reached the caller: no other model may add to it.
                            if streamed {
                                return Err(ToolError::Exhausted {
                                    last: Box::new(last.take().expect("just set")),
                                    attempts: notes.join("; "),
                                });
                            }
                            break;
                        }
                    }
                }
            }
        }
    }
    let last = last.unwrap_or_else(|| ToolError::Unavailable("no model to call".into()));
    Err(if notes.len() > 1 {
        ToolError::Exhausted {
            last: Box::new(last),
            attempts: notes.join("; "),
        }
    } else {
        last
    })
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
    let fell_back = a.fallback_reason.as_ref().map_or(String::new(), |why| {
        format!(" · FALLBACK: {} was asked for ({why})", a.model_requested)
    });
    let cached = if a.cached {
        " · cached (no model was asked)"
    } else {
        ""
    };
    format!(
        "{}\n\n---\n{} via {} · {} ms{usage}{cut}{fell_back}{cached}{cont}",
        a.content, a.model, a.provider, a.latency_ms
    )
}

//! The provider: builds the chat-completions request from a profile, sends it on the shared client,
//! and turns the answer (SSE stream or one JSON body) into `ChatEvent`s, running Kimi's search rounds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use exai_core::provider::{ChatEvent, ChatRequest, Message, Part, Provider, ProviderError, Role, Usage};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::time::{Instant, timeout_at};

use super::assemble::{AssembleError, Assembler, Round};
use super::sse::SseParser;
use super::wire::{
    ChatCompletion, ChatCompletionRequest, Content, ContentPart, FunctionCall, FunctionName, ImageUrl, StreamOptions,
    Thinking, Tool, ToolCall, WebSearchTool, WireMessage, error_message,
};
use crate::http::HttpClient;
use crate::profile::{Profile, ThinkingStyle, WebSearchStyle};

const KIMI_SEARCH: &str = "$web_search";
/// GLM's finish reason for an answer cut short by an inference failure: a broken answer, not a done one.
const NETWORK_ERROR: &str = "network_error";

/// An OpenAI-compatible chat-completions provider; GLM, Kimi and custom endpoints are profiles of it.
#[derive(Debug, Clone)]
pub struct OpenAiCompatProvider {
    profile: Arc<Profile>,
    http: HttpClient,
}

impl OpenAiCompatProvider {
    pub fn new(profile: Profile, http: HttpClient) -> Self {
        Self {
            profile: Arc::new(profile),
            http,
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }
}

impl Provider for OpenAiCompatProvider {
    fn name(&self) -> &str {
        &self.profile.name
    }

    fn has_credentials(&self) -> bool {
        self.profile.key().is_ok()
    }

    fn chat(&self, request: ChatRequest) -> BoxStream<'static, Result<ChatEvent, ProviderError>> {
        let call = Call::new(self.profile.clone(), self.http.client().clone(), request);
        // A pull-driven stream: nothing runs unless polled, and dropping it drops the response, which
        // closes (HTTP/1) or resets (HTTP/2) the upstream request.
        futures::stream::unfold(call, |mut call| async move {
            let item = call.next().await?;
            Some((item, call))
        })
        .boxed()
    }
}

/// Builds the wire request for one round.
pub fn build_request(profile: &Profile, request: &ChatRequest) -> ChatCompletionRequest {
    let quirks = profile.quirks;
    let thinking = match quirks.thinking {
        ThinkingStyle::GlmField => Some(Thinking {
            kind: if request.thinking { "enabled" } else { "disabled" },
        }),
        ThinkingStyle::KimiSearchDisables if request.web_search => Some(Thinking { kind: "disabled" }),
        ThinkingStyle::KimiSearchDisables | ThinkingStyle::Implicit => None,
    };
    let tools = match (request.web_search, quirks.web_search) {
        (true, WebSearchStyle::GlmTool) => vec![Tool::WebSearch {
            web_search: WebSearchTool {
                enable: true,
                search_result: true,
            },
        }],
        (true, WebSearchStyle::KimiBuiltin) => vec![Tool::BuiltinFunction {
            function: FunctionName {
                name: KIMI_SEARCH.to_string(),
            },
        }],
        _ => vec![],
    };
    ChatCompletionRequest {
        model: request.model.clone(),
        messages: request.messages.iter().map(wire_message).collect(),
        temperature: request.temperature,
        max_tokens: request.max_output_tokens,
        stream: request.stream,
        stream_options: (request.stream && quirks.stream_usage_option).then_some(StreamOptions { include_usage: true }),
        thinking,
        tools,
    }
}

/// A message as sent: a plain string unless it carries an image, then `[{type:text},{type:image_url}]`.
fn wire_message(m: &Message) -> WireMessage {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let has_image = m.parts.iter().any(|p| matches!(p, Part::ImageUrl { .. }));
    let content = if has_image {
        Content::Parts(
            m.parts
                .iter()
                .map(|p| match p {
                    Part::Text { text } => ContentPart::Text { text: text.clone() },
                    Part::ImageUrl { url } => ContentPart::ImageUrl {
                        image_url: ImageUrl { url: url.clone() },
                    },
                })
                .collect(),
        )
    } else {
        let texts: Vec<&str> = m
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                Part::ImageUrl { .. } => None,
            })
            .collect();
        Content::Text(texts.join("\n\n"))
    };
    WireMessage::plain(role, content)
}

/// The header exai's simulator puts on every response.
const SIMULATOR_HEADER: &str = "x-exai-simulator";

struct Streaming {
    response: reqwest::Response,
    parser: SseParser,
}

enum Phase {
    /// Send the next request.
    Send,
    /// Reading an SSE body (boxed: the response is large and this state is short-lived per chat).
    Streaming(Box<Streaming>),
    Finished,
}

/// One chat, possibly spanning several requests (Kimi search rounds).
struct Call {
    profile: Arc<Profile>,
    http: reqwest::Client,
    body: ChatCompletionRequest,
    timeout: Duration,
    deadline: Option<Instant>,
    asm: Assembler,
    queue: VecDeque<Result<ChatEvent, ProviderError>>,
    phase: Phase,
    usage: Option<Usage>,
    search_rounds: u8,
    web_search: bool,
    /// An upstream response carried `x-exai-simulator`: the answer comes from exai's simulator.
    simulated: bool,
}

impl Call {
    fn new(profile: Arc<Profile>, http: reqwest::Client, request: ChatRequest) -> Self {
        let body = build_request(&profile, &request);
        Self {
            body,
            http,
            timeout: request.timeout,
            deadline: None,
            asm: Assembler::new(request.model),
            queue: VecDeque::new(),
            phase: Phase::Send,
            usage: None,
            search_rounds: 0,
            web_search: request.web_search,
            simulated: false,
            profile,
        }
    }

    async fn next(&mut self) -> Option<Result<ChatEvent, ProviderError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            let result = match &self.phase {
                Phase::Finished => return None,
                Phase::Send => self.send().await,
                Phase::Streaming(_) => self.read_stream().await,
            };
            // Events produced before a failure still go out first: the caller sees how far it got.
            self.queue.extend(self.asm.events.drain(..).map(Ok));
            if let Err(e) = result {
                self.phase = Phase::Finished;
                self.queue.push_back(Err(e));
            }
        }
    }

    fn deadline(&mut self) -> Instant {
        *self.deadline.get_or_insert_with(|| Instant::now() + self.timeout)
    }

    fn timed_out(&self) -> ProviderError {
        ProviderError::Timeout {
            provider: self.profile.name.clone(),
            after: self.timeout,
            received_chars: self.asm.received_chars,
        }
    }

    fn broken(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::StreamBroken {
            provider: self.profile.name.clone(),
            received_chars: self.asm.received_chars,
            message: message.into(),
        }
    }

    fn assemble_error(&self, e: AssembleError) -> ProviderError {
        match e {
            AssembleError::Malformed(message) => ProviderError::Malformed {
                provider: self.profile.name.clone(),
                message,
            },
            AssembleError::Upstream(message) => self.broken(message),
        }
    }

    async fn send(&mut self) -> Result<(), ProviderError> {
        let key = self.profile.key()?.map(str::to_owned);
        let deadline = self.deadline();
        let url = self.profile.endpoint();
        let mut builder = self.http.post(&url).json(&self.body);
        if let Some(key) = key {
            builder = builder.bearer_auth(key);
        }
        if self.body.stream {
            builder = builder.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        tracing::debug!(provider = %self.profile.name, %url, model = %self.body.model, stream = self.body.stream, "upstream request");
        let response = match timeout_at(deadline, builder.send()).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) if e.is_timeout() && !e.is_connect() => return Err(self.timed_out()),
            Ok(Err(e)) => {
                return Err(ProviderError::Connect {
                    provider: self.profile.name.clone(),
                    url,
                    message: error_chain(&e),
                });
            }
            Ok(Ok(r)) => r,
        };
        self.simulated |= response.headers().contains_key(SIMULATOR_HEADER);
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            // Only the message is wanted: a few KiB, whatever the upstream sends.
            let body = match timeout_at(deadline, read_capped(response, MAX_ERROR_BODY_BYTES)).await {
                Ok(Ok(Capped::Whole(b) | Capped::Over(b))) => b,
                _ => Vec::new(),
            };
            let message =
                error_message(&body).unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
            return Err(ProviderError::Http {
                provider: self.profile.name.clone(),
                status: status.as_u16(),
                message,
                retry_after,
            });
        }
        // A server that ignores `stream: true` answers with one JSON body: take it as such.
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if self.body.stream && !is_json {
            self.phase = Phase::Streaming(Box::new(Streaming {
                response,
                parser: SseParser::new(),
            }));
            return Ok(());
        }
        let body = match timeout_at(deadline, read_capped(response, MAX_BODY_BYTES)).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => return Err(self.broken(error_chain(&e))),
            Ok(Ok(Capped::Whole(b))) => b,
            Ok(Ok(Capped::Over(_))) => {
                return Err(ProviderError::Malformed {
                    provider: self.profile.name.clone(),
                    message: format!(
                        "response body over the {MAX_BODY_BYTES}-byte limit for one completion; the upstream's answer \
                         was not read further"
                    ),
                });
            }
        };
        let completion: ChatCompletion = serde_json::from_slice(&body).map_err(|e| ProviderError::Malformed {
            provider: self.profile.name.clone(),
            message: format!("response body: {e}"),
        })?;
        self.asm.completion(completion).map_err(|e| self.assemble_error(e))?;
        self.end_round()
    }

    async fn read_stream(&mut self) -> Result<(), ProviderError> {
        let deadline = self.deadline();
        let Phase::Streaming(streaming) = &mut self.phase else {
            return Ok(());
        };
        let chunk = match timeout_at(deadline, streaming.response.chunk()).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => return Err(self.broken(error_chain(&e))),
            Ok(Ok(chunk)) => chunk,
        };
        let Phase::Streaming(streaming) = &mut self.phase else {
            return Ok(());
        };
        let parser = &mut streaming.parser;
        let Some(bytes) = chunk else {
            if !self.asm.round.complete() {
                let detail = if parser.has_partial() { " mid-event" } else { "" };
                return Err(self.broken(format!("the stream ended{detail} before the answer was complete")));
            }
            return self.end_round();
        };
        let events = parser.feed(&bytes).map_err(|e| ProviderError::Malformed {
            provider: self.profile.name.clone(),
            message: e.to_string(),
        })?;
        for event in events {
            let done = self.asm.chunk(&event.data).map_err(|e| self.assemble_error(e))?;
            if done {
                // Anything after `[DONE]` is ignored; the finished response goes back to the pool.
                self.end_round()?;
                break;
            }
        }
        Ok(())
    }

    /// After a complete round: run a Kimi search round trip, or finish with usage and `Done`.
    fn end_round(&mut self) -> Result<(), ProviderError> {
        let round = self.asm.take_round();
        if let Some(u) = round.usage {
            let total = self.usage.get_or_insert_with(Usage::default);
            total.input_tokens += u.prompt_tokens;
            total.output_tokens += u.completion_tokens;
            total.total_tokens += if u.total_tokens > 0 {
                u.total_tokens
            } else {
                u.prompt_tokens + u.completion_tokens
            };
        }
        let finish = round.finish.clone().unwrap_or_else(|| "stop".to_string());
        let is_search_request = finish == "tool_calls"
            && self.web_search
            && self.profile.quirks.web_search == WebSearchStyle::KimiBuiltin
            && !round.calls.is_empty()
            && round.calls.iter().all(|c| c.name == KIMI_SEARCH);
        if is_search_request && self.search_rounds < self.profile.quirks.max_search_rounds {
            self.search_rounds += 1;
            self.echo_search(round);
            self.phase = Phase::Send;
            return Ok(());
        }
        if finish == NETWORK_ERROR {
            return Err(self.broken("the provider stopped the answer (finish_reason: network_error)"));
        }
        if finish == "tool_calls" {
            tracing::warn!(provider = %self.profile.name, calls = round.calls.len(), "answer ended asking for tool calls");
        }
        if let Some(u) = self.usage {
            self.asm.events.push_back(ChatEvent::Usage(u));
        }
        self.asm.events.push_back(ChatEvent::Done {
            finish_reason: finish,
            model: self.asm.model.clone(),
            simulated: self.simulated,
        });
        self.phase = Phase::Finished;
        Ok(())
    }

    /// Kimi `$web_search`: append the echo messages and report each search.
    fn echo_search(&mut self, round: Round) {
        for query in append_search_echo(&mut self.body.messages, round) {
            self.asm.events.push_back(ChatEvent::WebSearch(query));
        }
    }
}

/// Appends the assistant message carrying the round's tool calls, then one `role: "tool"` message per call
/// with its arguments echoed back unchanged (Kimi's `$web_search` protocol). Returns each call's query.
pub fn append_search_echo(messages: &mut Vec<WireMessage>, round: Round) -> Vec<Option<String>> {
    let calls: Vec<ToolCall> = round
        .calls
        .into_iter()
        .map(|c| ToolCall {
            id: c.id,
            kind: c.kind.unwrap_or_else(|| "builtin_function".to_string()),
            function: FunctionCall {
                name: c.name,
                arguments: c.arguments,
            },
        })
        .collect();
    let mut assistant = WireMessage::plain("assistant", Content::Text(round.text));
    assistant.reasoning_content = Some(round.reasoning).filter(|r| !r.is_empty());
    assistant.tool_calls = Some(calls.clone());
    messages.push(assistant);
    let mut queries = Vec::new();
    for call in calls {
        queries.push(search_query(&call.function.arguments));
        let mut tool = WireMessage::plain("tool", Content::Text(call.function.arguments));
        tool.tool_call_id = Some(call.id);
        tool.name = Some(call.function.name);
        messages.push(tool);
    }
    queries
}

/// The query in a search call's arguments, when the provider shows one.
fn search_query(arguments: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(arguments).ok()?;
    ["query", "search_query", "q"]
        .iter()
        .find_map(|k| value.get(k).and_then(|v| v.as_str()).map(str::to_string))
}

/// `Retry-After` in seconds (integer or decimal); HTTP dates are ignored.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = text.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// An error with its causes, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The most of one non-streamed completion body read: far above any model's output, far below what would hurt.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The most of an error body read (for its message).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// A body read up to a limit.
enum Capped {
    /// All of it.
    Whole(Vec<u8>),
    /// The first `limit` bytes of a longer body; the rest was never read.
    Over(Vec<u8>),
}

/// Reads `response`'s body chunk by chunk, stopping at `limit` bytes, so an upstream cannot make the daemon buffer
/// an unbounded body (the deadline alone would let it send gigabytes first).
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Capped, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok(Capped::Over(body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{glm, kimi};
    use serde_json::json;

    fn request(web_search: bool, thinking: bool, stream: bool) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![
                Message::text(Role::System, "be brief"),
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::Text {
                            text: "what is this".into(),
                        },
                        Part::ImageUrl {
                            url: "https://x/y.png".into(),
                        },
                    ],
                },
            ],
            temperature: Some(0.5),
            max_output_tokens: Some(100),
            thinking,
            web_search,
            stream,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn glm_request_has_thinking_and_search_tool() {
        let body = build_request(&glm::profile(None, glm::DEFAULT_BASE_URL), &request(true, true, true));
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["thinking"], json!({"type":"enabled"}));
        assert_eq!(
            v["tools"],
            json!([{"type":"web_search","web_search":{"enable":true,"search_result":true}}])
        );
        assert!(v.get("stream_options").is_none());
        assert_eq!(v["messages"][0], json!({"role":"system","content":"be brief"}));
        assert_eq!(
            v["messages"][1]["content"][1],
            json!({"type":"image_url","image_url":{"url":"https://x/y.png"}})
        );
        assert_eq!(v["max_tokens"], json!(100));
        let off = serde_json::to_value(build_request(
            &glm::profile(None, glm::DEFAULT_BASE_URL),
            &request(false, false, false),
        ))
        .unwrap();
        assert_eq!(off["thinking"], json!({"type":"disabled"}));
        assert!(off.get("tools").is_none());
    }

    #[test]
    fn kimi_request_has_builtin_search() {
        let body = build_request(&kimi::profile(None, kimi::DEFAULT_BASE_URL), &request(true, true, true));
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["thinking"], json!({"type":"disabled"}));
        assert_eq!(
            v["tools"],
            json!([{"type":"builtin_function","function":{"name":"$web_search"}}])
        );
        let plain = build_request(
            &kimi::profile(None, kimi::DEFAULT_BASE_URL),
            &request(false, true, true),
        );
        let v = serde_json::to_value(&plain).unwrap();
        assert!(v.get("thinking").is_none() && v.get("tools").is_none() && v.get("stream_options").is_none());
    }

    #[test]
    fn retry_after_parses_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(reqwest::header::RETRY_AFTER, "1.5".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn search_query_when_shown() {
        assert_eq!(search_query(r#"{"query":"rust"}"#), Some("rust".into()));
        assert_eq!(search_query(r#"{"search_result":{"search_id":"s"}}"#), None);
    }
}

//! The provider abstraction: a chat request in, a stream of events out. GLM, Kimi, custom OpenAI-compatible
//! endpoints and the simulator all implement [`Provider`]; the wire code lives in `exai-providers`.

use std::time::Duration;

use futures::stream::BoxStream;
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One part of a message: text, or an image for vision models (a `data:` URL or an `https:` URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text { text: String },
    ImageUrl { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            parts: vec![Part::Text { text: text.into() }],
        }
    }
}

/// A provider-neutral chat request. `model` is the provider's own model id (after alias resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// Ask for the model's reasoning (GLM `thinking: {type: enabled}`; Kimi thinking models always think).
    pub thinking: bool,
    /// Let the model search the web (GLM `web_search` tool, Kimi `$web_search` builtin).
    pub web_search: bool,
    /// Stream the answer as server-sent events.
    pub stream: bool,
    /// Longest this one upstream request may take; set from the caller's remaining deadline.
    pub timeout: Duration,
}

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// What a chat produces, in order. A non-streaming call yields the same events at once.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// A piece of the answer.
    Text(String),
    /// A piece of the model's reasoning (`reasoning_content`).
    Reasoning(String),
    /// The provider ran a web search on the model's behalf (query as given, when known).
    WebSearch(Option<String>),
    /// Token usage (usually last).
    Usage(Usage),
    /// The answer is complete: `stop`, `length`, `content_filter`, ... as the provider said, the model id
    /// the provider reports having used, and whether the upstream was exai's simulator (its responses carry
    /// `x-exai-simulator`), so a simulated answer is never passed off as GLM's or Kimi's.
    Done {
        finish_reason: String,
        model: String,
        simulated: bool,
    },
}

/// Why a provider call failed, with what the caller needs to decide about retrying.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// No API key configured: names the variable to set.
    #[error("{env} is not set: {provider} needs an API key (set {env}, or pick another model)")]
    MissingKey { provider: String, env: String },
    /// Could not connect or send.
    #[error("{provider}: cannot reach {url}: {message}")]
    Connect {
        provider: String,
        url: String,
        message: String,
    },
    /// The upstream answered with an HTTP error.
    #[error("{provider}: HTTP {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No (complete) answer within the request's timeout.
    #[error("{provider}: no answer within {} ms (received {received_chars} characters)", .after.as_millis())]
    Timeout {
        provider: String,
        after: Duration,
        received_chars: usize,
    },
    /// The stream broke after it started: never a silently truncated answer.
    #[error("{provider}: the response stream broke after {received_chars} characters: {message}")]
    StreamBroken {
        provider: String,
        received_chars: usize,
        message: String,
    },
    /// The upstream sent something that is not the documented format.
    #[error("{provider}: malformed response: {message}")]
    Malformed { provider: String, message: String },
}

impl ProviderError {
    /// Whether trying again could succeed (connect errors, 429, 5xx, timeouts before any output).
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Connect { .. } => true,
            ProviderError::Http { status, .. } => *status == 429 || *status >= 500,
            ProviderError::Timeout { received_chars, .. } => *received_chars == 0,
            ProviderError::MissingKey { .. } | ProviderError::StreamBroken { .. } | ProviderError::Malformed { .. } => {
                false
            }
        }
    }
}

/// A chat-completions provider.
pub trait Provider: Send + Sync + 'static {
    /// The provider's name as users see it: `glm`, `kimi`, `sim`, or a custom endpoint's name.
    fn name(&self) -> &str;
    /// Whether the provider can be called: it has its API key, or needs none (local endpoints).
    fn has_credentials(&self) -> bool {
        true
    }
    /// Starts a chat. Errors before the first event (missing key, HTTP error) arrive as the stream's first
    /// and only item; a stream that ends without [`ChatEvent::Done`] must instead end with an error.
    fn chat(&self, request: ChatRequest) -> BoxStream<'static, Result<ChatEvent, ProviderError>>;
}

/// The providers this process can call, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: std::collections::BTreeMap<String, std::sync::Arc<dyn Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Providers {
    /// Registers `provider` under `name` (the model registry's provider name), replacing any other.
    pub fn insert(&mut self, name: impl Into<String>, provider: std::sync::Arc<dyn Provider>) {
        self.by_name.insert(name.into(), provider);
    }

    pub fn get(&self, name: &str) -> Option<&std::sync::Arc<dyn Provider>> {
        self.by_name.get(name)
    }

    /// Whether a provider of that name exists and has credentials.
    pub fn usable(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(|p| p.has_credentials())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &std::sync::Arc<dyn Provider>)> {
        self.by_name.iter()
    }
}

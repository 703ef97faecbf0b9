//! `Script`: what one simulated request does — reply text, reasoning, timing, HTTP errors and faults.
//! Every field is optional; the JSON form is what the `x-sim-script` header and `push_script` take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Family;
use crate::rng::Rng;

/// How one request behaves. An empty script echoes: `"sim: " + the last user message`.
///
/// ```json
/// {"reply": "hello", "reasoning": "thinking…", "ttft_ms": [100, 300], "inter_token_ms": 20,
///  "chunk_chars": 4, "usage": {"prompt_tokens": 10, "completion_tokens": 3}, "finish_reason": "stop"}
/// {"status": 429, "retry_after_secs": 2}
/// {"reset_after_chunks": 3}
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Script {
    /// Fixed answer text; `None` echoes `"sim: " + last user message` (so tests see what reached upstream).
    pub reply: Option<String>,
    /// Reasoning text streamed as `delta.reasoning_content` before the content (`message.reasoning_content`
    /// when not streaming). `None` uses the model's default (thinking models reason, others do not);
    /// `Some("")` turns reasoning off.
    pub reasoning: Option<String>,
    /// Delay before the first chunk (streaming) or added to the total (non-streaming). For error statuses,
    /// the delay before the error. A number or a `[min, max]` range in milliseconds.
    pub ttft_ms: Option<Delay>,
    /// Delay before each further chunk.
    pub inter_token_ms: Option<Delay>,
    /// Characters per streamed chunk (default 4, about one token).
    pub chunk_chars: Option<usize>,
    /// Answer with this HTTP error status (400, 401, 429, 500, 502, 503, …) and the family's error body.
    pub status: Option<u16>,
    /// Override the error message.
    pub error_message: Option<String>,
    /// Override the error code (GLM `code`, OpenAI `code`) or type (Kimi `type`).
    pub error_code: Option<String>,
    /// Error body shape; default: the model's family.
    pub error_style: Option<Family>,
    /// With `status`: send `Retry-After: N`.
    pub retry_after_secs: Option<u64>,
    /// Accept the request and never answer (no status line, no headers).
    pub hang: bool,
    /// Send this many body chunks (SSE events; non-streaming: half the JSON) and then go silent forever.
    pub hang_after_chunks: Option<usize>,
    /// Send this many body chunks and then abort the connection (no `[DONE]`, no complete JSON).
    pub reset_after_chunks: Option<usize>,
    /// Non-streaming: a truncated, invalid JSON body with status 200. Streaming: one invalid `data:` line
    /// right after the role chunk, then the normal stream.
    pub malformed: bool,
    /// Reported token counts; missing counts are estimated (about 4 characters per token).
    pub usage: Option<UsageSpec>,
    /// Override `finish_reason` (default `stop`, `tool_calls` for the web-search call).
    pub finish_reason: Option<String>,
    /// Kimi-style builtin `$web_search` round trip: answer with a `builtin_function` tool call first, and
    /// normally once the request carries the `role: "tool"` result for it.
    pub web_search: bool,
}

/// A delay in milliseconds: fixed (`250`) or uniform in a range (`[100, 400]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Delay {
    Fixed(u64),
    Range([u64; 2]),
}

impl Delay {
    pub(crate) fn sample(self, rng: &Rng) -> Duration {
        let ms = match self {
            Delay::Fixed(ms) => ms,
            Delay::Range([a, b]) => rng.between(a.min(b), a.max(b)),
        };
        Duration::from_millis(ms)
    }
}

/// Token counts to report instead of the estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSpec {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

impl Script {
    /// Echo (the default behaviour), spelled out.
    pub fn echo() -> Self {
        Script::default()
    }

    /// Answer with fixed text.
    pub fn reply(text: impl Into<String>) -> Self {
        Script {
            reply: Some(text.into()),
            ..Script::default()
        }
    }

    /// Fail with an HTTP status and the family's error body.
    pub fn status(status: u16) -> Self {
        Script {
            status: Some(status),
            ..Script::default()
        }
    }

    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Script {
            status: Some(429),
            retry_after_secs: Some(retry_after_secs),
            ..Script::default()
        }
    }

    /// Accept and never answer.
    pub fn hang() -> Self {
        Script {
            hang: true,
            ..Script::default()
        }
    }

    /// Send `n` chunks, then go silent.
    pub fn hang_after_chunks(n: usize) -> Self {
        Script {
            hang_after_chunks: Some(n),
            ..Script::default()
        }
    }

    /// Send `n` chunks, then abort the connection.
    pub fn reset_after_chunks(n: usize) -> Self {
        Script {
            reset_after_chunks: Some(n),
            ..Script::default()
        }
    }

    /// Invalid JSON body / invalid SSE line.
    pub fn malformed() -> Self {
        Script {
            malformed: true,
            ..Script::default()
        }
    }

    /// The Kimi `$web_search` round trip.
    pub fn web_search() -> Self {
        Script {
            web_search: true,
            ..Script::default()
        }
    }

    pub fn with_reasoning(mut self, text: impl Into<String>) -> Self {
        self.reasoning = Some(text.into());
        self
    }

    pub fn with_ttft_ms(mut self, delay: Delay) -> Self {
        self.ttft_ms = Some(delay);
        self
    }

    pub fn with_inter_token_ms(mut self, delay: Delay) -> Self {
        self.inter_token_ms = Some(delay);
        self
    }

    pub fn with_chunk_chars(mut self, chars: usize) -> Self {
        self.chunk_chars = Some(chars);
        self
    }

    pub fn with_usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = Some(UsageSpec {
            prompt_tokens: Some(prompt_tokens),
            completion_tokens: Some(completion_tokens),
        });
        self
    }

    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    pub fn with_error_style(mut self, style: Family) -> Self {
        self.error_style = Some(style);
        self
    }

    /// The script as an ASCII-only JSON string, ready for the `x-sim-script` header.
    pub fn to_header_value(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() && !c.is_ascii_control() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out
    }
}

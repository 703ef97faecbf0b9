//! Turns a chat request plus its script into a `Plan`: the answer text, reasoning, tool call, usage and
//! every delay — and renders the non-streaming `chat.completion` object from it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::config::{Family, LatencyProfile};
use crate::rng::Rng;
use crate::script::Script;

/// Name of Kimi's builtin web-search function.
pub const WEB_SEARCH_FN: &str = "$web_search";

/// The parts of a chat request the simulator looks at.
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub body: &'a Value,
    /// `stream_options.include_usage == true`.
    pub include_usage: bool,
}

impl ChatRequest<'_> {
    fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn thinking_disabled(&self) -> bool {
        self.body
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            == Some("disabled")
    }
}

/// Where a `web_search` script stands for this request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WebSearchLeg {
    /// No tool result yet: answer with the `$web_search` tool call.
    Call,
    /// The last message is the tool result for our call: answer normally.
    Answer { search_id: String },
    /// A `role: "tool"` message whose `tool_call_id` matches no assistant tool call (Kimi rejects this).
    Orphan { tool_call_id: String },
}

/// Everything needed to send one successful answer.
#[derive(Debug)]
pub(crate) struct Plan {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub family: Family,
    pub reasoning_chunks: Vec<String>,
    pub content_chunks: Vec<String>,
    /// A complete tool call object (`id`, `type`, `function`) when answering with one.
    pub tool_call: Option<Value>,
    pub finish_reason: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Delay before the first event.
    pub ttft: Duration,
    /// Delay before each reasoning, content and tool-call chunk, in that order.
    pub inter: Vec<Duration>,
    pub include_usage: bool,
}

/// The text of a message's `content`: a string, or the `text` parts of a content array.
pub(crate) fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn last_user(messages: &[Value]) -> Option<String> {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| message_text(&m["content"]))
}

/// Finds which leg of the web-search round trip a request is on.
pub(crate) fn web_search_leg(messages: &[Value]) -> WebSearchLeg {
    let Some(last) = messages.last() else {
        return WebSearchLeg::Call;
    };
    if last.get("role").and_then(Value::as_str) != Some("tool") {
        return WebSearchLeg::Call;
    }
    let tool_call_id = last.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
    let call = messages
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(tool_call_id));
    match call {
        Some(call) => {
            let args = call["function"]["arguments"].as_str().unwrap_or("{}");
            let search_id = serde_json::from_str::<Value>(args)
                .ok()
                .and_then(|a| a["search_result"]["search_id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".to_owned());
            WebSearchLeg::Answer { search_id }
        }
        None => WebSearchLeg::Orphan {
            tool_call_id: tool_call_id.to_owned(),
        },
    }
}

fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

fn split_chunks(text: &str, chunk_chars: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(chunk_chars.max(1)).map(|c| c.iter().collect()).collect()
}

fn truncate(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// Builds the plan. `thinks` is the model's default; `seq` makes ids unique.
pub(crate) fn plan(
    req: &ChatRequest<'_>,
    script: &Script,
    family: Family,
    thinks: bool,
    latency: LatencyProfile,
    rng: &Rng,
    seq: u64,
) -> Plan {
    let messages = req.messages();
    let user = last_user(messages);
    let user_text = user.as_deref().unwrap_or("(no user message)");

    let mut tool_call = None;
    let mut finish_reason = "stop".to_owned();
    let mut content = match &script.reply {
        Some(reply) => reply.clone(),
        None => format!("sim: {user_text}"),
    };
    let mut search_tokens = 0;
    if script.web_search {
        match web_search_leg(messages) {
            WebSearchLeg::Call => {
                let search_id = format!("simsearch-{seq}");
                search_tokens = 1_000 + rng.between(0, 2_000);
                let arguments = json!({
                    "query": user_text,
                    "search_result": {"search_id": search_id},
                    "usage": {"total_tokens": search_tokens},
                });
                tool_call = Some(json!({
                    "id": format!("simcall-websearch-{seq}"),
                    "type": "builtin_function",
                    "function": {"name": WEB_SEARCH_FN, "arguments": arguments.to_string()},
                }));
                content = String::new();
                finish_reason = "tool_calls".to_owned();
            }
            WebSearchLeg::Answer { search_id } => {
                if script.reply.is_none() {
                    content = format!("sim: {user_text} [web_search {search_id}]");
                }
            }
            // Rejected by the route before planning; plan an ordinary answer if it ever gets here.
            WebSearchLeg::Orphan { .. } => {}
        }
    }
    if let Some(reason) = &script.finish_reason {
        finish_reason = reason.clone();
    }

    let reasoning = match &script.reasoning {
        Some(r) => r.clone(),
        None if thinks && !req.thinking_disabled() => {
            format!(
                "sim-reasoning: the user asked \"{}\"; answering.",
                truncate(user_text, 80)
            )
        }
        None => String::new(),
    };

    let chunk_chars = script.chunk_chars.unwrap_or(4).max(1);
    let reasoning_chunks = split_chunks(&reasoning, chunk_chars);
    let content_chunks = split_chunks(&content, chunk_chars);
    let n_chunks = reasoning_chunks.len() + content_chunks.len() + usize::from(tool_call.is_some());

    let (ttft, inter) = timing(script, family, latency, rng, n_chunks);

    let prompt_chars: usize = messages
        .iter()
        .map(|m| message_text(&m["content"]).chars().count() + 16)
        .sum();
    let usage = script.usage.unwrap_or_default();
    let prompt_tokens = usage
        .prompt_tokens
        .unwrap_or_else(|| estimate_tokens(prompt_chars) + search_tokens);
    let completion_tokens = usage.completion_tokens.unwrap_or_else(|| {
        let tool_chars = tool_call
            .as_ref()
            .map_or(0, |t| t["function"]["arguments"].as_str().map_or(0, str::len));
        estimate_tokens(reasoning.chars().count() + content.chars().count() + tool_chars)
    });

    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Plan {
        id: format!("simcmpl-{seq}-{:012x}", rng.next_u64() & 0xFFFF_FFFF_FFFF),
        created,
        model: req.model.to_owned(),
        family,
        reasoning_chunks,
        content_chunks,
        tool_call,
        finish_reason,
        prompt_tokens,
        completion_tokens,
        ttft,
        inter,
        include_usage: req.include_usage,
    }
}

/// Time to first token and one delay per chunk: from the script where it says, else from the profile.
fn timing(
    script: &Script,
    family: Family,
    latency: LatencyProfile,
    rng: &Rng,
    n_chunks: usize,
) -> (Duration, Vec<Duration>) {
    let profile_total = latency
        .total_ms(family)
        .map(|(lo, hi)| Duration::from_millis(rng.between(lo, hi)));
    let ttft = match (script.ttft_ms, profile_total) {
        (Some(d), _) => d.sample(rng),
        (None, Some(total)) => total.mul_f64(rng.between(20, 40) as f64 / 100.0),
        (None, None) => Duration::ZERO,
    };
    let inter = (0..n_chunks)
        .map(|_| match (script.inter_token_ms, profile_total) {
            (Some(d), _) => d.sample(rng),
            (None, Some(total)) => total.saturating_sub(ttft) / n_chunks.max(1) as u32,
            (None, None) => Duration::ZERO,
        })
        .collect();
    (ttft, inter)
}

impl Plan {
    pub(crate) fn total_delay(&self) -> Duration {
        self.ttft + self.inter.iter().sum::<Duration>()
    }

    pub(crate) fn reasoning(&self) -> String {
        self.reasoning_chunks.concat()
    }

    pub(crate) fn content(&self) -> String {
        self.content_chunks.concat()
    }

    /// Usage in the family's shape: GLM adds `prompt_tokens_details.cached_tokens`, Kimi a top-level
    /// `cached_tokens`.
    pub(crate) fn usage_json(&self) -> Value {
        let mut usage = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        });
        match self.family {
            Family::Glm => usage["prompt_tokens_details"] = json!({"cached_tokens": 0}),
            Family::Kimi => usage["cached_tokens"] = json!(0),
            Family::OpenAi => {}
        }
        usage
    }

    /// The non-streaming `chat.completion` object.
    pub(crate) fn completion_json(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.content()});
        let reasoning = self.reasoning();
        if !reasoning.is_empty() {
            message["reasoning_content"] = json!(reasoning);
        }
        if let Some(call) = &self.tool_call {
            let mut call = call.clone();
            call["index"] = json!(0);
            message["tool_calls"] = json!([call]);
        }
        let mut body = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage_json(),
        });
        if self.family == Family::Glm {
            body["request_id"] = json!(self.id);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &Value) -> ChatRequest<'_> {
        ChatRequest {
            model: body["model"].as_str().unwrap(),
            body,
            include_usage: false,
        }
    }

    #[test]
    fn echo_uses_the_last_user_message_and_content_parts() {
        let body = json!({"model": "sim-echo", "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "sec"}, {"type": "text", "text": "ond"}]},
        ]});
        let p = plan(
            &request(&body),
            &Script::default(),
            Family::OpenAi,
            false,
            LatencyProfile::Zero,
            &Rng::new(1),
            1,
        );
        assert_eq!(p.content(), "sim: second");
        assert_eq!(p.reasoning(), "");
        assert_eq!(p.total_delay(), Duration::ZERO);
        assert!(p.id.starts_with("simcmpl-"));
    }

    #[test]
    fn thinking_models_reason_unless_disabled() {
        let on = json!({"model": "glm-4.6", "messages": [{"role": "user", "content": "q"}]});
        let off = json!({"model": "glm-4.6", "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": "q"}]});
        let rng = Rng::new(1);
        let s = Script::default();
        assert!(
            !plan(&request(&on), &s, Family::Glm, true, LatencyProfile::Zero, &rng, 1)
                .reasoning()
                .is_empty()
        );
        assert!(
            plan(&request(&off), &s, Family::Glm, true, LatencyProfile::Zero, &rng, 2)
                .reasoning()
                .is_empty()
        );
        let silent = Script::default().with_reasoning("");
        assert!(
            plan(&request(&on), &silent, Family::Glm, true, LatencyProfile::Zero, &rng, 3)
                .reasoning()
                .is_empty()
        );
    }

    #[test]
    fn realistic_totals_stay_in_each_family_range() {
        let rng = Rng::new(42);
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "a longer question here"}]});
        for (family, lo, hi) in [(Family::Glm, 1_000, 5_000), (Family::Kimi, 2_000, 10_000)] {
            for seq in 0..50 {
                let p = plan(
                    &request(&body),
                    &Script::default(),
                    family,
                    false,
                    LatencyProfile::Realistic,
                    &rng,
                    seq,
                );
                let total = p.total_delay().as_millis() as u64;
                assert!((lo - 5..=hi).contains(&total), "{family:?} total {total} ms");
                assert!(p.ttft > Duration::ZERO && p.ttft < p.total_delay());
            }
        }
    }

    #[test]
    fn script_delays_override_the_profile() {
        let rng = Rng::new(3);
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "abcdefgh"}]});
        let s = Script::reply("12345678")
            .with_ttft_ms(crate::Delay::Fixed(100))
            .with_inter_token_ms(crate::Delay::Range([10, 20]))
            .with_chunk_chars(2);
        let p = plan(
            &request(&body),
            &s,
            Family::Kimi,
            false,
            LatencyProfile::Realistic,
            &rng,
            1,
        );
        assert_eq!(p.ttft, Duration::from_millis(100));
        assert_eq!(p.content_chunks, ["12", "34", "56", "78"]);
        assert_eq!(p.inter.len(), 4);
        assert!(p.inter.iter().all(|d| (10..=20).contains(&(d.as_millis() as u64))));
    }

    #[test]
    fn web_search_legs() {
        let call = json!({"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "builtin_function",
            "function": {"name": "$web_search", "arguments": "{\"search_result\":{\"search_id\":\"s9\"}}"}}]});
        let user = json!({"role": "user", "content": "q"});
        assert_eq!(web_search_leg(std::slice::from_ref(&user)), WebSearchLeg::Call);
        let good = [
            user.clone(),
            call.clone(),
            json!({"role": "tool", "tool_call_id": "c1", "content": "{}"}),
        ];
        assert_eq!(web_search_leg(&good), WebSearchLeg::Answer { search_id: "s9".into() });
        let bad = [
            user,
            call,
            json!({"role": "tool", "tool_call_id": "nope", "content": "{}"}),
        ];
        assert_eq!(
            web_search_leg(&bad),
            WebSearchLeg::Orphan {
                tool_call_id: "nope".into()
            }
        );
    }
}

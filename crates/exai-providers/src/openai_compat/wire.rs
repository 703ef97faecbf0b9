//! The chat-completions wire format: the request we send, the response, stream chunk and error bodies
//! we accept. Lenient on input (unknown fields ignored, most fields optional), exact on output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------- request

/// `POST {base}/chat/completions` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// GLM: `{"type": "enabled" | "disabled"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A tool offered to the model. Only the provider-run search tools are used here.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tool {
    /// GLM: `{"type":"web_search","web_search":{"enable":true,"search_result":true}}`.
    WebSearch { web_search: WebSearchTool },
    /// Kimi: `{"type":"builtin_function","function":{"name":"$web_search"}}`.
    BuiltinFunction { function: FunctionName },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebSearchTool {
    pub enable: bool,
    pub search_result: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionName {
    pub name: String,
}

/// One message as sent. `content` is a string for plain text, or parts for images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireMessage {
    pub role: String,
    pub content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl WireMessage {
    pub fn plain(role: &str, content: Content) -> Self {
        Self {
            role: role.to_string(),
            content,
            reasoning_content: None,
            tool_calls: None,
            tool_call_id: None,
            name: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUrl {
    pub url: String,
}

/// A tool call, as the model asked for it and as we echo it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "builtin_function")]
    pub kind: String,
    #[serde(default)]
    pub function: FunctionCall,
}

fn builtin_function() -> String {
    "builtin_function".to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

// --------------------------------------------------------------------------------------------- response

/// A non-streaming `chat.completion`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// GLM: search results the provider used (present when the `web_search` tool ran).
    #[serde(default)]
    pub web_search: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Choice {
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Moonshot puts usage here.
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// One `chat.completion.chunk` of a stream.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatChunk {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub web_search: Option<Vec<Value>>,
    /// Some servers report a failure inside the stream.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Moonshot: usage of the whole answer, in the chunk that carries `finish_reason`.
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A piece of a streamed tool call: `id` and `name` come first, `arguments` may arrive in pieces.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolCallDelta {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

// ------------------------------------------------------------------------------------------------ errors

/// An error body: OpenAI/Kimi `{"error":{...}}`, or GLM's older `{"code":..,"msg":..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
}

impl ErrorDetail {
    /// `message [type, code]`, leaving out what is missing.
    pub fn describe(&self) -> Option<String> {
        let mut tags = Vec::new();
        if let Some(k) = self.kind.as_deref().filter(|k| !k.is_empty()) {
            tags.push(k.to_string());
        }
        if let Some(c) = self.code.as_ref().and_then(value_text) {
            tags.push(format!("code {c}"));
        }
        let message = self.message.clone().filter(|m| !m.is_empty());
        match (message, tags.is_empty()) {
            (None, true) => None,
            (Some(m), true) => Some(m),
            (Some(m), false) => Some(format!("{m} [{}]", tags.join(", "))),
            (None, false) => Some(tags.join(", ")),
        }
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The human message in an error body, or a trimmed copy of the body when it is not one we know.
pub fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        if let Some(text) = parsed.error.as_ref().and_then(ErrorDetail::describe) {
            return Some(text);
        }
        let legacy = ErrorDetail {
            message: parsed.msg.or(parsed.message),
            kind: None,
            code: parsed.code,
        };
        if let Some(text) = legacy.describe() {
            return Some(text);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    Some(short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_omits_unset_fields() {
        let req = ChatCompletionRequest {
            model: "glm-4.6".into(),
            messages: vec![WireMessage::plain("user", Content::Text("hi".into()))],
            temperature: None,
            max_tokens: None,
            stream: false,
            stream_options: None,
            thinking: None,
            tools: vec![],
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"model":"glm-4.6","messages":[{"role":"user","content":"hi"}],"stream":false})
        );
    }

    #[test]
    fn tools_and_parts_serialise_as_documented() {
        let glm = Tool::WebSearch {
            web_search: WebSearchTool {
                enable: true,
                search_result: true,
            },
        };
        assert_eq!(
            serde_json::to_value(&glm).unwrap(),
            json!({"type":"web_search","web_search":{"enable":true,"search_result":true}})
        );
        let kimi = Tool::BuiltinFunction {
            function: FunctionName {
                name: "$web_search".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&kimi).unwrap(),
            json!({"type":"builtin_function","function":{"name":"$web_search"}})
        );
        let parts = Content::Parts(vec![
            ContentPart::Text { text: "what".into() },
            ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: "data:image/png;base64,AA==".into(),
                },
            },
        ]);
        assert_eq!(
            serde_json::to_value(&parts).unwrap(),
            json!([{"type":"text","text":"what"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}])
        );
    }

    #[test]
    fn error_bodies_of_every_known_shape() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"error":{"message":"Rate limit reached","type":"rate_limit_reached_error"}}"#,
                Some("Rate limit reached [rate_limit_reached_error]"),
            ),
            (
                r#"{"error":{"code":"1302","message":"High concurrency usage of this API"}}"#,
                Some("High concurrency usage of this API [code 1302]"),
            ),
            (
                r#"{"code":1113,"msg":"Insufficient balance","success":false}"#,
                Some("Insufficient balance [code 1113]"),
            ),
            (
                r#"{"error":{"message":"Invalid Authentication"}}"#,
                Some("Invalid Authentication"),
            ),
            ("upstream connect error", Some("upstream connect error")),
            ("", None),
        ];
        for (body, expected) in cases {
            assert_eq!(error_message(body.as_bytes()).as_deref(), *expected, "body {body}");
        }
    }

    #[test]
    fn chunk_with_usage_in_choice() {
        let chunk: ChatChunk = serde_json::from_str(
            r#"{"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}]}"#,
        )
        .unwrap();
        assert_eq!(chunk.choices[0].usage.unwrap().total_tokens, 10);
    }
}

//! Turns decoded chunks and completions into `ChatEvent`s while keeping what a round produced: text,
//! reasoning, tool calls (assembled from deltas), usage and finish reason. Pure: no I/O, no clock.

use std::collections::VecDeque;

use exai_core::provider::ChatEvent;

use super::wire::{ChatChunk, ChatCompletion, ToolCallDelta, WireUsage};

/// A tool call, whole or being assembled from stream deltas.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartialCall {
    pub id: String,
    pub kind: Option<String>,
    pub name: String,
    pub arguments: String,
}

/// What one round (one HTTP request) produced.
#[derive(Debug, Default)]
pub struct Round {
    pub finish: Option<String>,
    pub done_marker: bool,
    pub text: String,
    pub reasoning: String,
    pub calls: Vec<PartialCall>,
    pub usage: Option<WireUsage>,
    searched: bool,
}

impl Round {
    /// Finished as far as the wire goes: `[DONE]` seen or a finish reason given.
    pub fn complete(&self) -> bool {
        self.done_marker || self.finish.is_some()
    }

    fn add_call_delta(&mut self, d: &ToolCallDelta) -> Result<(), AssembleError> {
        let index = d.index.unwrap_or(self.calls.len().saturating_sub(1));
        if index >= MAX_TOOL_CALLS {
            // Calls are kept by index: an index of 10^12 would otherwise allocate until the process aborts.
            return Err(AssembleError::Malformed(format!(
                "tool call index {index} is past the limit of {MAX_TOOL_CALLS} calls in one answer"
            )));
        }
        while self.calls.len() <= index {
            self.calls.push(PartialCall::default());
        }
        let call = &mut self.calls[index];
        if let Some(id) = &d.id {
            call.id.clone_from(id);
        }
        if d.kind.is_some() {
            call.kind.clone_from(&d.kind);
        }
        if let Some(f) = &d.function {
            if let Some(n) = &f.name {
                call.name.push_str(n);
            }
            if let Some(a) = &f.arguments {
                call.arguments.push_str(a);
            }
        }
        Ok(())
    }
}

/// The most tool calls one answer may carry (far more than any request offers tools for).
pub const MAX_TOOL_CALLS: usize = 256;

/// The most stream data one chat may deliver (the sum of its `data:` payloads, across rounds): what the assembler
/// keeps (text, reasoning, tool arguments) is part of it, so an endless stream of small events cannot grow memory
/// until the deadline.
pub const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// Why a chunk or body could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssembleError {
    /// Not the documented format.
    Malformed(String),
    /// The upstream reported an error inside a 200 stream.
    Upstream(String),
}

/// The event assembler for one chat (across rounds).
#[derive(Debug)]
pub struct Assembler {
    pub events: VecDeque<ChatEvent>,
    /// Characters of text and reasoning produced so far.
    pub received_chars: usize,
    /// The model id the provider reports (the requested one until it says otherwise).
    pub model: String,
    pub round: Round,
    /// Bytes of stream data taken so far (see [`MAX_STREAM_BYTES`]).
    streamed_bytes: usize,
}

impl Assembler {
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            events: VecDeque::new(),
            received_chars: 0,
            model: model.into(),
            round: Round::default(),
            streamed_bytes: 0,
        }
    }

    /// Starts the next round, returning the finished one.
    pub fn take_round(&mut self) -> Round {
        std::mem::take(&mut self.round)
    }

    /// One SSE `data:` payload. Returns `true` for the `[DONE]` marker.
    pub fn chunk(&mut self, data: &str) -> Result<bool, AssembleError> {
        self.streamed_bytes += data.len();
        if self.streamed_bytes > MAX_STREAM_BYTES {
            return Err(AssembleError::Malformed(format!(
                "the stream is over the {MAX_STREAM_BYTES}-byte limit for one answer; the rest was not read"
            )));
        }
        if data.trim() == "[DONE]" {
            self.round.done_marker = true;
            return Ok(true);
        }
        let chunk: ChatChunk = serde_json::from_str(data).map_err(|e| {
            let shown: String = data.chars().take(120).collect();
            AssembleError::Malformed(format!("stream chunk {shown:?}: {e}"))
        })?;
        if let Some(error) = chunk.error {
            return Err(AssembleError::Upstream(
                error.describe().unwrap_or_else(|| "error event in stream".to_string()),
            ));
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if chunk.usage.is_some() {
            self.round.usage = chunk.usage;
        }
        if chunk.web_search.is_some_and(|w| !w.is_empty()) {
            self.searched();
        }
        for choice in chunk.choices {
            if let Some(r) = choice.delta.reasoning_content {
                self.reasoning(r);
            }
            if let Some(t) = choice.delta.content {
                self.text(t);
            }
            for d in choice.delta.tool_calls.iter().flatten() {
                self.round.add_call_delta(d)?;
            }
            if choice.usage.is_some() {
                self.round.usage = choice.usage;
            }
            if let Some(f) = choice.finish_reason.filter(|f| !f.is_empty()) {
                self.round.finish = Some(f);
            }
        }
        Ok(false)
    }

    /// A whole non-streaming completion.
    pub fn completion(&mut self, completion: ChatCompletion) -> Result<(), AssembleError> {
        if let Some(model) = completion.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        let choice = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| AssembleError::Malformed("response has no choices".to_string()))?;
        self.round.finish = choice.finish_reason;
        self.round.usage = completion.usage.or(choice.usage);
        if completion.web_search.is_some_and(|w| !w.is_empty()) {
            self.searched();
        }
        let message = choice.message;
        if let Some(r) = message.reasoning_content {
            self.reasoning(r);
        }
        if let Some(t) = message.content {
            self.text(t);
        }
        for call in message.tool_calls.unwrap_or_default() {
            self.round.calls.push(PartialCall {
                id: call.id,
                kind: Some(call.kind),
                name: call.function.name,
                arguments: call.function.arguments,
            });
        }
        Ok(())
    }

    fn searched(&mut self) {
        if !self.round.searched {
            self.round.searched = true;
            self.events.push_back(ChatEvent::WebSearch(None));
        }
    }

    fn text(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        self.received_chars += text.chars().count();
        self.round.text.push_str(&text);
        self.events.push_back(ChatEvent::Text(text));
    }

    fn reasoning(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        self.received_chars += text.chars().count();
        self.round.reasoning.push_str(&text);
        self.events.push_back(ChatEvent::Reasoning(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_index_past_the_limit_is_malformed_not_an_allocation() {
        let mut asm = Assembler::new("m");
        let ok = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"name":"f"}}]}}]}"#;
        assert!(!asm.chunk(ok).unwrap(), "not the [DONE] marker");
        assert_eq!(asm.round.calls.len(), 4);
        let huge =
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1000000000000,"function":{"name":"f"}}]}}]}"#;
        match asm.chunk(huge) {
            Err(AssembleError::Malformed(m)) => assert!(m.contains("limit of 256"), "{m}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert_eq!(asm.round.calls.len(), 4, "nothing was allocated for the refused index");
    }

    #[test]
    fn a_stream_past_its_byte_limit_is_malformed() {
        let mut asm = Assembler::new("m");
        let text = "x".repeat(1024 * 1024);
        let data = serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string();
        let mut sent = 0;
        let err = loop {
            match asm.chunk(&data) {
                Ok(_) => sent += data.len(),
                Err(e) => break e,
            }
            assert!(sent <= MAX_STREAM_BYTES, "past the limit without an error");
        };
        match err {
            AssembleError::Malformed(m) => assert!(m.contains(&format!("{MAX_STREAM_BYTES}-byte limit")), "{m}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(asm.round.text.len() <= MAX_STREAM_BYTES);
    }
}

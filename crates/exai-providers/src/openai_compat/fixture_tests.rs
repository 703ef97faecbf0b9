//! Serialisation and parsing checked against recorded provider traffic in `tests/fixtures/`.
//! Streams are fed through the SSE parser in awkward splits to mimic real network chunking.

use std::time::Duration;

use exai_core::provider::{ChatEvent, ChatRequest, Message, Part, Role};
use serde_json::Value;

use super::assemble::Assembler;
use super::client::{append_search_echo, build_request};
use super::sse::SseParser;
use super::wire::{ChatCompletion, error_message};
use crate::{glm, kimi};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/", $name))
    };
}

/// Feeds `sse` in chunks of `split` bytes; returns the events and whether `[DONE]` was seen.
fn play(sse: &str, split: usize) -> (Assembler, bool) {
    let mut parser = SseParser::new();
    let mut asm = Assembler::new("requested");
    let mut done = false;
    for piece in sse.as_bytes().chunks(split) {
        for event in parser.feed(piece).unwrap() {
            done |= asm.chunk(&event.data).unwrap();
        }
    }
    (asm, done)
}

fn texts(asm: &Assembler) -> (String, String) {
    let mut text = String::new();
    let mut reasoning = String::new();
    for e in &asm.events {
        match e {
            ChatEvent::Text(t) => text.push_str(t),
            ChatEvent::Reasoning(r) => reasoning.push_str(r),
            _ => {}
        }
    }
    (text, reasoning)
}

#[test]
fn glm_stream_with_reasoning_in_any_split() {
    for split in [1, 2, 3, 7, 64, 4096] {
        let (asm, done) = play(fixture!("glm_stream_reasoning.sse"), split);
        assert!(done);
        let (text, reasoning) = texts(&asm);
        assert_eq!(text, "\nOlá!");
        assert_eq!(reasoning, "The person wants \"hi\" in Portuguese: Olá.");
        assert_eq!(asm.received_chars, text.chars().count() + reasoning.chars().count());
        assert_eq!(asm.model, "glm-4.5");
        assert_eq!(asm.round.finish.as_deref(), Some("stop"));
        let usage = asm.round.usage.unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
            (18, 202, 220)
        );
    }
}

#[test]
fn kimi_stream_usage_inside_choice() {
    let (asm, done) = play(fixture!("kimi_stream_choice_usage.sse"), 5);
    assert!(done);
    assert_eq!(texts(&asm).0, "你好，李雷！");
    assert_eq!(asm.round.usage.unwrap().total_tokens, 32);
    assert_eq!(asm.model, "moonshot-v1-8k");
}

#[test]
fn openai_usage_after_finish_reason() {
    let (asm, done) = play(fixture!("openai_stream_include_usage.sse"), 11);
    assert!(done);
    assert_eq!(texts(&asm).0, "Hello");
    assert_eq!(asm.round.finish.as_deref(), Some("stop"));
    assert_eq!(asm.round.usage.unwrap().total_tokens, 10);
}

#[test]
fn glm_completion_parses() {
    let completion: ChatCompletion = serde_json::from_str(fixture!("glm_completion.json")).unwrap();
    let mut asm = Assembler::new("glm-4.6");
    asm.completion(completion).unwrap();
    let events: Vec<_> = asm.events.iter().cloned().collect();
    assert!(matches!(&events[0], ChatEvent::Reasoning(r) if r.starts_with("The person is asking")));
    assert_eq!(events[1], ChatEvent::Text("Olá!".into()));
    assert_eq!(asm.round.usage.unwrap().total_tokens, 118);
    assert_eq!(asm.model, "glm-4.5");
}

#[test]
fn error_bodies_from_the_docs() {
    assert_eq!(
        error_message(fixture!("glm_error_1302.json").as_bytes()).unwrap(),
        "High concurrency usage of this API, please reduce concurrency or contact customer service to increase limits \
         [code 1302]"
    );
    assert_eq!(
        error_message(fixture!("glm_error_legacy.json").as_bytes()).unwrap(),
        "Your account is in arrears, please recharge and try again [code 1113]"
    );
    let kimi = error_message(fixture!("kimi_error_429.json").as_bytes()).unwrap();
    assert!(kimi.starts_with("Your account org-xxx<ak-yyy> request reached organization max RPM: 3"));
    assert!(kimi.ends_with("[rate_limit_reached_error]"));
}

fn sent(body: &impl serde::Serialize) -> Value {
    // Compare what goes on the wire (f32 printed shortest), not serde_json's in-memory f64 widening.
    serde_json::from_slice(&serde_json::to_vec(body).unwrap()).unwrap()
}

#[test]
fn glm_request_matches_the_documented_shape() {
    let request = ChatRequest {
        model: "glm-4.6".into(),
        messages: vec![
            Message::text(Role::System, "You are a useful AI assistant."),
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text {
                        text: "What is in this picture?".into(),
                    },
                    Part::ImageUrl {
                        url: "https://example.com/cat.png".into(),
                    },
                ],
            },
        ],
        temperature: Some(0.6),
        max_output_tokens: Some(1024),
        thinking: true,
        web_search: true,
        stream: true,
        timeout: Duration::from_secs(60),
    };
    let body = build_request(&glm::profile(None, glm::DEFAULT_BASE_URL), &request);
    let expected: Value = serde_json::from_str(fixture!("glm_request_thinking_search.json")).unwrap();
    assert_eq!(sent(&body), expected);
}

#[test]
fn kimi_search_call_becomes_the_documented_follow_up() {
    let request = ChatRequest {
        model: "kimi-k2-0905-preview".into(),
        messages: vec![Message::text(Role::User, "What is new in Rust 1.90?")],
        temperature: None,
        max_output_tokens: None,
        thinking: false,
        web_search: true,
        stream: false,
        timeout: Duration::from_secs(60),
    };
    let mut body = build_request(&kimi::profile(None, kimi::DEFAULT_BASE_URL), &request);
    let completion: ChatCompletion = serde_json::from_str(fixture!("kimi_web_search_call.json")).unwrap();
    let mut asm = Assembler::new(&request.model);
    asm.completion(completion).unwrap();
    assert!(asm.events.is_empty(), "an empty content is no event: {:?}", asm.events);
    let round = asm.take_round();
    assert_eq!(round.finish.as_deref(), Some("tool_calls"));
    let queries = append_search_echo(&mut body.messages, round);
    assert_eq!(queries, vec![None]);
    let expected: Value = serde_json::from_str(fixture!("kimi_web_search_second_request.json")).unwrap();
    assert_eq!(sent(&body), expected);
}

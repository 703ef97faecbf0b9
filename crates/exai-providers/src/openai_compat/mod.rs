//! The OpenAI-compatible chat-completions client shared by every profile.
//! `wire` is the JSON format, `sse` the event-stream parser, `client` the provider itself.

pub mod assemble;
pub mod client;
pub mod sse;
pub mod wire;

#[cfg(test)]
mod fixture_tests;

pub use client::{OpenAiCompatProvider, build_request};

//! `exai-sim`: an OpenAI-compatible upstream simulator standing in for GLM (Z.ai) and Kimi (Moonshot),
//! which are unreachable from tests. A real HTTP server with scripted answers, latency, errors and faults.
//!
//! Crate map:
//! - [`config`]: [`SimConfig`], [`ModelSpec`], [`Family`] (GLM / Kimi / OpenAI shapes), [`LatencyProfile`].
//! - [`script`]: [`Script`], what one request does (reply, reasoning, delays, status, hang, reset, malformed,
//!   usage, finish reason, Kimi `$web_search` round trip).
//! - [`server`]: [`Simulator::start`] and [`SimHandle`] (URLs, request log, `push_script`, `reset`, `shutdown`).
//! - [`routes`]: [`router`] — `POST …/chat/completions` and `GET …/models` under any prefix.
//! - `reply`, `stream`, `errors`: answer planning, SSE chunks, provider-shaped error bodies.
//! - [`record`]: [`Recorded`] requests and their [`Outcome`] (including client hang-ups).
//!
//! Honesty: every response carries `x-exai-simulator: 1`, completion ids start with `simcmpl-`, and error
//! messages end in `[exai-sim]`.
//!
//! Script precedence per chat request: a queued one-shot script ([`SimHandle::push_script`]), else the
//! `x-sim-script` header (JSON of [`Script`]), else the model's configured script, else echo
//! (`"sim: " + last user message`). All delays use `tokio::time::sleep`, so paused-time tests work.
//!
//! Wire formats mirrored (from provider docs and recorded api.z.ai / api.moonshot traffic):
//! - **GLM**: streaming usage as top-level `usage` on the chunk that carries `finish_reason` (always, no
//!   `stream_options` needed) with `prompt_tokens_details.cached_tokens`; `role` repeated in every delta;
//!   `reasoning_content` deltas first for GLM-4.5/4.6 unless `thinking: {"type":"disabled"}`; non-streaming
//!   bodies carry `request_id`; errors `{"error":{"code":"1302","message":…}}` (string code, no type).
//! - **Kimi**: streaming usage inside the final choice (`choices[0].usage`, always) with a top-level
//!   `cached_tokens`; errors `{"error":{"message":…,"type":"rate_limit_reached_error"}}`; builtin
//!   `$web_search` as a `type: "builtin_function"` tool call (`finish_reason: "tool_calls"`) whose
//!   `arguments` the client echoes back in a `role: "tool"` message with the same `tool_call_id`.
//! - **OpenAI** (`sim-echo`, unknown prefixes): usage chunk with `choices: []` only when
//!   `stream_options.include_usage` is set.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use exai_sim::{Script, SimConfig, Simulator};
//! let sim = Simulator::start_local(SimConfig::default()).await?;
//! sim.push_script("glm-4.6", Script::status(503));
//! sim.push_script("glm-4.6", Script::status(503));
//! // … point the client at sim.base_url_glm(): two 503s, then "sim: <prompt>".
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod errors;
pub mod record;
mod reply;
mod rng;
pub mod routes;
pub mod script;
pub mod server;
pub mod state;
mod stream;

pub use config::{Family, LatencyProfile, ModelSpec, SimConfig, default_models};
pub use errors::error_body;
pub use record::{Outcome, Recorded, ScriptSource};
pub use reply::WEB_SEARCH_FN;
pub use routes::{SCRIPT_HEADER, SIM_HEADER, router};
pub use script::{Delay, Script, UsageSpec};
pub use server::{SimHandle, Simulator};
pub use state::SimState;

//! exai's MCP front-ends: one handler served by thin per-transport modules.
//!
//! - `handler`: [`ExaiHandler`], the one MCP server handler (tools/list, tools/call, discovery).
//! - `conformance`: the MCP conformance-suite fixtures served only with `--conformance-fixtures`.
//! - `catalog`: exai tool specs as MCP `Tool` definitions (shared with `exai tools`).
//! - `inbound`: decoding of incoming JSON-RPC with the specific error for each bad input.
//! - `json_limits`: the nesting and item limits of every transport, checked before any parser runs.
//! - `rescue`: the one place tool errors become MCP results, JSON-RPC errors or HTTP statuses.
//! - `executions`: every finished tool call written to the `tool_executions` table in the background.
//! - `prometheus`: the Prometheus recorder behind `GET /metrics`, with buckets from the metrics list.
//! - `stdio`: MCP over stdin/stdout.
//! - `http`: the daemon's axum app: Streamable HTTP at `/mcp`, bearer auth, health routes.
//! - `session_store`, `shared_sessions`: legacy MCP sessions in the store, served by any replica, deleted everywhere.
//! - `origin`: the `Host` / `Origin` allow-lists on the dashboard, `/metrics`, `/admin/*` and WebSocket upgrades.
//! - `conn_limit`: total and per-IP connection limits on the daemon's listeners; `conn_io`: each connection's IO
//!   (its slot, a deadline for its first bytes, a cap on what it may send before authenticating).
//! - `serve`: the accept loop behind every listener, with hyper's header-read timeout.
//! - `routes`: plain HTTP routes (`/healthz`, `/readyz`, `/metrics`, `/admin/...`).
//! - `tasks`: the MCP Tasks extension (SEP-2663): model-backed calls as pollable background tasks.
//! - `ws`: the WebSocket daemon endpoint: the EX-AI daemon protocol and MCP JSON-RPC, sessions, keepalive.

pub mod catalog;
mod conformance;
mod conn_io;
pub mod conn_limit;
mod executions;
mod handler;
pub mod http;
mod origin;
// Public only for `benches/decode.rs`; not part of the crate's API.
#[cfg(test)]
mod fuzz_support;
#[doc(hidden)]
pub mod inbound;
pub mod json_limits;
pub mod prometheus;
mod rescue;
mod routes;
mod serve;
mod session_store;
mod shared_sessions;
pub mod stdio;
mod tasks;
pub mod ws;

pub use handler::ExaiHandler;

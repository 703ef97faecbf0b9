//! exai's MCP front-ends: one handler served by thin per-transport modules.
//!
//! - `handler`: [`ExaiHandler`], the one MCP server handler (tools/list, tools/call, discovery).
//! - `conformance`: the MCP conformance-suite fixtures served only with `--conformance-fixtures`.
//! - `catalog`: exai tool specs as MCP `Tool` definitions (shared with `exai tools`).
//! - `inbound`: decoding of incoming JSON-RPC with the specific error for each bad input.
//! - `rescue`: the one place tool errors become MCP results, JSON-RPC errors or HTTP statuses.
//! - `stdio`: MCP over stdin/stdout.
//! - `http`: the daemon's axum app: Streamable HTTP at `/mcp`, bearer auth, health routes.
//! - `routes`: plain HTTP routes (`/healthz`, `/readyz`).

pub mod catalog;
mod conformance;
mod handler;
pub mod http;
mod inbound;
mod rescue;
mod routes;
pub mod stdio;

pub use handler::ExaiHandler;

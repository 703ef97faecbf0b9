//! exai's core: configuration, the application state tools see, the tool registry and tool errors.
//! It knows nothing of transports or SQL drivers; the server and store crates plug into the traits here.
//!
//! - [`config`]: the table of keys and defaults, layered sources, validation into a typed [`config::Config`].
//! - [`app`]: [`app::App`], the state shared by every call (config, store, runtime counters, tools).
//! - [`tools`]: the tool trait, the registry (one line per tool) and one module per tool.
//! - [`conversation`]: `continuation_id` threads: open, trim to a budget, record.
//! - [`files`]: files and images passed to model tools: allowed roots, size and text checks, token budgets.
//! - [`git`]: pending changes of a repository (staged, unstaged, against a ref) through the `git` binary.
//! - [`workflow`]: the engine behind the multi-step workflow tools (debug, codereview, ...).
//! - [`models`]: the model registry: names, aliases, capabilities, and `auto` selection.
//! - [`error`]: [`error::ToolError`], what a tool call can fail with; mapped to the wire only by the server.
//! - [`resilience`]: one time budget per call, owned permits, retries, circuit breakers, fallback chains.
//! - [`observe`]: the live window of recent calls and the event stream the dashboard, alerts and auditor read.
//! - [`metrics`]: the one list of metrics (name, kind, help, buckets) behind `/metrics`.
//! - [`runtime`]: uptime and in-flight call accounting with RAII guards.
//! - [`store`]: the [`store::Store`] trait the embedded and shared databases implement.
//! - [`protocol`]: the MCP protocol revisions exai serves.
//! - [`private`]: the data directory and its files, for this user only (0700 / 0600).
//! - [`ws_token`]: the WebSocket daemon's token file (`<data_dir>/ws-token`) when `EXAI_WS_TOKEN` is unset.
//! - [`provider`]: the [`provider::Provider`] trait: a chat request in, a stream of [`provider::ChatEvent`]s out.

pub mod app;
pub mod config;
pub mod conversation;
pub mod error;
pub mod files;
pub mod git;
pub mod metrics;
pub mod models;
pub mod observe;
pub mod private;
pub mod protocol;
pub mod provider;
pub mod resilience;
pub mod runtime;
pub mod store;
pub mod tools;
pub mod workflow;
pub mod ws_token;

/// The crate version, reported by `exai --version` and the `version` tool.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

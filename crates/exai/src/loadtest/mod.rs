//! `exai loadtest` and `exai baseline`: drive a running (or freshly started) exai over its real transports with
//! many concurrent MCP client sessions, measure every call, check the server's invariants afterwards, and
//! report. Every run is bounded (duration or call count, then a grace period) and targets loopback unless told.
//!
//! - [`options`]: the command-line flags (`LoadtestArgs`, `TargetArgs`).
//! - [`scenario`]: named scenarios (`baseline`, `stress`, …) and flags turned into one [`scenario::Plan`].
//! - [`arguments`]: valid arguments for each tool (prompt sizes, models).
//! - [`target`]: the server under test: a given URL (loopback checked) or a started simulator + `exai serve`.
//! - [`client`]: one MCP client session per transport (Streamable HTTP, WebSocket daemon protocol, stdio).
//! - [`scrape`]: `/metrics` and `status` snapshots, and the post-run invariant checks.
//! - [`schema`]: the PostgreSQL schema of one `--replicas` run's own, created before and dropped after it.
//! - [`runner`]: one run: the sessions, the scenario's upstream script, then the checks and the report.
//! - [`watch`]: alongside the sessions: the cross-session probe and the `/metrics` sampler.
//! - [`verdict`]: memory stability, circuit activity, and the `timeout` / `recovery` scenario checks.
//! - [`stats`]: samples, percentiles, per-tool and per-session groups.
//! - [`report`]: the JSON report; [`report_html`]: the self-contained HTML report; [`summary`]: the table.
//! - [`progress`]: the progress line on stderr.

pub mod arguments;
pub mod client;
pub mod options;
pub mod progress;
pub mod report;
pub mod report_html;
pub mod runner;
pub mod scenario;
pub mod schema;
pub mod scrape;
pub mod stats;
pub mod summary;
pub mod target;
pub mod verdict;
pub mod watch;

pub use options::{LoadtestArgs, TargetArgs};

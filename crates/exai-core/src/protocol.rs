//! The MCP protocol revisions exai serves, newest first: the stateless 2026-07-28 revision and the
//! `initialize`-era revisions most deployed clients still speak. The server advertises exactly these.

/// Supported revisions, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18"];

/// The MCP SDK exai is built on, reported by the `version` tool.
pub const SDK: &str = "rmcp 3.11";

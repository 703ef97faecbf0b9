//! Plain HTTP routes of the daemon beside `/mcp`.
//!
//! - `health`: `/healthz` (liveness) and `/readyz` (readiness: every dependency check passes).

pub mod health;

//! Plain HTTP routes of the daemon beside `/mcp`.
//!
//! - `admin`: `POST /admin/reset-circuits`.
//! - `health`: `/healthz` (liveness) and `/readyz` (readiness: every dependency check passes).

pub mod admin;
pub mod health;

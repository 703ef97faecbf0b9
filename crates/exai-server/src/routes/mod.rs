//! Plain HTTP routes of the daemon beside `/mcp`.
//!
//! - `admin`: `POST /admin/reset-circuits`.
//! - `metrics`: `GET /metrics`, the Prometheus text format (plus process CPU and memory).
//! - `health`: `/healthz` (liveness) and `/readyz` (readiness: every dependency check passes).

pub mod admin;
pub mod health;
pub mod metrics;

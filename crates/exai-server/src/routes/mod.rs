//! Plain HTTP routes of the daemon beside `/mcp`.
//!
//! - `admin`: `POST /admin/reset-circuits`.
//! - `dashboard`: `/dashboard`, its JSON API and its live stream (server-sent events).
//! - `metrics`: `GET /metrics`, the Prometheus text format (plus process CPU and memory).
//! - `health`: `/healthz` (liveness) and `/readyz` (readiness: every dependency check passes).

pub mod admin;
pub mod dashboard;
pub mod health;
pub mod metrics;

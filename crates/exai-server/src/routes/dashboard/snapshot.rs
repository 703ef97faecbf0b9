//! `GET /dashboard/api/snapshot?window=<secs>`: one JSON picture of the server, the same the stream sends as its
//! `snapshot` event: statistics of the calls in the window, totals since start (from the same counters as
//! `/metrics`), calls in flight, each concurrency limit, open connections and sessions, circuit breakers, CPU and
//! memory, and the alerts firing now.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use exai_core::conversation::now_ms;
use exai_core::observe::AlertChange;
use exai_core::observe::window::{self, Stats};
use exai_core::resilience::breaker::BreakerState;
use serde::Serialize;

use super::Dashboard;
use super::cpu::CpuReading;
use super::error::ApiError;
use super::params;
use super::scrape::{self, ToolTotal};

/// How many points the latency trend has, whatever the window.
const TREND_BUCKETS: usize = 30;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When it was taken, Unix milliseconds.
    pub at_ms: i64,
    pub version: &'static str,
    pub uptime_secs: f64,
    /// The calls that finished within the window.
    pub window: Stats,
    /// Tool calls started since the process started (running ones included).
    pub calls_total: u64,
    /// Finished calls by tool since start, from `exai_tool_calls_total`.
    pub tools_total: Vec<ToolTotal>,
    /// Finished calls since start whose status is neither `ok` nor `cancelled`.
    pub errors_total: u64,
    pub inflight: usize,
    pub limits: Vec<Limit>,
    /// Open connections by transport (`http`, `ws`, `dashboard` streams).
    pub connections: BTreeMap<String, u64>,
    /// Live sessions by transport.
    pub sessions: BTreeMap<String, u64>,
    pub circuits: Vec<Circuit>,
    /// `None` where `/proc` is missing (not Linux).
    pub process: Option<CpuReading>,
    /// Alerts firing now.
    pub alerts: Vec<AlertChange>,
}

/// One concurrency limit's permits.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub name: String,
    pub in_use: u32,
    pub capacity: u32,
    pub waiting: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Circuit {
    pub target: String,
    pub state: BreakerState,
}

/// Takes a snapshot over the last `window_secs`.
pub fn take(dash: &Dashboard, window_secs: u64) -> Snapshot {
    let app = &dash.app;
    let now = now_ms();
    let window_ms = window_secs as i64 * 1000;
    let calls = app.observe.calls_since(now - window_ms);
    let scraped = scrape::scrape(&dash.exporter);
    let mut connections = scraped.connections;
    connections.insert("dashboard".into(), dash.streams.open() as u64);
    let uptime_secs = app.runtime.uptime_secs();
    Snapshot {
        at_ms: now,
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs,
        window: window::stats(&calls, now, window_ms, TREND_BUCKETS),
        calls_total: app.runtime.calls_total(),
        errors_total: scraped.tools.iter().map(|t| t.errors).sum(),
        tools_total: scraped.tools,
        inflight: app.runtime.inflight(),
        limits: app
            .resilience
            .limits
            .snapshot()
            .into_iter()
            .map(|(name, in_use, capacity, waiting)| Limit {
                name,
                in_use,
                capacity,
                waiting,
            })
            .collect(),
        connections,
        sessions: scraped.sessions,
        circuits: app
            .resilience
            .breakers
            .states()
            .into_iter()
            .map(|(target, state)| Circuit { target, state })
            .collect(),
        process: dash.cpu.read(uptime_secs),
        alerts: app.observe.firing_alerts(),
    }
}

pub async fn get(
    State(dash): State<Arc<Dashboard>>,
    query: Result<Query<params::Params>, QueryRejection>,
) -> Result<Json<Snapshot>, ApiError> {
    let query = params::decode(query)?;
    let window_secs = params::window(&query)?;
    Ok(Json(take(&dash, window_secs)))
}

//! The dashboard: a page served from the binary (`/dashboard`), its JSON API (`/dashboard/api/...`) and its live
//! stream (`/dashboard/stream`, server-sent events), all behind `EXAI_HTTP_TOKEN` when it is set.
//!
//! - `assets`: `index.html`, `app.js` and `style.css`, embedded with `include_str!` (nothing is fetched at run time).
//! - `auth`: the bearer header or the dashboard cookie; `GET /dashboard?token=...` sets the cookie.
//! - `params`: the `window`, `limit` and filter parameters, with errors naming what is allowed.
//! - `scrape`: the recorder's own samples (tool-call counters, open connections, sessions), as `/metrics` shows them.
//! - `cpu`: the process's CPU use in per cent between two readings.
//! - `snapshot`: one JSON picture of the server (window statistics, limits, connections, circuits, CPU, alerts).
//! - `api`: recent calls, alerts and the auditor's observations (list, acknowledge).
//! - `stream`: the SSE stream: a snapshot every 2 s, `call` and `alert` events as they happen.
//! - `error`: the API's errors as JSON responses.

mod api;
mod assets;
pub(crate) mod auth;
mod cpu;
mod error;
mod params;
mod scrape;
mod snapshot;
mod stream;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{any, get, post};
use exai_core::app::App;
use tokio_util::sync::CancellationToken;

use crate::origin::{self, AllowLists};
use crate::prometheus::Exporter;

/// What every dashboard handler shares.
pub struct Dashboard {
    pub app: Arc<App>,
    pub exporter: Exporter,
    pub cpu: cpu::CpuMeter,
    /// Open streams end when this fires, so a graceful shutdown is not held up by an open page.
    pub shutdown: CancellationToken,
    pub streams: stream::StreamCount,
}

/// The dashboard's routes, guarded by `EXAI_HTTP_TOKEN` when it is set and by the `Host` / `Origin` allow-lists
/// (`crate::origin`).
pub fn router(app: Arc<App>, exporter: Exporter, shutdown: CancellationToken) -> Router {
    let lists = Arc::new(AllowLists::from_config(&app.config.http));
    let state = Arc::new(Dashboard {
        app,
        exporter,
        cpu: cpu::CpuMeter::default(),
        shutdown,
        streams: stream::StreamCount::default(),
    });
    Router::new()
        .route("/dashboard", get(assets::page))
        .route("/dashboard/", get(assets::page))
        .route("/dashboard/app.js", get(assets::script))
        .route("/dashboard/style.css", get(assets::style))
        .route("/dashboard/api/snapshot", get(snapshot::get))
        .route("/dashboard/api/calls", get(api::calls))
        .route("/dashboard/api/alerts", get(api::alerts))
        .route("/dashboard/api/observations", get(api::observations))
        .route("/dashboard/api/observations/{id}/ack", post(api::acknowledge))
        .route("/dashboard/stream", get(stream::open))
        .route("/dashboard/{*rest}", any(error::not_found))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), auth::require))
        .route_layer(middleware::from_fn_with_state(lists, origin::require))
        .with_state(state)
}

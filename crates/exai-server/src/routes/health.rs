//! `/healthz` answers 200 while the process serves; `/readyz` answers 200 only when every readiness
//! check passes (503 otherwise). Both are open to load balancers, so they show check names and
//! outcomes but no detail (paths, errors): the `health` tool gives that to authenticated callers. The fleet's
//! Redis link is shown without its last error; with `EXAI_REDIS_ON_FAILURE=closed` a failing Redis makes the
//! replica unready (it would refuse every model-backed call), with `open` it stays ready on local limits.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exai_core::app::App;
use exai_core::tools::health::probe;
use serde_json::{Value, json};

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "live": true }))
}

pub async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    let report = probe(&app).await;
    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|c| json!({ "name": c.name, "ok": c.ok }))
        .collect();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let f = &report.fleet;
    let fleet = json!({
        "configured": f.configured,
        "on_failure": f.on_failure,
        "reachable": f.reachable,
        "failing_since_unix_ms": f.failing_since_unix_ms,
        "skipping": f.skipping,
        "skip_remaining_ms": f.skip_remaining_ms,
        "leases_held": f.leases_held,
        "fallbacks": f.fallbacks,
    });
    (
        status,
        Json(json!({ "status": report.status, "ready": report.ready, "checks": checks, "fleet": fleet })),
    )
}

//! `POST /admin/reset-circuits`: closes every circuit breaker (after an incident, without a restart). Behind the
//! same bearer token as `/mcp` when `EXAI_HTTP_TOKEN` is set; `exai admin reset-circuits` calls it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use exai_core::app::App;
use serde_json::{Value, json};

pub async fn reset_circuits(State(app): State<Arc<App>>) -> Json<Value> {
    let breakers = &app.resilience.breakers;
    let reset = breakers.reset_all();
    tracing::warn!(reset, "circuits reset by an admin request");
    let circuits: Vec<Value> = breakers
        .states()
        .into_iter()
        .map(|(target, state)| json!({ "target": target, "state": state }))
        .collect();
    Json(json!({ "reset": reset, "circuits": circuits }))
}

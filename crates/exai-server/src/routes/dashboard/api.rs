//! The dashboard's lists: recent calls (`GET /dashboard/api/calls?limit=`), alerts (`GET /dashboard/api/alerts`),
//! the auditor's observations (`GET /dashboard/api/observations?severity=&category=&acknowledged=`) and
//! acknowledging one (`POST /dashboard/api/observations/{id}/ack`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use exai_core::conversation::now_ms;
use serde_json::{Value, json};

use super::Dashboard;
use super::error::ApiError;
use super::params;

/// Severities an observation may have.
const SEVERITIES: &[&str] = &["info", "warning", "critical"];
/// How many observations the filters look through (the newest).
const OBSERVATIONS_SCANNED: u32 = 1000;

/// The newest calls, newest first (from memory: calls since start, and those preloaded from the database).
pub async fn calls(
    State(dash): State<Arc<Dashboard>>,
    query: Result<Query<params::Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = params::decode(query)?;
    let limit = params::limit(&query, 50)?;
    Ok(Json(json!({ "calls": dash.app.observe.latest(limit as usize) })))
}

/// The alerts firing now, and the newest raises and clears from the database.
pub async fn alerts(
    State(dash): State<Arc<Dashboard>>,
    query: Result<Query<params::Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = params::decode(query)?;
    let limit = params::limit(&query, 50)?;
    let recent = dash.app.store.recent_alerts(limit).await?;
    Ok(Json(
        json!({ "firing": dash.app.observe.firing_alerts(), "recent": recent }),
    ))
}

/// The auditor's observations, newest first, filtered; `categories` lists every category seen (for the filter).
pub async fn observations(
    State(dash): State<Arc<Dashboard>>,
    query: Result<Query<params::Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = params::decode(query)?;
    let severity = params::one_of(&query, "severity", SEVERITIES)?;
    let acknowledged = params::one_of(&query, "acknowledged", &["true", "false"])?.map(|v| v == "true");
    let category = params::text(&query, "category");
    let limit = params::limit(&query, 200)?;
    let all = dash.app.store.observations(OBSERVATIONS_SCANNED).await?;
    let categories: BTreeSet<&str> = all.iter().map(|o| o.category.as_str()).collect();
    let unacknowledged = all.iter().filter(|o| !o.acknowledged).count();
    let shown: Vec<_> = all
        .iter()
        .filter(|o| severity.is_none_or(|s| o.severity == s))
        .filter(|o| category.is_none_or(|c| o.category == c))
        .filter(|o| acknowledged.is_none_or(|a| o.acknowledged == a))
        .take(limit as usize)
        .collect();
    Ok(Json(json!({
        "observations": shown,
        "categories": categories,
        "severities": SEVERITIES,
        "unacknowledged": unacknowledged,
    })))
}

/// Marks one observation acknowledged and returns it (acknowledging twice is not an error); 404 for an unknown id.
pub async fn acknowledge(State(dash): State<Arc<Dashboard>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::NotFound(format!("no observation with id `{id}`"));
    let Ok(number) = id.trim().parse::<i64>() else {
        return Err(unknown());
    };
    if !dash.app.store.acknowledge_observation(number, now_ms()).await? {
        return Err(unknown());
    }
    let observation = dash
        .app
        .store
        .observations(OBSERVATIONS_SCANNED)
        .await?
        .into_iter()
        .find(|o| o.id == number);
    tracing::info!(id = number, "auditor observation acknowledged");
    Ok(Json(
        json!({ "acknowledged": true, "id": number, "observation": observation }),
    ))
}

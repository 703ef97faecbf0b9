//! `health`: liveness and readiness with the detail of each check, and the fleet's Redis link. [`probe`] is shared
//! with the daemon's `/healthz` and `/readyz` routes, so the tool and the routes never disagree.
//!
//! The fleet check fails readiness only with `EXAI_REDIS_ON_FAILURE=closed`: then a replica without Redis refuses
//! every model-backed call, so a load balancer should send callers elsewhere; with `open` it still serves (on
//! local limits) and stays ready.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::app::App;
use crate::error::ToolError;
use crate::resilience::fleet::{FleetLink, OnFailure};

pub struct Health;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Report {
    /// `ok` when ready, else `degraded`.
    pub status: &'static str,
    /// The process is up and answering.
    pub live: bool,
    /// Every dependency check passed; the server can do useful work.
    pub ready: bool,
    pub checks: Vec<Check>,
    /// The fleet-wide limits' Redis link (`EXAI_REDIS_URL`).
    pub fleet: FleetHealth,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct FleetHealth {
    /// `EXAI_REDIS_URL` is set: the global and provider limits are shared by the fleet.
    pub configured: bool,
    /// What calls do while Redis fails (`EXAI_REDIS_ON_FAILURE`): `open` (local limits) or `closed` (refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<&'static str>,
    /// Redis answered a ping just now (false when the skip window kept it from being asked).
    pub reachable: bool,
    /// Unix time (ms) Redis started failing; absent while it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since_unix_ms: Option<u64>,
    /// The last Redis error, while failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Redis asks go straight to the fallback now (the skip window after a failure).
    pub skipping: bool,
    /// How much longer the skip window lasts before the next probe.
    pub skip_remaining_ms: u64,
    /// The skip window's current length (1 s after a failure, doubling per failed probe up to 30 s).
    pub skip_window_ms: u64,
    /// Redis asks skipped since start.
    pub skipped: u64,
    /// Fleet leases this replica holds now.
    pub leases_held: u64,
    /// Fleet limits not checked since start because Redis failed or was skipped (run locally or refused).
    pub fallbacks: u64,
}

/// Pings the fleet's Redis (through the skip window, so a Redis that just failed is not waited for again) and
/// reports the link; the check fails only when Redis is down and `on_failure` is `closed`.
pub async fn fleet_health(link: Option<&FleetLink>) -> (FleetHealth, Option<Check>) {
    let Some(link) = link else {
        return (FleetHealth::default(), None);
    };
    let started = Instant::now();
    let pinged = link.ping().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let state = link.state();
    let w = &state.window;
    let reachable = pinged.is_ok();
    let mode = state.on_failure.as_str();
    let health = FleetHealth {
        configured: true,
        on_failure: Some(mode),
        reachable,
        failing_since_unix_ms: w
            .failing_since
            .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64),
        last_error: w.last_error.clone(),
        skipping: !w.skip_remaining.is_zero(),
        skip_remaining_ms: w.skip_remaining.as_millis() as u64,
        skip_window_ms: w.backoff.as_millis() as u64,
        skipped: w.skipped,
        leases_held: state.leases_held,
        fallbacks: state.fallbacks,
    };
    let detail = match (&pinged, state.on_failure) {
        (Ok(()), _) => format!("Redis answers; fleet limits shared (on failure: {mode})"),
        (Err(e), on_failure) => {
            let since = w
                .failing_since
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(String::new(), |d| format!(" for {:.0} s", d.as_secs_f64()));
            let action = match on_failure {
                OnFailure::Open => "calls run on local limits (EXAI_REDIS_ON_FAILURE=open)",
                OnFailure::Closed => "calls needing a fleet limit are refused (EXAI_REDIS_ON_FAILURE=closed)",
            };
            format!("Redis failing{since}: {e}; {action}")
        }
    };
    let check = Check {
        name: "fleet",
        ok: reachable || state.on_failure == OnFailure::Open,
        detail,
        latency_ms,
    };
    (health, Some(check))
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    pub latency_ms: f64,
}

/// Runs every readiness check.
pub async fn probe(app: &App) -> Report {
    let started = Instant::now();
    let database = match app.store.ping().await {
        Ok(h) => Check {
            name: "database",
            ok: true,
            detail: format!("{} at {}, schema version {}", h.backend, h.location, h.schema_version),
            latency_ms: 0.0,
        },
        Err(e) => Check {
            name: "database",
            ok: false,
            detail: e.to_string(),
            latency_ms: 0.0,
        },
    };
    let mut checks = vec![Check {
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        ..database
    }];
    let (fleet, check) = fleet_health(app.resilience.limits.fleet().map(|l| &**l)).await;
    checks.extend(check);
    let ready = checks.iter().all(|c| c.ok);
    Report {
        status: if ready { "ok" } else { "degraded" },
        live: true,
        ready,
        checks,
        fleet,
    }
}

impl TypedTool for Health {
    type Input = Input;
    type Output = Report;
    const NAME: &'static str = "health";
    const TITLE: &'static str = "Health check";
    const DESCRIPTION: &'static str = "Liveness and readiness, with each dependency check.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Standard;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(ctx: ToolContext, _input: Input) -> Result<Report, ToolError> {
        Ok(probe(&ctx.app).await)
    }
}

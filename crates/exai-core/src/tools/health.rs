//! `health`: liveness and readiness with the detail of each check. [`probe`] is shared with the
//! daemon's `/healthz` and `/readyz` routes, so the tool and the routes never disagree.

use std::time::Instant;

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::app::App;
use crate::error::ToolError;

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
    let checks = vec![Check {
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        ..database
    }];
    let ready = checks.iter().all(|c| c.ok);
    Report {
        status: if ready { "ok" } else { "degraded" },
        live: true,
        ready,
        checks,
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

//! `status`: uptime, providers and whether each has a key, concurrency limits, calls in flight.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::config::ProviderConfig;
use crate::error::ToolError;

pub struct Status;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub uptime_secs: f64,
    /// Unix time (seconds) the server started.
    pub started_at_unix: u64,
    /// Tool calls running now, including this one.
    pub inflight_calls: usize,
    /// Tool calls since start, including this one.
    pub calls_total: u64,
    pub providers: Vec<ProviderStatus>,
    pub limits: LimitsStatus,
    pub tools_enabled: Vec<&'static str>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProviderStatus {
    pub name: &'static str,
    pub has_key: bool,
    pub base_url: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LimitsStatus {
    pub global_max_inflight: u32,
    pub session_max_inflight: u32,
    pub glm_max_inflight: u32,
    pub kimi_max_inflight: u32,
}

fn provider(name: &'static str, p: &ProviderConfig) -> ProviderStatus {
    ProviderStatus {
        name,
        has_key: p.api_key.is_some(),
        base_url: p.base_url.to_string(),
    }
}

impl TypedTool for Status {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "status";
    const TITLE: &'static str = "Server status";
    const DESCRIPTION: &'static str = "Uptime, providers (key set or not), concurrency limits and calls in flight.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Lean;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(ctx: ToolContext, _input: Input) -> Result<Output, ToolError> {
        let app = &ctx.app;
        let (c, rt) = (&app.config, &app.runtime);
        Ok(Output {
            uptime_secs: rt.uptime_secs(),
            started_at_unix: rt.started_unix(),
            inflight_calls: rt.inflight(),
            calls_total: rt.calls_total(),
            providers: vec![provider("glm", &c.providers.glm), provider("kimi", &c.providers.kimi)],
            limits: LimitsStatus {
                global_max_inflight: c.limits.global_max_inflight.get(),
                session_max_inflight: c.limits.session_max_inflight.get(),
                glm_max_inflight: c.limits.glm_max_inflight.get(),
                kimi_max_inflight: c.limits.kimi_max_inflight.get(),
            },
            tools_enabled: app.tools.names(),
        })
    }
}

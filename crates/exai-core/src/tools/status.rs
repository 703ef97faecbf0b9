//! `status`: uptime, providers and whether each has a key, every concurrency limit (in use / capacity /
//! queued), circuit-breaker states, and calls in flight — with the permit-leak check's verdict.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::resilience::breaker::BreakerState;

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
    /// The global limit, then each provider's that has seen traffic.
    pub limits: Vec<LimitStatus>,
    /// Set when the global and provider limits are shared by the fleet through Redis (`EXAI_REDIS_URL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,
    /// Calls one client session may run at once.
    pub session_max_inflight: u32,
    /// Circuits that have seen traffic, by `provider/model`.
    pub circuits: Vec<CircuitStatus>,
    /// False when more permits are held than calls are running: a leak (logged and counted).
    pub permits_consistent: bool,
    pub tools_enabled: Vec<&'static str>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ProviderStatus {
    pub name: String,
    pub has_key: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LimitStatus {
    pub name: String,
    pub in_use: u32,
    pub capacity: u32,
    pub waiting: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FleetStatus {
    /// What calls do when Redis fails: `open` (local limits only) or `closed` (refused).
    pub on_failure: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CircuitStatus {
    pub target: String,
    pub state: BreakerState,
}

impl TypedTool for Status {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "status";
    const TITLE: &'static str = "Server status";
    const DESCRIPTION: &'static str = "Uptime, providers (key set or not), concurrency limits, circuit breakers and \
calls in flight.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Lean;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(ctx: ToolContext, _input: Input) -> Result<Output, ToolError> {
        let app = &ctx.app;
        let (rt, res) = (&app.runtime, &app.resilience);
        let inflight = rt.inflight();
        Ok(Output {
            uptime_secs: rt.uptime_secs(),
            started_at_unix: rt.started_unix(),
            inflight_calls: inflight,
            calls_total: rt.calls_total(),
            providers: app
                .providers
                .iter()
                .map(|(name, p)| ProviderStatus {
                    name: name.clone(),
                    has_key: p.has_credentials(),
                })
                .collect(),
            limits: res
                .limits
                .snapshot()
                .into_iter()
                .map(|(name, in_use, capacity, waiting)| LimitStatus {
                    name,
                    in_use,
                    capacity,
                    waiting,
                })
                .collect(),
            fleet: res.limits.fleet().map(|f| FleetStatus {
                on_failure: f.on_failure.as_str(),
            }),
            session_max_inflight: app.config.limits.session_max_inflight.get(),
            circuits: res
                .breakers
                .states()
                .into_iter()
                .map(|(target, state)| CircuitStatus { target, state })
                .collect(),
            permits_consistent: res.limits.check(|| rt.inflight()),
            tools_enabled: app.tools.names(),
        })
    }
}

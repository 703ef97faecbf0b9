//! Named scenarios and the one [`Plan`] a run follows: each scenario's defaults, overridden by any flag given.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use exai_sim::Delay;
use serde::Serialize;

use super::options::{LatencyChoice, LoadtestArgs, Protocol, Transport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    Baseline,
    Stress,
    Extreme,
    /// Every upstream request hangs: each call must end at its (short) tier deadline.
    Timeout,
    /// The upstream fails for a while, then recovers: circuits must open, then close.
    Recovery,
    /// Long and steady over held-open WebSocket connections: no disconnects, memory flat.
    Soak,
    Custom,
}

impl ScenarioKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Stress => "stress",
            Self::Extreme => "extreme",
            Self::Timeout => "timeout",
            Self::Recovery => "recovery",
            Self::Soak => "soak",
            Self::Custom => "custom",
        }
    }

    /// Whether the scenario scripts the upstream (and so needs a simulator the runner controls).
    pub fn scripts_upstream(self) -> bool {
        matches!(self, Self::Timeout | Self::Recovery)
    }
}

/// The default tool mix: mostly model calls, as an assistant uses exai.
pub const DEFAULT_MIX: &str = "chat=40,debug=20,thinkdeep=15,codereview=10,challenge=5,listmodels=5,status=5";

/// Weighted tool choices.
#[derive(Debug, Clone, Serialize)]
pub struct Mix {
    pub weights: Vec<(String, u32)>,
}

impl Mix {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tool, weight) = part.split_once('=').unwrap_or((part, "1"));
            let weight: u32 = weight
                .trim()
                .trim_end_matches('%')
                .parse()
                .with_context(|| format!("weight of `{tool}` in --mix is not a whole number: `{weight}`"))?;
            if weight > 0 {
                weights.push((tool.trim().to_owned(), weight));
            }
        }
        if weights.is_empty() {
            bail!("--mix names no tool with a weight above 0 (e.g. chat=40,debug=20)");
        }
        Ok(Self { weights })
    }

    /// The tool a uniform draw in `0..total()` lands on.
    pub fn pick(&self, draw: u32) -> &str {
        let mut left = draw;
        for (tool, weight) in &self.weights {
            if left < *weight {
                return tool;
            }
            left -= weight;
        }
        &self.weights[self.weights.len() - 1].0
    }

    pub fn total(&self) -> u32 {
        self.weights.iter().map(|(_, w)| w).sum()
    }
}

/// Everything one run does.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub scenario: ScenarioKind,
    pub transport: Transport,
    /// The protocol era of HTTP sessions.
    pub protocol: Protocol,
    pub sessions: usize,
    #[serde(rename = "duration_secs", serialize_with = "secs")]
    pub duration: Duration,
    pub calls: Option<u64>,
    pub mix: Mix,
    pub prompt_bytes: usize,
    pub stream: bool,
    #[serde(rename = "think_ms", serialize_with = "millis")]
    pub think: Duration,
    pub latency: LatencyChoice,
    /// `--upstream-latency-ms`: every model answer of the started simulator takes `[min, max]` ms (drawn per
    /// answer) instead of the latency profile's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_latency_ms: Option<[u64; 2]>,
    pub chat_models: Vec<String>,
    /// The `timeout` scenario's tier deadline.
    #[serde(serialize_with = "secs")]
    pub deadline: Duration,
    /// Seconds of the `recovery` scenario during which the upstream fails.
    #[serde(serialize_with = "secs")]
    pub failing_for: Duration,
    #[serde(serialize_with = "millis")]
    pub probe_threshold: Duration,
    pub seed: u64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Plan {
    pub fn from_args(args: &LoadtestArgs) -> anyhow::Result<Self> {
        use ScenarioKind::*;
        let kind = args.scenario;
        let (sessions, duration_secs, think_ms) = match kind {
            Baseline | Custom => (5, 30, 0),
            Stress => (10, 60, 0),
            Extreme => (15, 60, 0),
            Timeout => (3, 8, 0),
            Recovery => (4, 16, 50),
            Soak => (5, 600, 1_000),
        };
        let default_mix = match kind {
            Timeout => "chat=100",
            Recovery => "chat=70,debug=30",
            _ => DEFAULT_MIX,
        };
        let latency = match (args.target.latency_profile, args.upstream_latency_ms) {
            (Some(profile), None) => profile,
            // The fixed latency replaces the profile's.
            (_, Some(_)) => LatencyChoice::Zero,
            (None, None) => match kind {
                Timeout | Recovery => LatencyChoice::Zero,
                _ => LatencyChoice::Providers,
            },
        };
        let transport = args.target.transport.unwrap_or(match kind {
            Soak => Transport::Ws,
            _ => Transport::Http,
        });
        let sessions = args.sessions.unwrap_or(sessions);
        if sessions == 0 || sessions > 1_000 {
            bail!("--sessions must be between 1 and 1000");
        }
        let duration = args.duration.unwrap_or(Duration::from_secs(duration_secs));
        if duration.is_zero() {
            bail!("--duration must be above zero");
        }
        if args.deadline_secs == 0 {
            bail!("--deadline-secs must be at least 1");
        }
        if args.chat_models.is_empty() {
            bail!("--chat-models names no model");
        }
        Ok(Self {
            scenario: kind,
            transport,
            protocol: args.target.protocol,
            sessions,
            duration,
            calls: args.calls,
            mix: Mix::parse(args.mix.as_deref().unwrap_or(default_mix))?,
            prompt_bytes: args.prompt_bytes,
            stream: args.stream,
            think: args.think.unwrap_or(Duration::from_millis(think_ms)),
            latency,
            upstream_latency_ms: args.upstream_latency_ms,
            chat_models: args.chat_models.clone(),
            deadline: Duration::from_secs(args.deadline_secs),
            failing_for: duration.mul_f64(0.3),
            probe_threshold: Duration::from_millis(args.probe_threshold_ms),
            seed: args.seed,
        })
    }

    /// How a healthy simulator answers in this plan: with `--upstream-latency-ms`, after that long (the whole
    /// answer at once after the delay); else unscripted (echo, the latency profile's timing).
    pub fn upstream_script(&self) -> Option<exai_sim::Script> {
        self.upstream_latency_ms.map(|[lo, hi]| {
            let delay = if lo == hi {
                Delay::Fixed(lo)
            } else {
                Delay::Range([lo, hi])
            };
            exai_sim::Script::echo()
                .with_ttft_ms(delay)
                .with_inter_token_ms(Delay::Fixed(0))
        })
    }

    /// How long in-flight calls may still finish after the sessions stop starting new ones; past it the run
    /// ends anyway and those calls count as abandoned.
    pub fn grace(&self) -> Duration {
        match self.scenario {
            ScenarioKind::Timeout => self.deadline + Duration::from_secs(10),
            _ => Duration::from_secs(60),
        }
    }

    /// Server settings the scenario needs from a started daemon.
    pub fn server_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        match self.scenario {
            ScenarioKind::Timeout => {
                let d = self.deadline.as_secs().to_string();
                let tier1 = self.deadline.as_secs().min(5).to_string();
                for key in [
                    "SIMPLE_TOOL_TIMEOUT_SECS",
                    "FILES_TOOL_TIMEOUT_SECS",
                    "WORKFLOW_TOOL_TIMEOUT_SECS",
                    "GLM_TIMEOUT_SECS",
                    "KIMI_TIMEOUT_SECS",
                    "KIMI_WEB_SEARCH_TIMEOUT_SECS",
                    "KIMI_THINKING_TIMEOUT_SECS",
                    "KIMI_WEB_SEARCH_THINKING_TIMEOUT_SECS",
                ] {
                    env.push((key.to_owned(), d.clone()));
                }
                env.push(("EXAI_TIER1_TIMEOUT_SECS".to_owned(), tier1.clone()));
                // Inner waits must fit the shorter tiers.
                env.push(("EXAI_DB_TIMEOUT_SECS".to_owned(), tier1));
                // Every call must reach the hanging upstream, not fail fast at an open circuit.
                env.push(("EXAI_BREAKER_FAILURES".to_owned(), "100000".to_owned()));
            }
            ScenarioKind::Recovery => {
                for (key, value) in [
                    ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
                    ("EXAI_BREAKER_FAILURES", "3"),
                    ("EXAI_BREAKER_WINDOW_SECS", "30"),
                    ("EXAI_BREAKER_COOLDOWN_SECS", "2"),
                    ("EXAI_BREAKER_CLOSE_AFTER", "1"),
                ] {
                    env.push((key.to_owned(), value.to_owned()));
                }
            }
            _ => {}
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::Mix;

    #[test]
    fn mix_weights_pick_proportionally() {
        let mix = Mix::parse("chat=40, debug=20%,status").unwrap();
        assert_eq!(mix.total(), 61);
        assert_eq!(mix.pick(0), "chat");
        assert_eq!(mix.pick(39), "chat");
        assert_eq!(mix.pick(40), "debug");
        assert_eq!(mix.pick(60), "status");
        assert!(Mix::parse("chat=x").is_err());
        assert!(Mix::parse("chat=0").is_err());
    }
}

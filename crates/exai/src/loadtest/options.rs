//! The flags of `exai loadtest` and the target flags `exai baseline` shares with it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::scenario::ScenarioKind;

/// Which of exai's transports the sessions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Streamable HTTP at `/mcp`, in the era `--protocol` picks.
    Http,
    /// The WebSocket daemon protocol (`hello`, `call_tool`, …), one connection per session held for the run.
    Ws,
    /// One `exai stdio` child process per session, JSON-RPC lines on its stdin/stdout.
    Stdio,
}

/// Latency the started simulator adds to every model answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyChoice {
    /// Like the real providers: GLM 1–5 s, Kimi 2–10 s per answer.
    Providers,
    /// No delay: measures exai's own overhead.
    Zero,
}

/// Where the model answers come from when the runner starts the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// The in-process simulator (no keys needed; answers say provider `sim`).
    Sim,
    /// The real GLM / Kimi APIs, with `GLM_API_KEY` / `KIMI_API_KEY` from this environment (costs money).
    Real,
}

/// The MCP protocol era HTTP sessions speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
pub enum Protocol {
    /// `initialize`, then calls in an `Mcp-Session-Id` session.
    #[value(name = "2025-11-25")]
    #[serde(rename = "2025-11-25")]
    Sessions,
    /// Stateless: `server/discover`, then every request carries its `_meta`.
    #[value(name = "2026-07-28")]
    #[serde(rename = "2026-07-28")]
    Stateless,
}

/// The server under test.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// A running daemon's HTTP base URL (e.g. http://127.0.0.1:8080); without it (or with --start) the runner
    /// starts a simulator and an `exai serve` of its own on free ports.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// The daemon's WebSocket URL (default: ws://HOST:8079/ for --target, the started daemon's otherwise).
    #[arg(long, value_name = "URL")]
    pub ws_url: Option<String>,
    /// Start a simulator and `exai serve` (the default when no --target is given).
    #[arg(long, conflicts_with = "target")]
    pub start: bool,
    /// Bearer token for /mcp and /metrics, and the WebSocket hello token (default: EXAI_HTTP_TOKEN for HTTP;
    /// EXAI_WS_TOKEN, else the local daemon's `<data_dir>/ws-token` file, for WebSocket).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Allow a target that is not a loopback address (never needed for started servers).
    #[arg(long)]
    pub allow_remote: bool,
    /// Transport the sessions use.
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    /// Protocol era of HTTP sessions.
    #[arg(long, value_enum, default_value = "2025-11-25")]
    pub protocol: Protocol,
    /// Model latency of the started simulator (default: `providers` for load, `zero` for baselines).
    #[arg(long, value_enum)]
    pub latency_profile: Option<LatencyChoice>,
    /// Upstream of a started server: the simulator, or the real providers (keys from the environment).
    #[arg(long, value_enum, default_value = "sim")]
    pub upstream: Upstream,
    /// Extra environment for the started server, `KEY=VALUE` (repeatable), e.g. EXAI_WS_GLM_MAX_INFLIGHT=8.
    #[arg(long = "server-env", value_name = "KEY=VALUE")]
    pub server_env: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// baseline (5 sessions), stress (10), extreme (15), timeout (upstream hangs), recovery (upstream fails,
    /// then recovers), soak (long and steady, over WebSocket), custom.
    #[arg(long, value_enum, default_value = "baseline")]
    pub scenario: ScenarioKind,
    /// Concurrent client sessions (default: the scenario's).
    #[arg(long)]
    pub sessions: Option<usize>,
    /// How long sessions keep starting calls, e.g. `30s`, `10m` (default: the scenario's).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Stop after this many calls in all (whichever of --duration and --calls comes first).
    #[arg(long)]
    pub calls: Option<u64>,
    /// Tool mix as weights, e.g. `chat=40,debug=20,thinkdeep=15,codereview=10,status=5`.
    #[arg(long)]
    pub mix: Option<String>,
    /// Size of each prompt (the `prompt` of chat, the `step` of workflow tools), bytes.
    #[arg(long, default_value_t = 400)]
    pub prompt_bytes: usize,
    /// Ask for streamed progress (`progressToken`); the WebSocket protocol always streams.
    #[arg(long)]
    pub stream: bool,
    /// Pause between one session's calls (default: the scenario's).
    #[arg(long, value_parser = parse_duration)]
    pub think: Option<std::time::Duration>,
    /// Models `chat` calls rotate through.
    #[arg(long, value_delimiter = ',', default_value = "glm-4.5-flash,kimi-k2-turbo-preview")]
    pub chat_models: Vec<String>,
    /// The tier deadline the `timeout` scenario gives the started server, seconds.
    #[arg(long, default_value_t = 2)]
    pub deadline_secs: u64,
    /// A probe call (`version`) slower than this counts as delayed by other sessions' work.
    #[arg(long, default_value_t = 250)]
    pub probe_threshold_ms: u64,
    /// Where to write `loadtest-<scenario>-<time>.json` and `.html`.
    #[arg(long, default_value = "loadtest-reports")]
    pub report_dir: PathBuf,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Seed for the tool-mix choices (runs with the same seed call the same tools in the same order).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Every model answer of the started simulator takes this long, in ms: `300`, or `200-400` drawn per answer
    /// (instead of --latency-profile; provider-like latency for short runs).
    #[arg(long, value_name = "MS[-MS]", value_parser = parse_millis_range, conflicts_with = "latency_profile")]
    pub upstream_latency_ms: Option<[u64; 2]>,
    /// Run the scenario once per replica count, e.g. `1,3`: each run starts that many `exai serve` children
    /// sharing Redis (and PostgreSQL with --database-url), sessions spread round-robin; then compares the runs.
    /// Started servers and --transport http only.
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    pub replicas: Vec<usize>,
    /// Redis the replicas share (default: EXAI_REDIS_URL); each run gets a key prefix of its own.
    #[arg(long, value_name = "URL", env = "EXAI_REDIS_URL")]
    pub redis_url: Option<String>,
    /// PostgreSQL the replicas share (default: EXAI_DATABASE_URL); without it each replica has its own SQLite.
    #[arg(long, value_name = "URL", env = "EXAI_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// `250ms`, `30s`, `10m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 30s, 10m)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (ms, s, m, h)")),
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `300` or `200-400` (milliseconds) as `[min, max]`.
pub fn parse_millis_range(text: &str) -> Result<[u64; 2], String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not milliseconds (e.g. 300 or 200-400)"))
    };
    let range = match text.split_once('-') {
        Some((lo, hi)) => [number(lo)?, number(hi)?],
        None => [number(text)?; 2],
    };
    if range[0] > range[1] {
        return Err(format!("`{text}`: the first number must not exceed the second"));
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_millis_range};
    use std::time::Duration;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn millisecond_ranges_parse() {
        assert_eq!(parse_millis_range("300"), Ok([300, 300]));
        assert_eq!(parse_millis_range("200-400"), Ok([200, 400]));
        assert!(parse_millis_range("400-200").is_err());
        assert!(parse_millis_range("fast").is_err());
    }
}

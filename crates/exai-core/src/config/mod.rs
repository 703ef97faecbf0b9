//! Configuration, loaded once at start-up and validated before anything runs.
//! `keys` is the table of every key and default, `sources` layers defaults / `exai.toml` / environment,
//! `validate` turns raw text into the typed [`Config`], and `error` reports every problem at once.

mod custom;
mod error;
mod exposure;
mod files;
mod fleet;
#[cfg(test)]
mod fuzz;
mod keys;
mod observe;
mod resilience;
mod sources;
mod validate;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::tools::model_call::cache::CacheConfig;
pub use custom::CustomProviderConfig;
pub use error::{ConfigError, Problem};
pub use files::{FilesConfig, MAX_IMAGES_CEILING, never_a_root};
pub use fleet::FleetConfig;
pub use keys::{KEYS, Key, markdown_table};
pub use observe::{AlertsConfig, AuditorConfig, TierLatency};
pub use resilience::{KimiModeTimeouts, ResilienceConfig};
pub use sources::{Env, MapEnv, ProcessEnv, RawSettings, RawValue, Source};

use crate::tools::Profile;

/// The validated configuration. Built only by [`Config::load`].
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite when set.
    pub database_url: Option<Secret>,
    pub conversations: ConversationConfig,
    pub observability: ObservabilityConfig,
    /// Where tools may read files from, and how large a file may be.
    pub files: FilesConfig,
    /// Workflow tools (debug, codereview, ...).
    pub workflow: WorkflowConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
    pub ws: WsConfig,
    /// `EXAI_INSECURE_NO_AUTH` / `--insecure-no-auth`: serve off loopback without tokens (see `exposure`).
    pub insecure_no_auth: bool,
    pub tools: ToolSelection,
    pub providers: ProvidersConfig,
    /// `[providers.custom.<name>]` OpenAI-compatible endpoints, in name order.
    pub custom_providers: Vec<CustomProviderConfig>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// How often a waiting model call sends a keep-alive progress notification.
    pub progress_heartbeat: Duration,
    /// Queues, retries, circuit breakers, fallback chains and per-mode provider timeouts.
    pub resilience: ResilienceConfig,
    /// Limits shared by every replica through Redis (`redis.*`).
    pub fleet: FleetConfig,
    /// The response cache (`cache.*`).
    pub cache: CacheConfig,
    /// Alert rule thresholds (`alerts.*`).
    pub alerts: AlertsConfig,
    /// The optional AI auditor (`auditor.*`).
    pub auditor: AuditorConfig,
    /// The raw settings and their sources, for `exai config check`.
    pub settings: RawSettings,
}

#[derive(Debug, Clone, Copy)]
pub struct ConversationConfig {
    pub ttl: Duration,
    pub max_turns: NonZeroU32,
}

/// What is kept for looking back at the server's work.
#[derive(Debug, Clone, Copy)]
pub struct ObservabilityConfig {
    /// How long a row of `tool_executions` is kept.
    pub executions_retention: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct WorkflowConfig {
    /// Most steps one investigation may take before it is ended.
    pub max_steps: NonZeroU32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub host: IpAddr,
    pub port: u16,
    pub token: Option<Secret>,
    /// Empty means the Host check is disabled (`*`).
    pub allowed_hosts: Vec<String>,
    /// Empty means the Origin check is disabled (`*`).
    pub allowed_origins: Vec<String>,
    pub legacy_sessions: bool,
    /// Stateless replies as `application/json` when the call streams nothing (rmcp falls back to SSE otherwise).
    pub json_response: bool,
    /// `MONITORING_DASHBOARD_PORT`: a second port serving only the dashboard and `/metrics` (0 picks one).
    pub dashboard_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct WsConfig {
    pub host: IpAddr,
    pub port: u16,
    pub token: Option<Secret>,
    pub hello_timeout: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub idle_timeout: Duration,
    pub session_grace: Duration,
    pub max_sessions: NonZeroU32,
    pub max_frame_bytes: usize,
    /// Per connection: frames and bytes waiting for the writer; past either the client is closed with 4007.
    pub max_queued_frames: NonZeroU32,
    pub max_queued_bytes: usize,
    pub write_timeout: Duration,
    pub max_detached_sessions_per_client: NonZeroU32,
}

#[derive(Debug, Clone)]
pub struct ToolSelection {
    pub profile: Profile,
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    pub glm: ProviderConfig,
    pub kimi: ProviderConfig,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub api_key: Option<Secret>,
    pub base_url: url::Url,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub global_max_inflight: NonZeroU32,
    pub session_max_inflight: NonZeroU32,
    pub glm_max_inflight: NonZeroU32,
    pub kimi_max_inflight: NonZeroU32,
    /// Largest MCP message accepted on any transport.
    pub max_request_bytes: usize,
    pub max_connections: NonZeroU32,
    pub max_connections_per_ip: NonZeroU32,
    /// How long a client may take to send a request's headers, on every listener.
    pub header_read_timeout: Duration,
    /// How long a client may take to send an MCP request's body once its headers are in (HTTP).
    pub body_read_timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub database: Duration,
    pub tier1: Duration,
    pub simple_tool: Duration,
    pub files_tool: Duration,
    pub workflow_tool: Duration,
}

/// A secret string that never prints its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is sent or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Masks a secret for display: never more than a hint of its length.
pub fn mask(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!("**** ({} chars)", value.chars().count())
    }
}

/// What `Config::inspect` found: the effective settings (secrets already masked) and the typed result.
#[derive(Debug)]
pub struct Inspection {
    pub settings: RawSettings,
    pub config: Result<Config, ConfigError>,
}

impl Config {
    /// Loads defaults, then `file` (if any), then `env`, then `flags` (`(key path, value)` pairs from the
    /// command line), and validates the result. Every problem is reported, not just the first.
    pub fn load(env: &dyn Env, file: Option<&Path>, flags: &[(&str, String)]) -> Result<Config, ConfigError> {
        Self::inspect(env, file, flags).config
    }

    /// Like [`Config::load`], but also returns the effective settings even when validation fails.
    pub fn inspect(env: &dyn Env, file: Option<&Path>, flags: &[(&str, String)]) -> Inspection {
        let mut problems = Vec::new();
        let (mut raw, custom_raw) = sources::layer(env, file, &mut problems);
        for (path, value) in flags {
            match keys::by_path(path) {
                Some(k) => {
                    raw.insert(
                        k.path,
                        RawValue {
                            text: value.clone(),
                            source: Source::Flag,
                        },
                    );
                }
                None => problems.push(Problem::new(format!("flag for `{path}`"), "", "unknown key")),
            }
        }
        let custom = custom::validate(&custom_raw, env, &mut problems);
        if let Some(simple) = raw
            .get("timeouts.simple_tool_secs")
            .and_then(|v| v.text.trim().parse::<u64>().ok())
        {
            for c in custom.iter().filter(|c| c.timeout.as_secs() > simple) {
                problems.push(Problem::new(
                    format!("exai.toml providers.custom.{}.timeout_secs", c.name),
                    c.timeout.as_secs().to_string(),
                    format!("longer than SIMPLE_TOOL_TIMEOUT_SECS ({simple} s): the call would time out first"),
                ));
            }
        }
        let config = validate::typed(&raw, &mut problems).map(|c| Config {
            custom_providers: custom,
            ..c
        });
        let settings = masked(raw);
        let config = match config {
            Some(config) if problems.is_empty() => Ok(Config {
                settings: settings.clone(),
                ..config
            }),
            _ => Err(ConfigError(problems)),
        };
        Inspection { settings, config }
    }

    /// The `exai.toml` to read when `--config` names none: `EXAI_CONFIG` if set, else the user's own
    /// `<config dir>/exai/exai.toml` (`$XDG_CONFIG_HOME/exai/exai.toml`, `~/.config/exai/exai.toml`) when it exists.
    /// Never `./exai.toml`: the working directory is often a repository cloned from the internet, and its file could
    /// send the API keys to another `base_url`, widen the roots or open the daemon (see [`Config::ignored_local_file`]).
    pub fn default_file(env: &dyn Env) -> Option<PathBuf> {
        if let Some(path) = env.var("EXAI_CONFIG") {
            return Some(PathBuf::from(path));
        }
        let user = user_config_dir(env)?.join("exai").join("exai.toml");
        user.exists().then_some(user)
    }

    /// `./exai.toml` when it exists and is not the file in use: exai says so at start-up (it used to read it).
    pub fn ignored_local_file(in_use: Option<&std::path::Path>) -> Option<PathBuf> {
        let local = std::env::current_dir().ok()?.join("exai.toml");
        let same = |used: &std::path::Path| std::fs::canonicalize(used).ok() == std::fs::canonicalize(&local).ok();
        (local.is_file() && !in_use.is_some_and(same)).then_some(local)
    }

    /// `key path  ENV_NAME = value  (source)` lines, for `exai config check`.
    pub fn describe(settings: &RawSettings) -> Vec<String> {
        KEYS.iter()
            .map(|k| {
                let raw = &settings[k.path];
                let shown = if raw.text.is_empty() {
                    "(unset)"
                } else {
                    raw.text.as_str()
                };
                format!("{:<30} {:<29} = {:<36} ({})", k.path, k.env, shown, raw.source)
            })
            .collect()
    }
}

/// Replaces every secret's text with its mask, so settings can be printed or debug-logged safely.
fn masked(mut raw: RawSettings) -> RawSettings {
    for k in KEYS.iter().filter(|k| k.secret) {
        if let Some(v) = raw.get_mut(k.path) {
            v.text = mask(&v.text);
        }
    }
    raw
}

/// The user's configuration directory: `XDG_CONFIG_HOME` (absolute), else `HOME/.config`, read through `env` so tests
/// choose it.
fn user_config_dir(env: &dyn Env) -> Option<PathBuf> {
    if let Some(dir) = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        return Some(dir);
    }
    env.var("HOME").map(|home| PathBuf::from(home).join(".config"))
}

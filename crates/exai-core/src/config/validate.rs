//! Raw text to typed [`Config`]: every key parsed by one small function, every failure recorded as a
//! [`Problem`] that names the variable, the value and what is allowed, then cross-key rules checked.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::CacheConfig;
use super::keys::by_path;
use super::{
    Config, ConversationConfig, HttpConfig, Limits, LogConfig, LogFormat, ObservabilityConfig, Problem, ProviderConfig,
    ProvidersConfig, RawSettings, Secret, Timeouts, ToolSelection, WorkflowConfig, WsConfig, mask,
};
use crate::tools::{Profile, registry};

/// The longest duration any key accepts: ten years. Longer ones overflow clock arithmetic (`Instant + duration`,
/// expiry times in milliseconds) and would only ever mean "never" by accident.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Reads typed values out of raw settings, collecting problems instead of stopping at the first.
pub(super) struct Reader<'a> {
    raw: &'a RawSettings,
    problems: &'a mut Vec<Problem>,
}

impl Reader<'_> {
    pub(super) fn text(&self, path: &str) -> &str {
        self.raw.get(path).map(|v| v.text.trim()).unwrap_or("")
    }

    pub(super) fn problem(&mut self, path: &str, message: impl Into<String>) {
        let key = by_path(path).expect("validate reads only keys from the table");
        let raw = &self.raw[path];
        let value = if key.secret { mask(&raw.text) } else { raw.text.clone() };
        self.problems.push(Problem::new(
            format!("{} ({}, from {})", key.env, key.path, raw.source),
            value,
            message,
        ));
    }

    /// Parses with `FromStr`, or records `expected` as the problem.
    pub(super) fn parse<T: FromStr>(&mut self, path: &str, expected: &str) -> Option<T> {
        match self.text(path).parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(path, format!("expected {expected}"));
                None
            }
        }
    }

    pub(super) fn optional_secret(&self, path: &str) -> Option<Secret> {
        let text = self.text(path);
        (!text.is_empty()).then(|| Secret::new(text))
    }

    pub(super) fn list(&self, path: &str) -> Vec<String> {
        self.text(path)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub(super) fn non_zero(&mut self, path: &str) -> Option<NonZeroU32> {
        self.parse(path, "a whole number from 1 to 4294967295")
    }

    pub(super) fn secs(&mut self, path: &str) -> Option<Duration> {
        let secs: u64 = self.parse(path, "a whole number of seconds, at least 1")?;
        if secs == 0 {
            self.problem(path, "expected a whole number of seconds, at least 1");
            return None;
        }
        self.capped(path, Duration::from_secs(secs))
    }

    /// `duration`, or a problem naming the key when it is longer than [`MAX_DURATION`].
    pub(super) fn capped(&mut self, path: &str, duration: Duration) -> Option<Duration> {
        if duration > MAX_DURATION {
            let secs = MAX_DURATION.as_secs();
            self.problem(path, format!("expected at most ten years ({secs} s)"));
            return None;
        }
        Some(duration)
    }

    pub(super) fn bool(&mut self, path: &str) -> Option<bool> {
        match self.text(path).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
                self.problem(path, "expected true or false");
                None
            }
        }
    }

    pub(super) fn url(&mut self, path: &str) -> Option<url::Url> {
        match url::Url::parse(self.text(path)) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                self.problem(path, "expected an http:// or https:// URL");
                None
            }
        }
    }

    /// A comma list where `*` alone means "no check" (an empty list).
    pub(super) fn allow_list(&self, path: &str) -> Vec<String> {
        let items = self.list(path);
        if items.iter().any(|i| i == "*") {
            Vec::new()
        } else {
            items
        }
    }

    pub(super) fn tool_names(&mut self, path: &str) -> Vec<String> {
        let names = self.list(path);
        let known = registry::names();
        let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(&n.as_str())).collect();
        if !unknown.is_empty() {
            let unknown = unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            self.problem(
                path,
                format!("unknown tool(s) {unknown}; known tools: {}", known.join(", ")),
            );
        }
        names
    }
}

/// Builds the typed configuration; `None` when any key failed to parse.
pub(super) fn typed(raw: &RawSettings, problems: &mut Vec<Problem>) -> Option<Config> {
    let mut r = Reader { raw, problems };

    let data_dir = match r.text("data_dir") {
        "" => dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("exai"),
        dir => PathBuf::from(dir),
    };
    let format = match r.text("log.format").to_ascii_lowercase().as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => {
            r.problem("log.format", "expected `text` or `json`");
            None
        }
    };
    let level = r.text("log.level").to_owned();
    let database_url = r.optional_secret("database.url");
    if let Some(url) = &database_url
        && !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://"))
    {
        r.problem("database.url", "expected a postgres:// or postgresql:// URL");
    }
    let ttl = r.secs("conversations.ttl_secs");
    let heartbeat = r.secs("progress.heartbeat_secs");
    let max_turns = r.non_zero("conversations.max_turns");
    let retention_days = r.non_zero("observability.executions_retention_days");
    let files = super::files::read(&mut r);
    let max_steps = r.non_zero("workflow.max_steps");
    let profile = match r.text("tools.profile").parse::<Profile>() {
        Ok(p) => Some(p),
        Err(()) => {
            r.problem("tools.profile", "expected `lean`, `standard` or `full`");
            None
        }
    };
    let dashboard_port = dashboard_port(&mut r);
    let http = (|| {
        Some(HttpConfig {
            host: r.parse::<IpAddr>("http.host", "an IP address such as 127.0.0.1 or ::1")?,
            port: r.parse("http.port", "a port number from 0 to 65535")?,
            token: r.optional_secret("http.token"),
            allowed_hosts: r.allow_list("http.allowed_hosts"),
            allowed_origins: r.allow_list("http.allowed_origins"),
            legacy_sessions: r.bool("http.legacy_sessions")?,
            json_response: r.bool("http.json_response")?,
            dashboard_port: dashboard_port?,
        })
    })();
    let ws_host = r.parse::<IpAddr>("ws.host", "an IP address such as 127.0.0.1 or ::1");
    let ws_port = r.parse::<u16>("ws.port", "a port number from 0 to 65535");
    let ws = (|| {
        let hello_timeout = r.secs("ws.hello_timeout_secs");
        let ping_interval = r.secs("ws.ping_interval_secs");
        let ping_timeout = r.secs("ws.ping_timeout_secs");
        let idle_timeout = r.secs("ws.idle_timeout_secs");
        let session_grace = r.secs("ws.session_grace_secs");
        let max_sessions = r.non_zero("ws.max_sessions");
        let max_frame_bytes: Option<usize> = r.parse("ws.max_frame_bytes", "a byte count from 1024 up");
        let max_frame_bytes = max_frame_bytes.filter(|b| {
            let ok = *b >= 1024;
            if !ok {
                r.problem("ws.max_frame_bytes", "expected a byte count from 1024 up");
            }
            ok
        });
        let max_queued_frames = r.non_zero("ws.max_queued_frames");
        let max_queued_bytes: Option<usize> = r.parse("ws.max_queued_bytes", "a byte count from 1024 up");
        let max_queued_bytes = max_queued_bytes.filter(|b| {
            let ok = *b >= 1024;
            if !ok {
                r.problem("ws.max_queued_bytes", "expected a byte count from 1024 up");
            }
            ok
        });
        let write_timeout = r.secs("ws.write_timeout_secs");
        let max_detached = r.non_zero("ws.max_detached_sessions_per_client");
        Some(WsConfig {
            host: ws_host?,
            port: ws_port?,
            token: r.optional_secret("ws.token"),
            hello_timeout: hello_timeout?,
            ping_interval: ping_interval?,
            ping_timeout: ping_timeout?,
            idle_timeout: idle_timeout?,
            session_grace: session_grace?,
            max_sessions: max_sessions?,
            max_frame_bytes: max_frame_bytes?,
            max_queued_frames: max_queued_frames?,
            max_queued_bytes: max_queued_bytes?,
            write_timeout: write_timeout?,
            max_detached_sessions_per_client: max_detached?,
        })
    })();
    let insecure_no_auth = r.bool("insecure_no_auth");
    let enabled = r.tool_names("tools.enabled");
    let disabled = r.tool_names("tools.disabled");
    let glm = provider(&mut r, "glm");
    let kimi = provider(&mut r, "kimi");
    let limits = limits(&mut r);
    let timeouts = timeouts(&mut r, glm.as_ref(), kimi.as_ref());
    let resilience = super::resilience::read(&mut r, timeouts.as_ref());
    let fleet = super::fleet::read(&mut r);
    let cache = response_cache(&mut r);
    let alerts = super::observe::alerts(&mut r);
    let auditor = super::observe::auditor(&mut r);

    Some(Config {
        data_dir,
        database_url,
        conversations: ConversationConfig {
            ttl: ttl?,
            max_turns: max_turns?,
        },
        observability: ObservabilityConfig {
            executions_retention: Duration::from_secs(u64::from(retention_days?.get()) * 86_400),
        },
        files: files?,
        workflow: WorkflowConfig { max_steps: max_steps? },
        log: LogConfig { format: format?, level },
        http: http?,
        ws: ws?,
        insecure_no_auth: insecure_no_auth?,
        tools: ToolSelection {
            profile: profile?,
            enabled,
            disabled,
        },
        providers: ProvidersConfig { glm: glm?, kimi: kimi? },
        custom_providers: Vec::new(),
        limits: limits?,
        timeouts: timeouts?,
        progress_heartbeat: heartbeat?,
        resilience: resilience?,
        fleet: fleet?,
        cache: cache?,
        alerts: alerts?,
        auditor: auditor?,
        settings: RawSettings::new(),
    })
}

/// `cache.*`: the response cache (off unless a call or `cache.enabled_tools` asks for it).
fn response_cache(r: &mut Reader<'_>) -> Option<CacheConfig> {
    let enabled_tools = r.tool_names("cache.enabled_tools");
    let ttl = r.secs("cache.ttl_secs");
    let max_entries = r.non_zero("cache.max_entries");
    Some(CacheConfig {
        enabled_tools,
        ttl: ttl?,
        max_entries: u64::from(max_entries?.get()),
    })
}

/// `monitoring.dashboard_port`: empty (share the daemon's port) or a port other than `http.port` (0 picks one).
/// The outer `None` means the value is invalid.
fn dashboard_port(r: &mut Reader<'_>) -> Option<Option<u16>> {
    if r.text("monitoring.dashboard_port").is_empty() {
        return Some(None);
    }
    let port: u16 = r.parse(
        "monitoring.dashboard_port",
        "a port number from 0 to 65535, or empty to share the daemon's port",
    )?;
    if port != 0 && r.text("http.port").parse::<u16>().ok() == Some(port) {
        r.problem(
            "monitoring.dashboard_port",
            "expected a port other than EXAI_HTTP_PORT (leave it empty to serve the dashboard on the daemon's port)",
        );
        return None;
    }
    Some(Some(port))
}

fn provider(r: &mut Reader<'_>, name: &str) -> Option<ProviderConfig> {
    let api_key = r.optional_secret(&format!("providers.{name}.api_key"));
    let base_url = r.url(&format!("providers.{name}.base_url"));
    let timeout = r.secs(&format!("providers.{name}.timeout_secs"));
    Some(ProviderConfig {
        api_key,
        base_url: base_url?,
        timeout: timeout?,
    })
}

fn limits(r: &mut Reader<'_>) -> Option<Limits> {
    let global = r.non_zero("limits.global_max_inflight");
    let session = r.non_zero("limits.session_max_inflight");
    let glm = r.non_zero("limits.glm_max_inflight");
    let kimi = r.non_zero("limits.kimi_max_inflight");
    let max_request_bytes: Option<usize> = r.parse("limits.max_request_bytes", "a byte count from 1024 up");
    let max_request_bytes = max_request_bytes.filter(|b| {
        let ok = *b >= 1024;
        if !ok {
            r.problem("limits.max_request_bytes", "expected a byte count from 1024 up");
        }
        ok
    });
    let limits = Limits {
        global_max_inflight: global?,
        session_max_inflight: session?,
        glm_max_inflight: glm?,
        kimi_max_inflight: kimi?,
        max_request_bytes: max_request_bytes?,
        max_connections: r.non_zero("limits.max_connections")?,
        max_connections_per_ip: r.non_zero("limits.max_connections_per_ip")?,
        header_read_timeout: r.secs("limits.header_read_timeout_secs")?,
        body_read_timeout: r.secs("limits.body_read_timeout_secs")?,
    };
    if limits.session_max_inflight > limits.global_max_inflight {
        r.problem(
            "limits.session_max_inflight",
            format!(
                "a session limit above the global limit ({}) can never be reached; lower it or raise EXAI_WS_GLOBAL_MAX_INFLIGHT",
                limits.global_max_inflight
            ),
        );
    }
    Some(limits)
}

/// Outer deadlines must cover the inner ones they contain; a violation names both keys.
fn timeouts(r: &mut Reader<'_>, glm: Option<&ProviderConfig>, kimi: Option<&ProviderConfig>) -> Option<Timeouts> {
    let database = r.secs("timeouts.database_secs");
    let tier1 = r.secs("timeouts.tier1_secs");
    let simple = r.secs("timeouts.simple_tool_secs");
    let files = r.secs("timeouts.files_tool_secs");
    let workflow = r.secs("timeouts.workflow_tool_secs");
    let t = Timeouts {
        database: database?,
        tier1: tier1?,
        simple_tool: simple?,
        files_tool: files?,
        workflow_tool: workflow?,
    };
    for (inner_key, inner) in [("GLM_TIMEOUT_SECS", glm), ("KIMI_TIMEOUT_SECS", kimi)] {
        if let Some(p) = inner
            && p.timeout > t.simple_tool
        {
            r.problem(
                "timeouts.simple_tool_secs",
                format!(
                    "shorter than {inner_key} ({} s): a simple tool call would time out before its provider request",
                    p.timeout.as_secs()
                ),
            );
        }
    }
    if t.database > t.tier1 {
        r.problem(
            "timeouts.database_secs",
            format!(
                "longer than EXAI_TIER1_TIMEOUT_SECS ({} s): a status call could time out waiting on the database",
                t.tier1.as_secs()
            ),
        );
    }
    for (outer_key, outer, inner_key, inner) in [
        (
            "timeouts.simple_tool_secs",
            t.simple_tool,
            "EXAI_TIER1_TIMEOUT_SECS",
            t.tier1,
        ),
        (
            "timeouts.files_tool_secs",
            t.files_tool,
            "SIMPLE_TOOL_TIMEOUT_SECS",
            t.simple_tool,
        ),
        (
            "timeouts.workflow_tool_secs",
            t.workflow_tool,
            "FILES_TOOL_TIMEOUT_SECS",
            t.files_tool,
        ),
    ] {
        if inner > outer {
            r.problem(
                outer_key,
                format!(
                    "shorter than {inner_key} ({} s): tiers must not shrink",
                    inner.as_secs()
                ),
            );
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LogFormat, MapEnv};

    fn load(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::load(&MapEnv::new(pairs.iter().copied()), None, &[])
    }

    #[test]
    fn defaults_are_valid() {
        let c = load(&[]).expect("defaults must validate");
        assert_eq!(c.http.port, 8080);
        assert_eq!(c.http.host.to_string(), "127.0.0.1");
        assert_eq!(c.ws.port, 8079);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.limits.global_max_inflight.get(), 24);
        assert!(c.http.token.is_none());
        assert_eq!(c.http.allowed_hosts, vec!["localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn every_problem_is_reported_with_variable_value_and_rule() {
        let err = load(&[
            ("EXAI_HTTP_PORT", "eighty"),
            ("EXAI_LOG_FORMAT", "xml"),
            ("EXAI_WS_GLOBAL_MAX_INFLIGHT", "0"),
            ("GLM_BASE_URL", "ftp://x"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 4, "{text}");
        assert!(
            text.contains("EXAI_HTTP_PORT (http.port, from env EXAI_HTTP_PORT) = \"eighty\": expected a port"),
            "{text}"
        );
        assert!(text.contains("EXAI_LOG_FORMAT"), "{text}");
        assert!(text.contains("EXAI_WS_GLOBAL_MAX_INFLIGHT"), "{text}");
        assert!(text.contains("GLM_BASE_URL"), "{text}");
    }

    #[test]
    fn dashboard_port_is_empty_or_another_port() {
        assert_eq!(load(&[]).unwrap().http.dashboard_port, None);
        let c = load(&[("MONITORING_DASHBOARD_PORT", "9100")]).unwrap();
        assert_eq!(c.http.dashboard_port, Some(9100));
        let text = load(&[("MONITORING_DASHBOARD_PORT", "8080")]).unwrap_err().to_string();
        assert!(text.contains("other than EXAI_HTTP_PORT"), "{text}");
        let text = load(&[("MONITORING_DASHBOARD_PORT", "web")]).unwrap_err().to_string();
        assert!(
            text.contains("MONITORING_DASHBOARD_PORT (monitoring.dashboard_port"),
            "{text}"
        );
    }

    #[test]
    fn unknown_tool_names_are_rejected() {
        let err = load(&[
            ("EXAI_ENABLED_TOOLS", "version,frobnicate"),
            ("EXAI_DISABLED_TOOLS", "nope"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown tool(s) frobnicate"), "{text}");
        assert!(text.contains("unknown tool(s) nope"), "{text}");
        assert!(text.contains("known tools: "), "{text}");
    }

    #[test]
    fn inner_timeout_longer_than_outer_names_both() {
        let err = load(&[("KIMI_TIMEOUT_SECS", "900")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("SIMPLE_TOOL_TIMEOUT_SECS") && text.contains("KIMI_TIMEOUT_SECS (900 s)"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_masked_in_problems_and_descriptions() {
        let c = load(&[("GLM_API_KEY", "sk-very-secret"), ("EXAI_HTTP_TOKEN", "tok")]).unwrap();
        let lines = Config::describe(&c.settings).join("\n");
        let inspected = Config::inspect(
            &MapEnv::new([("GLM_API_KEY", "sk-very-secret"), ("EXAI_HTTP_PORT", "x")]),
            None,
            &[],
        );
        assert!(inspected.config.is_err());
        assert!(!format!("{inspected:?}").contains("sk-very-secret"));
        assert!(!lines.contains("sk-very-secret") && !lines.contains("= tok"), "{lines}");
        assert!(lines.contains("**** (14 chars)"), "{lines}");
        assert_eq!(c.providers.glm.api_key.as_ref().unwrap().expose(), "sk-very-secret");
        assert!(!format!("{c:?}").contains("sk-very-secret"));
    }

    #[test]
    fn star_disables_host_and_origin_checks() {
        let c = load(&[("EXAI_HTTP_ALLOWED_HOSTS", "*"), ("EXAI_HTTP_ALLOWED_ORIGINS", "*")]).unwrap();
        assert!(c.http.allowed_hosts.is_empty() && c.http.allowed_origins.is_empty());
    }
}

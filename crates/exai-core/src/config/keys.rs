//! The one table of configuration keys: each key's `exai.toml` path, environment variable, default and meaning.
//! Loading, `exai config check` and the README's configuration table are all driven by [`KEYS`].

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Dotted path in `exai.toml`, e.g. `http.port`.
    pub path: &'static str,
    /// Environment variable that overrides the file (the EX-AI name where one exists).
    pub env: &'static str,
    /// Default value as text; empty means "unset".
    pub default: &'static str,
    /// Secrets are masked whenever the configuration is printed.
    pub secret: bool,
    /// One line for users: what the key does and what it accepts.
    pub doc: &'static str,
}

const fn key(path: &'static str, env: &'static str, default: &'static str, doc: &'static str) -> Key {
    Key {
        path,
        env,
        default,
        secret: false,
        doc,
    }
}

const fn secret(path: &'static str, env: &'static str, doc: &'static str) -> Key {
    Key {
        path,
        env,
        default: "",
        secret: true,
        doc,
    }
}

/// Every key exai reads. Adding one here is the only way to add configuration.
pub const KEYS: &[Key] = &[
    key(
        "data_dir",
        "EXAI_DATA_DIR",
        "",
        "Directory for the SQLite database (default: the user's data dir + `/exai`).",
    ),
    secret(
        "database.url",
        "EXAI_DATABASE_URL",
        "Use PostgreSQL (`postgres://user:pass@host/db`) instead of the embedded SQLite file.",
    ),
    key(
        "conversations.ttl_secs",
        "EXAI_CONVERSATION_TTL_SECS",
        "10800",
        "How long a `continuation_id` thread stays usable after its last turn.",
    ),
    key(
        "conversations.max_turns",
        "EXAI_CONVERSATION_MAX_TURNS",
        "50",
        "Most turns a thread keeps; older turns are dropped first.",
    ),
    key(
        "observability.executions_retention_days",
        "EXAI_EXECUTIONS_RETENTION_DAYS",
        "7",
        "Days the `tool_executions` table keeps each tool call (older rows are purged on the first call, then hourly).",
    ),
    key(
        "files.allowed_roots",
        "EXAI_ALLOWED_ROOTS",
        "",
        "Comma list of absolute directories tools may read files from; never `/`, the home directory or a parent of it. Default: the working directory, unless that is `/`, the home directory or a system directory (then none: file tools refuse until this is set).",
    ),
    key(
        "files.max_file_bytes",
        "EXAI_MAX_FILE_BYTES",
        "1048576",
        "Largest file a tool reads; a larger one is refused naming the file and the limit.",
    ),
    key(
        "files.max_images",
        "EXAI_MAX_IMAGES",
        "8",
        "Most images one request may list (1-64); more is refused naming the limit. Repeated images are sent once.",
    ),
    key(
        "files.max_image_total_bytes",
        "EXAI_MAX_IMAGE_TOTAL_BYTES",
        "20971520",
        "Most image bytes one request may send (files and `data:` URLs together); more is refused naming the limit.",
    ),
    key(
        "workflow.max_steps",
        "EXAI_WORKFLOW_MAX_STEPS",
        "50",
        "Safety cap on the steps of one workflow investigation (debug, codereview, ...); reaching it ends the run.",
    ),
    key(
        "log.format",
        "EXAI_LOG_FORMAT",
        "text",
        "`text` (human-readable) or `json`.",
    ),
    key(
        "log.level",
        "EXAI_LOG_LEVEL",
        "info,rmcp=warn",
        "A tracing filter: `info`, `debug`, `exai_server=debug,rmcp=warn`, ...",
    ),
    key(
        "http.host",
        "EXAI_HTTP_HOST",
        "127.0.0.1",
        "Address `exai serve` binds for Streamable HTTP (`/mcp`, `/healthz`, `/readyz`).",
    ),
    key(
        "http.port",
        "EXAI_HTTP_PORT",
        "8080",
        "Port for `exai serve`; 0 picks a free port and prints it.",
    ),
    secret(
        "http.token",
        "EXAI_HTTP_TOKEN",
        "Bearer token required on every HTTP request when set (else 401); required to bind `http.host` off loopback.",
    ),
    key(
        "http.allowed_hosts",
        "EXAI_HTTP_ALLOWED_HOSTS",
        "localhost,127.0.0.1,::1",
        "Comma list of accepted `Host` values (DNS-rebinding protection); `*` disables the check.",
    ),
    key(
        "http.allowed_origins",
        "EXAI_HTTP_ALLOWED_ORIGINS",
        "http://localhost:*,http://127.0.0.1:*,http://[::1]:*",
        "Comma list of accepted browser `Origin`s (scheme://host:port, `:*` any port); `*` disables the check.",
    ),
    key(
        "http.legacy_sessions",
        "EXAI_HTTP_LEGACY_SESSIONS",
        "true",
        "Give 2025-11-25 clients an `Mcp-Session-Id`, a GET stream and DELETE (2026-07-28 is always stateless).",
    ),
    key(
        "http.json_response",
        "EXAI_HTTP_JSON_RESPONSE",
        "false",
        "Answer stateless requests with `application/json` instead of an SSE stream when the call sends no progress.",
    ),
    key(
        "monitoring.dashboard_port",
        "MONITORING_DASHBOARD_PORT",
        "",
        "Also serve the dashboard (`/dashboard`) and `/metrics` on this port, same host; empty: only on the daemon's port.",
    ),
    key(
        "ws.host",
        "EXAI_WS_HOST",
        "127.0.0.1",
        "Address `exai serve` binds for the WebSocket daemon (EX-AI daemon protocol and MCP JSON-RPC).",
    ),
    key(
        "ws.port",
        "EXAI_WS_PORT",
        "8079",
        "WebSocket daemon port; 0 picks a free port and prints it.",
    ),
    secret(
        "ws.token",
        "EXAI_WS_TOKEN",
        "Token WebSocket clients must present (`hello`, or `Authorization: Bearer`; else close 4003); unset: the one `exai serve` creates in `<data_dir>/ws-token`. Required to bind `ws.host` off loopback.",
    ),
    key(
        "insecure_no_auth",
        "EXAI_INSECURE_NO_AUTH",
        "false",
        "Let `exai serve` bind HTTP or WebSocket to a non-loopback address without EXAI_HTTP_TOKEN / EXAI_WS_TOKEN (warns at every start); also `--insecure-no-auth`.",
    ),
    key(
        "ws.hello_timeout_secs",
        "EXAI_WS_HELLO_TIMEOUT_SECS",
        "10",
        "Longest a new WebSocket connection may take to send its first frame (else close 4002).",
    ),
    key(
        "ws.ping_interval_secs",
        "EXAI_WS_PING_INTERVAL_SECS",
        "20",
        "How often the daemon pings each WebSocket connection.",
    ),
    key(
        "ws.ping_timeout_secs",
        "EXAI_WS_PING_TIMEOUT_SECS",
        "30",
        "Close a WebSocket connection that sent nothing (not even a pong) this long after a ping (close 4004).",
    ),
    key(
        "ws.idle_timeout_secs",
        "EXAI_WS_IDLE_TIMEOUT_SECS",
        "3600",
        "Close a WebSocket connection with no call running and no frame but keepalives for this long.",
    ),
    key(
        "ws.session_grace_secs",
        "EXAI_WS_SESSION_GRACE_SECS",
        "300",
        "How long a WebSocket session (running calls, finished results) waits for its client to reconnect.",
    ),
    key(
        "ws.max_sessions",
        "EXAI_WS_MAX_SESSIONS",
        "256",
        "WebSocket sessions at once (connected or within their grace period); past it `hello` is refused.",
    ),
    key(
        "ws.max_frame_bytes",
        "EXAI_WS_MAX_FRAME_BYTES",
        "33554432",
        "Largest WebSocket message accepted; a larger one closes the connection with 1009.",
    ),
    key(
        "ws.max_queued_frames",
        "EXAI_WS_MAX_QUEUED_FRAMES",
        "1024",
        "Frames waiting to be sent to one WebSocket client; a client that lets more pile up is closed with 4007.",
    ),
    key(
        "ws.max_queued_bytes",
        "EXAI_WS_MAX_QUEUED_BYTES",
        "8388608",
        "Bytes waiting to be sent to one WebSocket client; a client that lets more pile up is closed with 4007.",
    ),
    key(
        "ws.write_timeout_secs",
        "EXAI_WS_WRITE_TIMEOUT_SECS",
        "30",
        "Longest one write to a WebSocket client may block (a client that stopped reading); then it is dropped.",
    ),
    key(
        "ws.max_detached_sessions_per_client",
        "EXAI_WS_MAX_DETACHED_SESSIONS_PER_CLIENT",
        "32",
        "Disconnected WebSocket sessions (in their grace period) one client address may hold; past it its oldest ends.",
    ),
    key(
        "tools.profile",
        "EXAI_TOOL_PROFILE",
        "standard",
        "`lean`, `standard` or `full`: which tools are offered.",
    ),
    key(
        "tools.enabled",
        "EXAI_ENABLED_TOOLS",
        "",
        "Comma list of tools to offer on top of the profile.",
    ),
    key(
        "tools.disabled",
        "EXAI_DISABLED_TOOLS",
        "",
        "Comma list of tools to hide (wins over the profile and `tools.enabled`).",
    ),
    secret("providers.glm.api_key", "GLM_API_KEY", "Zhipu / Z.ai API key."),
    key(
        "providers.glm.base_url",
        "GLM_BASE_URL",
        "https://api.z.ai/api/paas/v4",
        "GLM endpoint (mainland China: `https://open.bigmodel.cn/api/paas/v4`).",
    ),
    key(
        "providers.glm.timeout_secs",
        "GLM_TIMEOUT_SECS",
        "120",
        "Longest a single GLM request may take.",
    ),
    secret("providers.kimi.api_key", "KIMI_API_KEY", "Moonshot API key."),
    key(
        "providers.kimi.base_url",
        "KIMI_BASE_URL",
        "https://api.moonshot.ai/v1",
        "Kimi endpoint (mainland China: `https://api.moonshot.cn/v1`).",
    ),
    key(
        "providers.kimi.timeout_secs",
        "KIMI_TIMEOUT_SECS",
        "240",
        "Longest a single plain Kimi request may take.",
    ),
    key(
        "providers.kimi.web_search_timeout_secs",
        "KIMI_WEB_SEARCH_TIMEOUT_SECS",
        "300",
        "Longest a Kimi request with web search may take.",
    ),
    key(
        "providers.kimi.thinking_timeout_secs",
        "KIMI_THINKING_TIMEOUT_SECS",
        "360",
        "Longest a Kimi thinking request may take.",
    ),
    key(
        "providers.kimi.web_search_thinking_timeout_secs",
        "KIMI_WEB_SEARCH_THINKING_TIMEOUT_SECS",
        "420",
        "Longest a Kimi thinking request with web search may take.",
    ),
    key(
        "limits.global_max_inflight",
        "EXAI_WS_GLOBAL_MAX_INFLIGHT",
        "24",
        "Tool calls running at once, all clients together.",
    ),
    key(
        "limits.session_max_inflight",
        "EXAI_WS_SESSION_MAX_INFLIGHT",
        "8",
        "Tool calls running at once for one client session.",
    ),
    key(
        "limits.glm_max_inflight",
        "EXAI_WS_GLM_MAX_INFLIGHT",
        "4",
        "Upstream calls to GLM at once.",
    ),
    key(
        "limits.kimi_max_inflight",
        "EXAI_WS_KIMI_MAX_INFLIGHT",
        "6",
        "Upstream calls to Kimi at once.",
    ),
    key(
        "limits.max_request_bytes",
        "EXAI_MAX_REQUEST_BYTES",
        "4194304",
        "Largest MCP message accepted (HTTP body or stdio line); larger gets 413 / a JSON-RPC error.",
    ),
    key(
        "limits.max_connections",
        "EXAI_MAX_CONNECTIONS",
        "1000",
        "Open HTTP connections at once, all clients together.",
    ),
    key(
        "limits.max_connections_per_ip",
        "EXAI_MAX_CONNECTIONS_PER_IP",
        "10",
        "Open HTTP connections at once from one client address.",
    ),
    key(
        "limits.header_read_timeout_secs",
        "EXAI_HEADER_READ_TIMEOUT_SECS",
        "10",
        "Longest a client may take to send a request's headers (HTTP, dashboard and WebSocket ports); then it is closed.",
    ),
    key(
        "limits.body_read_timeout_secs",
        "EXAI_BODY_READ_TIMEOUT_SECS",
        "30",
        "Longest a client may take to send an MCP request's body once its headers are in (HTTP); then it gets 408.",
    ),
    key(
        "limits.custom_max_inflight",
        "EXAI_CUSTOM_MAX_INFLIGHT",
        "4",
        "Upstream calls at once to each custom endpoint.",
    ),
    key(
        "limits.glm_rpm",
        "EXAI_GLM_RPM",
        "0",
        "Requests a minute to GLM, spaced evenly (fleet-wide with `EXAI_REDIS_URL`); 0: no limit.",
    ),
    key(
        "limits.kimi_rpm",
        "EXAI_KIMI_RPM",
        "0",
        "Requests a minute to Kimi, spaced evenly (fleet-wide with `EXAI_REDIS_URL`); 0: no limit.",
    ),
    key(
        "limits.max_waiters",
        "EXAI_LIMIT_MAX_WAITERS",
        "64",
        "Calls that may queue for a full limit; past that a call fails at once with an over-capacity error.",
    ),
    key(
        "limits.max_wait_ms",
        "EXAI_LIMIT_MAX_WAIT_MS",
        "30000",
        "Longest a call queues for a limit before failing with an over-capacity error.",
    ),
    secret(
        "redis.url",
        "EXAI_REDIS_URL",
        "Share the global and provider limits across replicas through this Redis (`redis://host:6379/0`); empty: limits are per process.",
    ),
    key(
        "redis.key_prefix",
        "EXAI_REDIS_KEY_PREFIX",
        "exai:",
        "Prefix of every Redis key exai writes (`<prefix>lease:<limit>`); replicas of one fleet share it.",
    ),
    key(
        "redis.lease_ttl_secs",
        "EXAI_REDIS_LEASE_TTL_SECS",
        "10",
        "A fleet slot lapses this long after its holder stopped renewing it (a killed replica's slots come back within it).",
    ),
    key(
        "redis.timeout_ms",
        "EXAI_REDIS_TIMEOUT_MS",
        "500",
        "Longest one Redis command may take before it counts as a Redis failure; below a third of the lease TTL.",
    ),
    key(
        "redis.on_failure",
        "EXAI_REDIS_ON_FAILURE",
        "open",
        "When Redis fails: `open` runs on the local limits alone, `closed` refuses calls that need a fleet limit (logged and counted either way).",
    ),
    key(
        "cache.enabled_tools",
        "EXAI_CACHE_ENABLED_TOOLS",
        "",
        "Comma list of tools whose deterministic model calls (temperature 0, no web search) use the response cache without `cache: true`.",
    ),
    key(
        "cache.ttl_secs",
        "EXAI_CACHE_TTL_SECS",
        "3600",
        "How long a cached answer is served (in process, and in Redis with `EXAI_REDIS_URL`).",
    ),
    key(
        "cache.max_entries",
        "EXAI_CACHE_MAX_ENTRIES",
        "1000",
        "Most answers the in-process response cache keeps (least used go first).",
    ),
    key(
        "retry.max_attempts",
        "EXAI_RETRY_MAX_ATTEMPTS",
        "3",
        "Attempts per model for retriable failures, the first included.",
    ),
    key(
        "retry.base_ms",
        "EXAI_RETRY_BASE_MS",
        "500",
        "First backoff ceiling; doubles per attempt (full jitter).",
    ),
    key(
        "retry.max_backoff_ms",
        "EXAI_RETRY_MAX_BACKOFF_MS",
        "8000",
        "Largest backoff ceiling.",
    ),
    key(
        "retry.budget_ratio",
        "EXAI_RETRY_BUDGET_RATIO",
        "0.2",
        "Retries allowed per first attempt, per provider (a token bucket), so a failing provider is not hammered.",
    ),
    key(
        "breaker.failures",
        "EXAI_BREAKER_FAILURES",
        "5",
        "Failures within the window that open a model's circuit.",
    ),
    key(
        "breaker.window_secs",
        "EXAI_BREAKER_WINDOW_SECS",
        "60",
        "The window failures are counted in.",
    ),
    key(
        "breaker.cooldown_secs",
        "EXAI_BREAKER_COOLDOWN_SECS",
        "30",
        "How long an open circuit fails fast before probing.",
    ),
    key(
        "breaker.half_open_probes",
        "EXAI_BREAKER_HALF_OPEN_PROBES",
        "1",
        "Calls let through at once while half-open.",
    ),
    key(
        "breaker.close_after",
        "EXAI_BREAKER_CLOSE_AFTER",
        "2",
        "Probe successes that close the circuit again.",
    ),
    key(
        "fallback.chains",
        "EXAI_FALLBACK_CHAINS",
        "",
        "Fallback chains, `a>b>c;d>e`: when a model fails after its retries (or its circuit is open), try the next.",
    ),
    key(
        "progress.heartbeat_secs",
        "EXAI_PROGRESS_HEARTBEAT_SECS",
        "5",
        "While a model call waits upstream, send the caller a progress notification at least this often.",
    ),
    key(
        "timeouts.database_secs",
        "EXAI_DB_TIMEOUT_SECS",
        "5",
        "Longest the database may make a call wait for a connection or a lock.",
    ),
    key(
        "timeouts.tier1_secs",
        "EXAI_TIER1_TIMEOUT_SECS",
        "5",
        "Deadline for tier-1 tools (version, status, health, listmodels).",
    ),
    key(
        "timeouts.simple_tool_secs",
        "SIMPLE_TOOL_TIMEOUT_SECS",
        "450",
        "Deadline for simple tools (chat, challenge); must cover the provider timeouts.",
    ),
    key(
        "timeouts.files_tool_secs",
        "FILES_TOOL_TIMEOUT_SECS",
        "500",
        "Deadline for tier-3 file tools; between the simple-tool and workflow deadlines.",
    ),
    key(
        "timeouts.workflow_tool_secs",
        "WORKFLOW_TOOL_TIMEOUT_SECS",
        "600",
        "Deadline for workflow tools; must be at least the simple-tool deadline.",
    ),
    key(
        "alerts.enabled",
        "EXAI_ALERTS_ENABLED",
        "true",
        "Evaluate the alert rules in `exai serve` (raised and cleared alerts are logged, stored and exported).",
    ),
    key(
        "alerts.interval_secs",
        "EXAI_ALERTS_INTERVAL_SECS",
        "15",
        "How often the alert rules are evaluated.",
    ),
    key(
        "alerts.window_secs",
        "EXAI_ALERTS_WINDOW_SECS",
        "300",
        "The window of recent tool calls the error-rate and latency rules look at.",
    ),
    key(
        "alerts.min_calls",
        "EXAI_ALERTS_MIN_CALLS",
        "10",
        "Fewest calls in the window (per tier for latency) before the error-rate and latency rules may fire.",
    ),
    key(
        "alerts.error_rate_percent",
        "EXAI_ALERTS_ERROR_RATE_PERCENT",
        "5",
        "Alert `error_rate` fires when more than this percentage of the window's calls failed.",
    ),
    key(
        "alerts.p95_tier1_ms",
        "EXAI_ALERTS_P95_TIER1_MS",
        "1000",
        "Alert `p95_latency_tier1` fires when the tier-1 tools' p95 latency in the window is above this.",
    ),
    key(
        "alerts.p95_simple_ms",
        "EXAI_ALERTS_P95_SIMPLE_MS",
        "60000",
        "Alert `p95_latency_simple` fires when the simple tools' p95 latency in the window is above this.",
    ),
    key(
        "alerts.p95_files_ms",
        "EXAI_ALERTS_P95_FILES_MS",
        "120000",
        "Alert `p95_latency_files` fires when the tier-3 file tools' p95 latency in the window is above this.",
    ),
    key(
        "alerts.p95_workflow_ms",
        "EXAI_ALERTS_P95_WORKFLOW_MS",
        "300000",
        "Alert `p95_latency_workflow` fires when the workflow tools' p95 latency in the window is above this.",
    ),
    key(
        "alerts.saturated_secs",
        "EXAI_ALERTS_SATURATED_SECS",
        "30",
        "Alert `saturated` fires when a limit has had every permit taken (or calls queued) for at least this long.",
    ),
    key(
        "alerts.cpu_percent",
        "EXAI_ALERTS_CPU_PERCENT",
        "80",
        "Alert `cpu` fires when the process used more than this percentage of the CPUs available to it.",
    ),
    key(
        "alerts.memory_percent",
        "EXAI_ALERTS_MEMORY_PERCENT",
        "85",
        "Alert `memory` fires when resident memory is above this percentage of the cgroup limit (else of RAM).",
    ),
    key(
        "auditor.enabled",
        "AI_AUDITOR_ENABLED",
        "false",
        "Run the AI auditor: batches of tool calls and alerts go to a cheap model whose observations are stored.",
    ),
    key(
        "auditor.model",
        "AI_AUDITOR_MODEL",
        "glm-4.5-flash",
        "The model the auditor asks (a built-in model name or alias).",
    ),
    key(
        "auditor.batch_size",
        "AI_AUDITOR_BATCH_SIZE",
        "10",
        "Most events in one auditor request; a smaller batch goes once its first event waited the rate limit.",
    ),
    key(
        "auditor.rate_limit_secs",
        "AI_AUDITOR_RATE_LIMIT",
        "5",
        "Fewest seconds between two auditor requests.",
    ),
    key(
        "auditor.queue",
        "AI_AUDITOR_QUEUE",
        "1000",
        "Events waiting for the auditor; past this they are dropped and counted (calls are never slowed).",
    ),
    key(
        "auditor.timeout_secs",
        "AI_AUDITOR_TIMEOUT_SECS",
        "60",
        "Longest one auditor request may take.",
    ),
];

/// The key at `path`, if any.
pub fn by_path(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.path == path)
}

/// The README's configuration table, rendered from [`KEYS`] (a test keeps the README in step).
pub fn markdown_table() -> String {
    let mut out = String::from("| Variable | `exai.toml` key | Default | Meaning |\n|---|---|---|---|\n");
    for k in KEYS {
        let default = if k.default.is_empty() {
            "—".to_owned()
        } else {
            format!("`{}`", k.default)
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            k.env,
            k.path,
            default,
            k.doc.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn readme_configuration_table_matches_the_keys() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's configuration table is out of date; replace it with:\n\n{table}"
        );
    }

    #[test]
    fn paths_and_env_names_are_unique() {
        let paths: HashSet<_> = KEYS.iter().map(|k| k.path).collect();
        let envs: HashSet<_> = KEYS.iter().map(|k| k.env).collect();
        assert_eq!(paths.len(), KEYS.len());
        assert_eq!(envs.len(), KEYS.len());
    }

    #[test]
    fn secrets_have_no_default() {
        for k in KEYS.iter().filter(|k| k.secret) {
            assert!(k.default.is_empty(), "{} is secret but has a default", k.path);
        }
    }
}

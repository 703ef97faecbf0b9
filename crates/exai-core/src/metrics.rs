//! The one list of metrics exai records: each metric's name, kind, help text and (for histograms) buckets.
//! [`describe`] registers the help texts with the global recorder; the exporter reads the buckets from here.

/// What sort of value a metric is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    /// With its bucket upper bounds (seconds for latencies).
    Histogram(&'static [f64]),
}

/// One metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    /// One line for the `# HELP` text, naming the labels.
    pub help: &'static str,
}

/// Buckets for a whole tool call or upstream request: 5 ms to 10 minutes.
const LATENCY: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets for waiting on a permit: 1 ms to a minute.
const WAIT: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

const fn m(name: &'static str, kind: Kind, help: &'static str) -> Metric {
    Metric { name, kind, help }
}

/// Every metric exai records. Label sets are bounded: tools, statuses, providers, models, limits, transports.
pub const METRICS: &[Metric] = &[
    m(
        "exai_tool_calls_total",
        Kind::Counter,
        "Tool calls finished, by tool, status (ok, tool_error, timeout, ...) and error kind (none, provider, ...).",
    ),
    m(
        "exai_tool_latency_seconds",
        Kind::Histogram(LATENCY),
        "Time a tool call took, by tool.",
    ),
    m(
        "exai_upstream_first_token_seconds",
        Kind::Histogram(LATENCY),
        "Time from sending a model request to its first answer text, by provider and model.",
    ),
    m(
        "exai_upstream_latency_seconds",
        Kind::Histogram(LATENCY),
        "Time a successful model request took in all, by provider and model.",
    ),
    m(
        "exai_tokens_total",
        Kind::Counter,
        "Tokens the models reported, by model and direction (in, out).",
    ),
    m(
        "exai_retries_total",
        Kind::Counter,
        "Upstream requests retried, by provider.",
    ),
    m(
        "exai_fallbacks_total",
        Kind::Counter,
        "Answers from a fallback model, by asked-for model (from) and answering model (to).",
    ),
    m(
        "exai_circuit_open",
        Kind::Gauge,
        "1 while a circuit breaker is open (calls refused), by target.",
    ),
    m(
        "exai_circuit_opened_total",
        Kind::Counter,
        "Times any circuit breaker opened.",
    ),
    m("mcp_semaphore_current_value", Kind::Gauge, "Permits in use, by limit."),
    m(
        "mcp_semaphore_expected_value",
        Kind::Gauge,
        "Permits a limit has (its capacity), by limit.",
    ),
    m(
        "mcp_semaphore_wait_seconds",
        Kind::Histogram(WAIT),
        "Time spent waiting for a permit, by limit.",
    ),
    m(
        "mcp_semaphore_acquisition_failures_total",
        Kind::Counter,
        "Permits refused, by limit and reason (queue_full, timeout).",
    ),
    m(
        "exai_fleet_acquisitions_total",
        Kind::Counter,
        "Fleet lease requests that ended, by fleet limit and outcome (granted, timeout).",
    ),
    m(
        "exai_fleet_fallbacks_total",
        Kind::Counter,
        "Fleet limits that could not be checked because Redis failed, by fleet limit and mode (open: ran on local limits; closed: refused).",
    ),
    m(
        "exai_fleet_skipped_total",
        Kind::Counter,
        "Redis asks skipped because Redis failed moments ago (the skip window), by operation (acquire, pace, ping, cache_get, cache_set); each went to the fallback at once.",
    ),
    m(
        "exai_fleet_leases_held",
        Kind::Gauge,
        "Fleet leases this replica holds now, by fleet limit.",
    ),
    m(
        "exai_fleet_failures_total",
        Kind::Counter,
        "Redis commands of the fleet that failed or timed out, by operation (acquire, pace, ping, renew, release, cache_get, cache_set).",
    ),
    m(
        "exai_cache_hits_total",
        Kind::Counter,
        "Model calls answered from the response cache, by layer (memory, redis); no model was asked.",
    ),
    m(
        "exai_cache_misses_total",
        Kind::Counter,
        "Cacheable model calls the response cache could not answer (asked upstream, then stored when complete).",
    ),
    m(
        "mcp_semaphore_invariant_violations_total",
        Kind::Counter,
        "Times more global permits were held than calls were running (a leak).",
    ),
    m(
        "mcp_concurrent_requests",
        Kind::Gauge,
        "Upstream requests running, by provider.",
    ),
    m(
        "exai_open_connections",
        Kind::Gauge,
        "Open client connections, by transport (http, ws, monitoring: the dashboard port's connections, dashboard: open dashboard streams).",
    ),
    m(
        "exai_dashboard_streams_opened_total",
        Kind::Counter,
        "Dashboard live streams (GET /dashboard/stream) opened since start.",
    ),
    m(
        "exai_connections_refused_total",
        Kind::Counter,
        "Client connections refused at a limit, by transport.",
    ),
    m(
        "exai_open_sessions",
        Kind::Gauge,
        "Live sessions, by transport (ws: daemon-protocol sessions; http: MCP legacy sessions, sampled every 2 s).",
    ),
    m(
        "exai_ws_outbound_full_total",
        Kind::Counter,
        "WebSocket connections whose outbound queue filled up (EXAI_WS_MAX_QUEUED_FRAMES / _BYTES): the client was not reading.",
    ),
    m(
        "exai_ws_closed_not_reading_total",
        Kind::Counter,
        "WebSocket connections closed with 4007 because their client did not read what it asked for.",
    ),
    m(
        "exai_ws_write_timeouts_total",
        Kind::Counter,
        "WebSocket connections dropped because one write blocked for EXAI_WS_WRITE_TIMEOUT_SECS (a client with a zero TCP window).",
    ),
    m(
        "exai_ws_sessions_evicted_total",
        Kind::Counter,
        "Disconnected WebSocket sessions ended before their grace period, past EXAI_WS_MAX_DETACHED_SESSIONS_PER_CLIENT or to make room at EXAI_WS_MAX_SESSIONS.",
    ),
    m(
        "exai_ws_store_failures_total",
        Kind::Counter,
        "Store operations of WebSocket sessions that failed, by operation (claim, read_holder, keep, take_kept, …); kept frames then stay in memory.",
    ),
    m(
        "exai_session_store_errors_total",
        Kind::Counter,
        "Failed or timed-out store calls for shared MCP legacy sessions, by op (load, store, delete, check, refresh).",
    ),
    m(
        "exai_execution_records_failed_total",
        Kind::Counter,
        "Tool calls that could not be written to the tool_executions table.",
    ),
    m(
        "exai_execution_records_dropped_total",
        Kind::Counter,
        "Tool calls not written to the tool_executions table because the write backlog was full.",
    ),
    m(
        "exai_task_records_failed_total",
        Kind::Counter,
        "Store calls for tasks shared by replicas that failed or timed out, by operation (write, read, signal, poll).",
    ),
    m(
        "exai_alerts_firing",
        Kind::Gauge,
        "1 while an alert rule fires, by rule (error_rate, p95_latency_<tier>, circuit_open, saturated, cpu, memory).",
    ),
    m(
        "exai_alerts_raised_total",
        Kind::Counter,
        "Times an alert rule started firing, by rule and severity.",
    ),
    m(
        "exai_auditor_events_dropped_total",
        Kind::Counter,
        "Events the AI auditor's full queue could not take (the call itself went on).",
    ),
    m(
        "exai_auditor_batches_total",
        Kind::Counter,
        "Batches of events the AI auditor handled, by outcome (ok, invalid, model_error, circuit_open, store_error).",
    ),
    m(
        "exai_auditor_observations_total",
        Kind::Counter,
        "Observations the AI auditor stored, by severity.",
    ),
    m(
        "exai_auditor_invalid_outputs_total",
        Kind::Counter,
        "Auditor model output skipped as invalid, by what (output: the whole reply, item: one observation).",
    ),
    m(
        "exai_auditor_model_failures_total",
        Kind::Counter,
        "Auditor model requests that failed (HTTP error, timeout, broken stream, ...).",
    ),
    m(
        "process_cpu_seconds_total",
        Kind::Counter,
        "CPU time the process has used, user and system (Linux only).",
    ),
    m(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of the process (Linux only).",
    ),
];

/// Gives the global recorder every metric's help text (call once, after installing it). The `process_*` ones
/// are written by the `/metrics` route itself at scrape time.
pub fn describe() {
    for metric in METRICS.iter().filter(|m| !m.name.starts_with("process_")) {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram(_) => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_buckets_increase() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for metric in METRICS {
            if let Kind::Histogram(b) = metric.kind {
                assert!(b.windows(2).all(|w| w[0] < w[1]), "{}", metric.name);
            }
        }
    }
}

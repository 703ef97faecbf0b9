//! The daemon's HTTP app: MCP Streamable HTTP at `/mcp` (rmcp's service, with Host/Origin allow-lists, legacy
//! sessions from `http.*` config kept in the store so any replica serves them), a guard that gives bad bodies
//! JSON-RPC errors, optional bearer auth, the health routes, `/admin/*`, `/metrics` and the dashboard (`/dashboard`,
//! also on `MONITORING_DASHBOARD_PORT`); the last three behind the same Host / Origin allow-lists as `/mcp`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use exai_core::app::App;
use exai_core::config::Secret;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ExaiHandler;
use crate::conn_limit::{ConnLimits, LimitedListener};
use crate::inbound::{self, Decoded, Rejection};
use crate::origin::{self, AllowLists};
use crate::prometheus::Exporter;
use crate::routes::{admin, dashboard, health, metrics};
use crate::session_store::SessionRecords;
use crate::shared_sessions::SharedSessions;
use crate::tasks::Tasks;

/// The whole daemon app, ready to serve (or to drive with `oneshot` in tests); `exporter` serves `/metrics`.
pub fn router(app: Arc<App>, exporter: Exporter, shutdown: CancellationToken) -> Router {
    let records = session_records(&app);
    let sessions = Arc::new(SharedSessions::new(Arc::clone(&records)));
    app_router(app, exporter, shutdown, sessions, records)
}

/// The legacy sessions' records in the app's store, each call bounded by `timeouts.database_secs`.
fn session_records(app: &App) -> Arc<SessionRecords> {
    Arc::new(SessionRecords::new(
        Arc::clone(&app.store),
        app.config.timeouts.database,
    ))
}

/// The daemon app with `sessions` holding its legacy (2025-era) MCP sessions, whose records are `records` (in the
/// store, so that any replica sharing it, or this one after a restart, can carry a session on).
fn app_router(
    app: Arc<App>,
    exporter: Exporter,
    shutdown: CancellationToken,
    sessions: Arc<SharedSessions>,
    records: Arc<SessionRecords>,
) -> Router {
    let http = &app.config.http;
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(http.legacy_sessions)
        .with_json_response(http.json_response)
        .with_max_request_body_bytes(app.config.limits.max_request_bytes)
        .with_allowed_hosts(http.allowed_hosts.clone())
        .with_allowed_origins(http.allowed_origins.clone())
        .with_cancellation_token(shutdown.child_token());
    mcp_config.session_store = Some(Arc::clone(&records) as _);
    if http.allowed_hosts.is_empty() {
        mcp_config = mcp_config.disable_allowed_hosts();
    }
    if !http.allowed_origins.is_empty() {
        mcp_config = mcp_config.enforce_origin_validation();
    }
    let handler_app = Arc::clone(&app);
    // One task store for every session and stateless request; its tasks stop on shutdown.
    let tasks = Tasks::shared(shutdown.child_token(), Arc::clone(&app.store));
    let catalog = ExaiHandler::catalog(&app);
    let mcp = StreamableHttpService::new(
        move || {
            Ok(ExaiHandler::with_catalog(
                Arc::clone(&handler_app),
                Arc::clone(&catalog),
                tasks.clone(),
            ))
        },
        sessions,
        mcp_config,
    );
    let guard = Guard {
        limit: app.config.limits.max_request_bytes,
        body_timeout: app.config.limits.body_read_timeout,
        records,
    };
    let mut mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(Arc::new(guard), guard_mcp_request));
    let mut admin_routes = Router::new()
        .route("/admin/reset-circuits", post(admin::reset_circuits))
        .with_state(Arc::clone(&app));
    if let Some(token) = http.token.clone() {
        let token = Arc::new(token);
        mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(Arc::clone(&token), require_bearer));
        admin_routes = admin_routes.layer(middleware::from_fn_with_state(Arc::clone(&token), require_bearer));
    }
    // Outermost: a foreign Host or Origin is refused before the token is looked at.
    let lists = Arc::new(AllowLists::from_config(http));
    admin_routes = admin_routes.layer(middleware::from_fn_with_state(lists, origin::require));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(Arc::clone(&app))
        .merge(mcp_routes)
        .merge(admin_routes)
        .merge(monitoring_router(app, exporter, shutdown))
}

/// `/metrics` and the dashboard, each behind `EXAI_HTTP_TOKEN` when it is set and the `Host` / `Origin` allow-lists
/// (`crate::origin`): part of the daemon's app, and all
/// that `MONITORING_DASHBOARD_PORT` serves.
pub fn monitoring_router(app: Arc<App>, exporter: Exporter, shutdown: CancellationToken) -> Router {
    let mut metrics_routes = Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(exporter.clone());
    if let Some(token) = app.config.http.token.clone() {
        metrics_routes = metrics_routes.layer(middleware::from_fn_with_state(Arc::new(token), require_bearer));
    }
    let lists = Arc::new(AllowLists::from_config(&app.config.http));
    metrics_routes = metrics_routes.layer(middleware::from_fn_with_state(lists, origin::require));
    metrics_routes.merge(dashboard::router(app, exporter, shutdown))
}

/// Rejects a request without `Authorization: Bearer <http.token>` before anything runs.
async fn require_bearer(State(token): State<Arc<Secret>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    match presented {
        Some(p) if constant_time_eq(p.trim().as_bytes(), token.expose().as_bytes()) => next.run(request).await,
        other => {
            let message = if other.is_some() {
                "invalid bearer token"
            } else {
                "missing bearer token: send `Authorization: Bearer <EXAI_HTTP_TOKEN>`"
            };
            let body = json!({ "error": "unauthorized", "message": message });
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"exai\"")],
                axum::Json(body),
            )
                .into_response()
        }
    }
}

/// What [`guard_mcp_request`] needs: the body limit, and the session records to learn whether a DELETE removed one.
struct Guard {
    limit: usize,
    /// `limits.body_read_timeout_secs`: a body trickled slower than this holds no connection longer.
    body_timeout: std::time::Duration,
    records: Arc<SessionRecords>,
}

/// Answers bad POST bodies before they reach rmcp, whose replies are plain text with odd statuses (415 for
/// malformed JSON): an oversize body gets 413 and bad JSON-RPC gets 400, each with a JSON-RPC error body
/// naming the problem. Also answers a successful session DELETE with 204 rather than rmcp's 202, which
/// the official Python SDK reports as a failed termination, and with 503 when the session's shared record could
/// not be removed (rmcp would say 202 although other replicas could still serve the session; a retry works).
async fn guard_mcp_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let limit = guard.limit;
    if request.method() == Method::DELETE {
        let session = request
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut response = next.run(request).await;
        if response.status() == StatusCode::ACCEPTED {
            if session.is_some_and(|id| guard.records.take_undeleted(&id)) {
                let message = "the session was closed on this replica but its shared record could not be removed \
                               (the store failed), so other replicas may still serve it: retry the DELETE";
                let body = json!({ "error": "session_store_unavailable", "message": message });
                return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            }
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(guard.body_timeout, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        let secs = guard.body_timeout.as_secs();
        let rejection = Rejection::slow_body(secs);
        tracing::info!(secs, "request body not received in time");
        return jsonrpc_error(StatusCode::REQUEST_TIMEOUT, &rejection);
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) => {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            return if too_large {
                jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, &Rejection::too_large(limit))
            } else {
                let message = format!("cannot read request body: {e}");
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "error": "bad_request", "message": message })),
                )
                    .into_response()
            };
        }
    };
    if let Decoded::Reject(rejection) = inbound::decode(&bytes) {
        tracing::info!(code = rejection.code, message = %rejection.message, "rejected HTTP message");
        return jsonrpc_error(StatusCode::BAD_REQUEST, &rejection);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn jsonrpc_error(status: StatusCode, rejection: &Rejection) -> Response {
    (status, axum::Json(rejection.to_json())).into_response()
}

/// Compares without an early exit, so the time taken says nothing about how much of a guess matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Binds `addr` (port 0 picks a free port) and returns the listener and the bound address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves the daemon app on `listener` until `shutdown` fires, then drains gracefully.
/// Connections past `EXAI_MAX_CONNECTIONS` / `EXAI_MAX_CONNECTIONS_PER_IP` get a 503 and are closed.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    exporter: Exporter,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let l = &app.config.limits;
    let limits = ConnLimits::new(
        l.max_connections.get() as usize,
        l.max_connections_per_ip.get() as usize,
    );
    let records = session_records(&app);
    let sessions = Arc::new(SharedSessions::new(Arc::clone(&records)));
    tokio::spawn(count_sessions(Arc::clone(&sessions), shutdown.clone()));
    let header_timeout = app.config.limits.header_read_timeout;
    let router = app_router(app, exporter, shutdown.clone(), sessions, records);
    let listener = LimitedListener::new(listener, limits, header_timeout);
    crate::serve::serve(listener, router, header_timeout, |_, _| (), shutdown).await;
    Ok(())
}

/// How often the legacy session count is sampled.
const SESSIONS_SAMPLED_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps `exai_open_sessions{transport="http"}` at the number of legacy MCP sessions this replica holds in memory
/// (rmcp creates and expires them itself, so they are counted by looking) until `shutdown` fires.
async fn count_sessions(sessions: Arc<SharedSessions>, shutdown: CancellationToken) {
    loop {
        let open = sessions.open().await;
        ::metrics::gauge!("exai_open_sessions", "transport" => "http").set(open as f64);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SESSIONS_SAMPLED_EVERY) => {}
        }
    }
}

/// Serves only `/metrics` and the dashboard on `listener` (the `MONITORING_DASHBOARD_PORT` listener) until
/// `shutdown` fires. Its connections have limits of their own, as large as the MCP listener's
/// (`EXAI_MAX_CONNECTIONS` / `EXAI_MAX_CONNECTIONS_PER_IP`, counted under `transport="monitoring"`), and the same
/// header-read timeout.
pub async fn serve_monitoring(
    listener: TcpListener,
    app: Arc<App>,
    exporter: Exporter,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let l = &app.config.limits;
    let limits = ConnLimits::for_transport(
        l.max_connections.get() as usize,
        l.max_connections_per_ip.get() as usize,
        "monitoring",
    );
    let header_timeout = l.header_read_timeout;
    let router = monitoring_router(app, exporter, shutdown.clone());
    let listener = LimitedListener::new(listener, limits, header_timeout);
    crate::serve::serve(listener, router, header_timeout, |_, _| (), shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exai_core::config::{Config, MapEnv, ToolSelection};
    use exai_core::tools::{Profile, Registry};

    /// The daemon on a port of its own with its SQLite store in `dir`; returns the `/mcp` URL and the store.
    async fn daemon(dir: &std::path::Path) -> (String, Arc<exai_store::SqliteStore>, CancellationToken) {
        let store = Arc::new(exai_store::SqliteStore::open(dir).await.unwrap());
        let config = Config::load(&MapEnv::default(), None, &[]).unwrap();
        let tools = ToolSelection {
            profile: Profile::Full,
            enabled: vec![],
            disabled: vec![],
        };
        let app = App::new(config, Arc::clone(&store) as _, Registry::select(&tools, false));
        let (listener, addr) = bind(([127, 0, 0, 1], 0).into()).await.unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, app, Exporter::default(), shutdown.clone()));
        (format!("http://{addr}/mcp"), store, shutdown)
    }

    #[tokio::test]
    async fn a_delete_that_cannot_remove_the_session_record_fails_and_is_counted() {
        // reqwest's client below needs the process-wide rustls provider (exai's binary installs ring at start).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let recorder = crate::prometheus::builder().unwrap().build_recorder();
        let metrics = recorder.handle();
        let _local = ::metrics::set_default_local_recorder(&recorder);
        let dir = tempfile::tempdir().unwrap();
        let (url, store, shutdown) = daemon(dir.path()).await;
        let client = reqwest::Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
            "capabilities": {}, "clientInfo": {"name": "unit", "version": "1"}}});
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init.to_string())
            .send()
            .await
            .unwrap();
        let session = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let delete = || {
            client
                .delete(&url)
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", "2025-11-25")
                .send()
        };

        store.close().await;
        let failed = delete().await.unwrap();
        assert_eq!(
            failed.status(),
            503,
            "the record is still there: the DELETE must not claim success"
        );
        let body: serde_json::Value = failed.json().await.unwrap();
        assert_eq!(body["error"], "session_store_unavailable", "{body}");
        let scraped = metrics.render();
        assert!(
            scraped.contains("exai_session_store_errors_total{op=\"delete\"} 1"),
            "{scraped}"
        );
        // A retry fails the same way while the store is down (closing an unknown session here is a no-op, so a retry
        // once the store answers removes the record and gets 204).
        assert_eq!(delete().await.unwrap().status(), 503, "the store is still closed");
        shutdown.cancel();
    }

    #[test]
    fn constant_time_eq_matches_only_equal_inputs() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}

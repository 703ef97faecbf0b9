//! The daemon's HTTP app: MCP Streamable HTTP at `/mcp` (rmcp's service, with Host/Origin allow-lists,
//! legacy sessions from `http.*` config), a guard that gives bad bodies JSON-RPC errors, optional bearer
//! auth, the health routes and `/metrics`.

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
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ExaiHandler;
use crate::conn_limit::{ConnLimits, LimitedListener};
use crate::inbound::{self, Decoded, Rejection};
use crate::prometheus::Exporter;
use crate::routes::{admin, health, metrics};
use crate::tasks::Tasks;

/// The whole daemon app, ready to serve (or to drive with `oneshot` in tests); `exporter` serves `/metrics`.
pub fn router(app: Arc<App>, exporter: Exporter, shutdown: CancellationToken) -> Router {
    let http = &app.config.http;
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(http.legacy_sessions)
        .with_json_response(http.json_response)
        .with_max_request_body_bytes(app.config.limits.max_request_bytes)
        .with_allowed_hosts(http.allowed_hosts.clone())
        .with_allowed_origins(http.allowed_origins.clone())
        .with_cancellation_token(shutdown.child_token());
    if http.allowed_hosts.is_empty() {
        mcp_config = mcp_config.disable_allowed_hosts();
    }
    if !http.allowed_origins.is_empty() {
        mcp_config = mcp_config.enforce_origin_validation();
    }
    let handler_app = Arc::clone(&app);
    // One task store for every session and stateless request; its tasks stop on shutdown.
    let tasks = Tasks::new(shutdown.child_token());
    let mcp = StreamableHttpService::new(
        move || Ok(ExaiHandler::with_tasks(Arc::clone(&handler_app), tasks.clone())),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    );
    let limit = app.config.limits.max_request_bytes;
    let mut mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(limit, guard_mcp_request));
    let mut admin_routes = Router::new()
        .route("/admin/reset-circuits", post(admin::reset_circuits))
        .with_state(Arc::clone(&app));
    let mut metrics_routes = Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(exporter);
    if let Some(token) = http.token.clone() {
        let token = Arc::new(token);
        mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(Arc::clone(&token), require_bearer));
        admin_routes = admin_routes.layer(middleware::from_fn_with_state(Arc::clone(&token), require_bearer));
        metrics_routes = metrics_routes.layer(middleware::from_fn_with_state(token, require_bearer));
    }
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(Arc::clone(&app))
        .merge(mcp_routes)
        .merge(admin_routes)
        .merge(metrics_routes)
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

/// Answers bad POST bodies before they reach rmcp, whose replies are plain text with odd statuses (415 for
/// malformed JSON): an oversize body gets 413 and bad JSON-RPC gets 400, each with a JSON-RPC error body
/// naming the problem. Also answers a successful session DELETE with 204 rather than rmcp's 202, which
/// the official Python SDK reports as a failed termination.
async fn guard_mcp_request(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if request.method() == Method::DELETE {
        let mut response = next.run(request).await;
        if response.status() == StatusCode::ACCEPTED {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
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
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
    let router = router(app, exporter, shutdown.clone());
    axum::serve(LimitedListener::new(listener, limits), router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_matches_only_equal_inputs() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}

//! The WebSocket daemon endpoint (`exai serve`, `EXAI_WS_HOST`:`EXAI_WS_PORT`): the EX-AI daemon protocol and MCP
//! JSON-RPC on one socket, chosen by the first frame. The protocol is documented in `docs/ws-protocol.md`.
//! Every upgrade passes the `Host` / `Origin` allow-lists (`crate::origin`) and every connection presents the
//! daemon's token: `EXAI_WS_TOKEN`, else the one in `<data_dir>/ws-token` (`exai_core::ws_token`).
//!
//! - `listener`: connection limits (refusal: upgrade, then close 1008).
//! - `frames`: the daemon protocol's frames. `conn`: one daemon-protocol connection. `calls`: one `call_tool`.
//! - `session`: sessions that survive reconnects, on this replica or another (`shared`: their records in the
//!   store). `writer`: each connection's one writer task.
//! - `mcp`: MCP JSON-RPC over the socket.

mod calls;
mod conn;
mod frames;
mod listener;
mod mcp;
mod outbox;
mod session;
mod shared;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::ws::{WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use exai_core::app::App;
use exai_core::config::Secret;
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::catalog;
use crate::conn_limit::ConnLimits;
use crate::http::constant_time_eq;
use crate::origin::AllowLists;
use listener::{Admission, WsListener};
use session::{SessionCaps, Sessions};

/// What every WebSocket connection of one daemon shares.
pub(crate) struct WsState {
    app: Arc<App>,
    sessions: Arc<Sessions>,
    shutdown: CancellationToken,
    /// `list_tools_res`'s `tools`: the enabled tools' MCP definitions.
    tools: Value,
    conns: AtomicU64,
    /// What every client must present: `EXAI_WS_TOKEN`, else the daemon's token file.
    token: Secret,
    /// The `Host` / `Origin` allow-lists every upgrade request passes first.
    lists: AllowLists,
}

impl WsState {
    fn next_conn(&self) -> u64 {
        self.conns.fetch_add(1, Ordering::Relaxed)
    }

    /// A new connection's outbound queue, bounded by `EXAI_WS_MAX_QUEUED_FRAMES` / `EXAI_WS_MAX_QUEUED_BYTES`.
    fn outbox(&self) -> (outbox::Outbox, outbox::Inbox) {
        outbox::outbox(queue_caps(&self.app.config.ws))
    }

    /// Whether `presented` is the daemon's token (nothing presented never is).
    fn token_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| constant_time_eq(p.as_bytes(), self.token.expose().as_bytes()))
    }
}

/// Serves WebSocket clients on `listener` until `shutdown` fires (each connection is then closed with 1001); every
/// client must present `token` (`EXAI_WS_TOKEN`, else [`exai_core::ws_token::load_or_create`]'s).
/// Connections count against `EXAI_MAX_CONNECTIONS` / `EXAI_MAX_CONNECTIONS_PER_IP`, separately from HTTP.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    token: Secret,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let l = &app.config.limits;
    let limits = ConnLimits::for_transport(
        l.max_connections.get() as usize,
        l.max_connections_per_ip.get() as usize,
        "ws",
    );
    let ws = &app.config.ws;
    let t = &app.config.timeouts;
    let longest_call = [t.tier1, t.simple_tool, t.files_tool, t.workflow_tool]
        .into_iter()
        .max()
        .unwrap_or_default();
    let caps = SessionCaps {
        max: ws.max_sessions.get() as usize,
        max_detached_per_client: ws.max_detached_sessions_per_client.get() as usize,
        kept: queue_caps(ws),
    };
    let sessions = Sessions::new(
        caps,
        ws.session_grace,
        longest_call + shared::POLL_MARGIN,
        Arc::clone(&app.store),
        shutdown.child_token(),
    );
    let tools = serde_json::to_value(catalog::definitions(&app.tools)).unwrap_or_default();
    let lists = AllowLists::from_config(&app.config.http);
    let state = Arc::new(WsState {
        app,
        token,
        lists,
        sessions,
        shutdown: shutdown.clone(),
        tools,
        conns: AtomicU64::new(0),
    });
    let header_timeout = state.app.config.limits.header_read_timeout;
    let router = Router::new().fallback(upgrade).with_state(state);
    let listener = WsListener::new(listener, limits, header_timeout);
    crate::serve::serve(listener, router, header_timeout, Admission::of, shutdown).await;
    Ok(())
}

/// Upgrades any path whose request passes the `Host` / `Origin` allow-lists (else 403, before any upgrade); a
/// plain HTTP request gets 426 saying what this port is.
async fn upgrade(
    State(state): State<Arc<WsState>>,
    ConnectInfo(admission): ConnectInfo<Admission>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(refused) = state.lists.check(&headers) {
        tracing::info!(client = %admission.addr, reason = %refused.0, "websocket upgrade refused by the allow-lists");
        return refused.into_response();
    }
    let Ok(ws) = ws else {
        let message = "this is exai's WebSocket endpoint: connect with a WebSocket client (see docs/ws-protocol.md)";
        return (StatusCode::UPGRADE_REQUIRED, message).into_response();
    };
    // MCP JSON-RPC clients have no `hello`: they present the token on the upgrade request.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|v| v.trim().to_owned())
        .or_else(|| {
            // Percent-decoded, as a client URL-encodes a token with `+`, `/` or `=` (no `+` as space: base64 has `+`).
            uri.query()?.split('&').find_map(|kv| {
                kv.strip_prefix("token=")
                    .map(|v| crate::routes::dashboard::auth::decode(v).unwrap_or_else(|| v.to_owned()))
            })
        });
    let bearer_ok = state.token_ok(bearer.as_deref());
    let max = state.app.config.ws.max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| handle(socket, state, admission, bearer_ok))
}

/// Most a connection may send before its first frame is accepted (`hello`, or a JSON-RPC message with the token on
/// the upgrade): an unauthenticated client cannot make the daemon buffer a large frame (close 1009).
pub(crate) const MAX_FIRST_FRAME_BYTES: usize = 64 * 1024;

/// Picks the protocol from the first frame (within the hello timeout, at most [`MAX_FIRST_FRAME_BYTES`]) and
/// serves it.
async fn handle(mut socket: WebSocket, state: Arc<WsState>, admission: Admission, bearer_ok: bool) {
    use axum::extract::ws::Message;
    if let Some(why) = admission.refused {
        let _ = futures::SinkExt::send(&mut socket, writer::close_message(1008, &why)).await;
        return;
    }
    admission.read_cap.limit(MAX_FIRST_FRAME_BYTES);
    let hello_timeout = state.app.config.ws.hello_timeout;
    let first = tokio::time::timeout(hello_timeout, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Binary(_))) => {
                    return Err(Some((
                        4001,
                        "expected a JSON text frame first (hello or JSON-RPC)".to_owned(),
                    )));
                }
                Some(Ok(Message::Close(_))) | None => return Err(None),
                Some(Err(e)) => return Err(conn::read_error(&e, state.app.config.ws.max_frame_bytes)),
            }
        }
    })
    .await;
    let first = match first {
        Err(_) => {
            let secs = hello_timeout.as_secs();
            let reason = format!("no hello within {secs} s (EXAI_WS_HELLO_TIMEOUT_SECS)");
            let _ = futures::SinkExt::send(&mut socket, writer::close_message(4002, &reason)).await;
            return;
        }
        Ok(Err(close)) => {
            if let Some((code, reason)) = close {
                let _ = futures::SinkExt::send(&mut socket, writer::close_message(code, &reason)).await;
            }
            return;
        }
        Ok(Ok(text)) => text,
    };
    // Read by a scan of the outermost object, not a parse: a frame nested past the JSON limits still reaches its
    // protocol's decoder, which refuses it by name (and a leading BOM does not hide `jsonrpc`).
    let is_jsonrpc = !matches!(
        crate::json_limits::top_field(first.as_bytes(), "jsonrpc"),
        crate::json_limits::TopField::Absent
    );
    if is_jsonrpc {
        if !bearer_ok {
            let reason = "unauthorized: send the daemon's token (EXAI_WS_TOKEN, else its `ws-token` file) as \
                          `Authorization: Bearer` or `?token=`";
            let _ = futures::SinkExt::send(&mut socket, writer::close_message(4003, reason)).await;
            return;
        }
        admission.read_cap.lift();
        return mcp::serve(socket, first, state).await;
    }
    match frames::parse(&first) {
        Ok(frames::Inbound::Hello { token, session_id }) => {
            // `run` checks the token before it reads another frame.
            admission.read_cap.lift();
            conn::run(socket, token, session_id, state, admission.addr).await;
        }
        _ => {
            let reason = "expected a hello frame first: {\"op\":\"hello\",\"token\":…}";
            let _ = futures::SinkExt::send(&mut socket, writer::close_message(4001, reason)).await;
        }
    }
}

fn queue_caps(ws: &exai_core::config::WsConfig) -> outbox::Caps {
    outbox::Caps {
        frames: ws.max_queued_frames.get() as usize,
        bytes: ws.max_queued_bytes,
    }
}

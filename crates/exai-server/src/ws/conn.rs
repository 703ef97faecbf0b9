//! One daemon-protocol connection after its `hello`: authenticates, attaches a session, then reads frames and
//! keeps the connection alive (pings, pong and idle timeouts) while its calls run in their own tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use tungstenite::error::CapacityError;

use super::frames::{self, Inbound};
use super::outbox::Outbox;
use super::session::{Conn, Out, Session};
use super::{WsState, calls, shared, writer};
use crate::conn_io::OverReadCap;

/// Serves one connection whose first frame was `hello`.
pub(super) async fn run(
    socket: WebSocket,
    token: Option<String>,
    session_id: Option<String>,
    state: Arc<WsState>,
    peer: SocketAddr,
) {
    let (sink, stream) = socket.split();
    let (tx, rx) = state.outbox();
    let write_timeout = state.app.config.ws.write_timeout;
    let conn = state.next_conn();
    let dead = CancellationToken::new();
    let kick = CancellationToken::new();
    let Some(owner) = token.as_deref().filter(|t| state.token_ok(Some(t))).map(shared::owner) else {
        tracing::info!(client = %peer, "websocket hello with a wrong token");
        let message = "wrong or missing token: send the daemon's EXAI_WS_TOKEN (or the token in its data \
                       directory's `ws-token` file) in `hello`";
        let _ = tx.send(Out::live(frames::hello_refused("unauthorized", message)));
        let _ = tx.send(Out::Close {
            code: 4003,
            reason: "unauthorized".into(),
        });
        drop(tx);
        writer::run(sink, rx, None, dead, write_timeout).await;
        return;
    };
    let session = match state
        .sessions
        .attach(
            session_id.as_deref(),
            &owner,
            Conn {
                id: conn,
                client: peer.ip(),
                tx: tx.clone(),
                kick: kick.clone(),
            },
        )
        .await
    {
        Ok(session) => session,
        Err(why) => {
            tracing::warn!(client = %peer, %why, "websocket session refused");
            let _ = tx.send(Out::live(frames::hello_refused("too_many_sessions", &why)));
            let _ = tx.send(Out::Close {
                code: 1008,
                reason: why,
            });
            drop(tx);
            writer::run(sink, rx, None, dead, write_timeout).await;
            return;
        }
    };
    tracing::debug!(client = %peer, session = %session.tag(), "websocket session attached");
    let writer = tokio::spawn(writer::run(
        sink,
        rx,
        Some((Arc::clone(&session), conn)),
        dead.clone(),
        write_timeout,
    ));
    let close = read(stream, &tx, &session, &state, &kick, &dead).await;
    if let Some((code, reason)) = close {
        tracing::debug!(client = %peer, code, %reason, "closing websocket");
        let _ = tx.send(Out::Close { code, reason });
    }
    state.sessions.detach(&session, conn);
    drop(tx);
    if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
        tracing::debug!(client = %peer, "websocket writer did not finish in 5 s");
    }
}

/// Reads frames until the connection ends; `Some((code, reason))` when the server should close it.
async fn read(
    mut stream: futures::stream::SplitStream<WebSocket>,
    tx: &Outbox,
    session: &Arc<Session>,
    state: &Arc<WsState>,
    kick: &CancellationToken,
    dead: &CancellationToken,
) -> Option<(u16, String)> {
    let ws = &state.app.config.ws;
    let mut last_active = Instant::now();
    let mut next_ping = Instant::now() + ws.ping_interval;
    let mut awaiting_pong: Option<Instant> = None;
    loop {
        let idle_at = last_active + ws.idle_timeout;
        let pong_by = awaiting_pong.map(|sent| sent + ws.ping_timeout);
        let wake = [Some(next_ping), Some(idle_at), pong_by].into_iter().flatten().min()?;
        tokio::select! {
            message = stream.next() => {
                let message = match message {
                    None => return None,
                    Some(Err(e)) => return read_error(&e, ws.max_frame_bytes),
                    Some(Ok(message)) => message,
                };
                awaiting_pong = None;
                match message {
                    Message::Text(text) => {
                        if handle(text.as_str(), tx, session, state) {
                            last_active = Instant::now();
                        }
                        // A client that does not read is being closed (4007): answer none of its other requests.
                        if tx.is_full() {
                            return None;
                        }
                        // A flood of buffered frames must not keep the writer (and others) off this worker.
                        tokio::task::consume_budget().await;
                    }
                    Message::Binary(_) => {
                        last_active = Instant::now();
                        let message = "binary frames are not part of the protocol; send JSON text frames";
                        let _ = tx.send(Out::live(frames::error(None, "VALIDATION_ERROR", message)));
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(_) => return None,
                }
            }
            () = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if pong_by.is_some_and(|by| now >= by) {
                    let secs = ws.ping_timeout.as_secs();
                    return Some((4004, format!("no pong for {secs} s (EXAI_WS_PING_TIMEOUT_SECS)")));
                }
                if now >= idle_at {
                    if session.running() > 0 {
                        last_active = now;
                    } else {
                        let secs = ws.idle_timeout.as_secs();
                        return Some((1000, format!("idle for {secs} s (EXAI_WS_IDLE_TIMEOUT_SECS)")));
                    }
                }
                if now >= next_ping {
                    let _ = tx.send(Out::Ping);
                    awaiting_pong.get_or_insert(now);
                    next_ping = now + ws.ping_interval;
                }
            }
            () = kick.cancelled() => return Some((4005, "the session was resumed by another connection".into())),
            () = dead.cancelled() => return None,
            () = state.shutdown.cancelled() => return Some((1001, "exai is shutting down".into())),
        }
    }
}

/// The close for a failed read: 1009 for a frame over the size limit (`EXAI_WS_MAX_FRAME_BYTES`) or a first frame
/// over [`super::MAX_FIRST_FRAME_BYTES`], else none (the socket is gone). Told apart by the error's type.
pub(super) fn read_error(e: &axum::Error, max_frame_bytes: usize) -> Option<(u16, String)> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        match err.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, .. })) => {
                let max = max_frame_bytes;
                tracing::info!(size, max, "websocket frame over the size limit");
                return Some((1009, format!("frame over {max} bytes (EXAI_WS_MAX_FRAME_BYTES)")));
            }
            Some(tungstenite::Error::Io(io)) => {
                if let Some(over) = io.get_ref().and_then(|i| i.downcast_ref::<OverReadCap>()) {
                    tracing::info!(limit = over.limit, "websocket first frame over the size limit");
                    let reason = format!(
                        "first frame over {} bytes: start with a small hello or JSON-RPC message",
                        over.limit
                    );
                    return Some((1009, reason));
                }
            }
            _ => {}
        }
        cause = err.source();
    }
    tracing::debug!(error = %e, "websocket read failed");
    None
}

/// Acts on one text frame; `false` when it was only a keepalive (`ping` / `pong`), which does not count as activity.
fn handle(text: &str, tx: &Outbox, session: &Arc<Session>, state: &Arc<WsState>) -> bool {
    let reply = match frames::parse(text) {
        Err(bad) => frames::error(None, bad.code, &bad.message),
        Ok(Inbound::Hello { .. }) => frames::error(None, "VALIDATION_ERROR", "`hello` was already received"),
        Ok(Inbound::ListTools { request_id }) => frames::list_tools_res(request_id.as_ref(), &state.tools),
        Ok(Inbound::Ping { request_id }) => {
            let _ = tx.send(Out::live(frames::pong(request_id.as_ref())));
            return false;
        }
        Ok(Inbound::Pong) => return false,
        Ok(Inbound::Cancel { request_id }) => {
            let key = request_id.to_string();
            let found = session.cancel_call(&key);
            if !found {
                session.cancel_elsewhere(&key);
            }
            tracing::debug!(%request_id, found, "websocket cancel");
            return true;
        }
        Ok(Inbound::CallTool {
            request_id,
            name,
            arguments,
        }) => {
            calls::start(&state.app, session, request_id, name, arguments);
            return true;
        }
    };
    let _ = tx.send(Out::live(reply));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversize_frame_is_told_by_its_error_type_not_its_text() {
        let too_long = tungstenite::Error::Capacity(CapacityError::MessageTooLong { size: 9, max_size: 8 });
        let (code, reason) = read_error(&axum::Error::new(too_long), 8).unwrap();
        assert_eq!(code, 1009);
        assert!(reason.contains("EXAI_WS_MAX_FRAME_BYTES"), "{reason}");

        let first = tungstenite::Error::Io(std::io::Error::other(OverReadCap { limit: 64 }));
        let (code, reason) = read_error(&axum::Error::new(first), 8).unwrap();
        assert_eq!(code, 1009);
        assert!(reason.contains("first frame over 64 bytes"), "{reason}");

        // Texts that merely look like a size error are a plain failed read.
        for text in ["file name too long", "Space limit exceeded", "too big"] {
            let io = tungstenite::Error::Io(std::io::Error::other(text));
            assert_eq!(read_error(&axum::Error::new(io), 8), None, "{text}");
        }
    }
}

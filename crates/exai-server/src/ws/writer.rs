//! A connection's one writer task: it owns the socket's sending half and is fed by a bounded queue (`outbox`), so
//! readers and tool calls never wait on the socket. Kept frames it could not write go back to their session.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio_util::sync::CancellationToken;

use super::outbox::{Inbox, NOT_READING};
use super::session::{Kind, Out, Session};

/// A close frame; the reason is cut to the protocol's 123 bytes.
pub(super) fn close_message(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// Writes until every sender is gone. After a failed or timed-out write (`EXAI_WS_WRITE_TIMEOUT_SECS`: a client
/// with a zero TCP window cannot pin the writer), a close, or a full queue (closed with [`NOT_READING`]), the rest
/// is drained: kept frames go back to `owner`'s session, and `dead` tells the reader the connection is finished.
pub(super) async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut inbox: Inbox,
    owner: Option<(Arc<Session>, u64)>,
    dead: CancellationToken,
    write_timeout: Duration,
) {
    let mut open = true;
    let full = inbox.full();
    loop {
        let out = tokio::select! {
            biased;
            () = full.cancelled(), if open => {
                open = false;
                not_reading(&mut sink, &mut inbox, write_timeout).await;
                dead.cancel();
                continue;
            }
            out = inbox.recv() => match out {
                Some(out) => out,
                None => break,
            },
        };
        let (message, kept) = match out {
            Out::Text { text, kind } if !open => {
                rebuffer(&owner, text, kind);
                continue;
            }
            Out::Text { text, kind } => {
                let kept = (kind != Kind::Live).then(|| (text.clone(), kind));
                (Message::Text(text.into()), kept)
            }
            Out::Ping if open => (Message::Ping(Default::default()), None),
            Out::Close { code, reason } if open => {
                open = false;
                let _ = tokio::time::timeout(write_timeout, sink.send(close_message(code, &reason))).await;
                dead.cancel();
                continue;
            }
            Out::Ping | Out::Close { .. } => continue,
        };
        let failed = tokio::select! {
            sent = tokio::time::timeout(write_timeout, sink.send(message)) => match sent {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("websocket write failed: {e}")),
                Err(_) => {
                    metrics::counter!("exai_ws_write_timeouts_total").increment(1);
                    Some(format!("websocket write blocked for {} s (EXAI_WS_WRITE_TIMEOUT_SECS)",
                        write_timeout.as_secs()))
                }
            },
            // Stuck on a client that does not read while its queue filled: the frame counts as not delivered.
            () = full.cancelled(), if open => Some("websocket outbound queue full".to_owned()),
        };
        if let Some(why) = failed {
            tracing::debug!("{why}");
            if let Some((text, kind)) = kept {
                rebuffer(&owner, text, kind);
            }
            if !full.is_cancelled() {
                open = false;
                dead.cancel();
            }
        }
    }
    let _ = tokio::time::timeout(write_timeout, sink.close()).await;
}

/// Closes a connection whose queue is full: no more frames are taken (senders keep theirs, a session keeps its
/// results), and the close goes out as soon as the client reads again, within the write timeout.
async fn not_reading(sink: &mut SplitSink<WebSocket, Message>, inbox: &mut Inbox, write_timeout: Duration) {
    inbox.close();
    let reason = inbox.caps().reason();
    tracing::info!(%reason, "closing a websocket client that does not read");
    metrics::counter!("exai_ws_closed_not_reading_total").increment(1);
    let _ = tokio::time::timeout(write_timeout, sink.send(close_message(NOT_READING, &reason))).await;
}

fn rebuffer(owner: &Option<(Arc<Session>, u64)>, text: String, kind: Kind) {
    if let Some((session, conn)) = owner
        && kind != Kind::Live
    {
        session.rebuffer(*conn, text, kind);
    }
}

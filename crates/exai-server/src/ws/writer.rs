//! A connection's one writer task: it owns the socket's sending half and is fed by a channel, so readers and tool
//! calls never wait on the socket. Kept frames it could not write go back to their session.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

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

/// Writes until every sender is gone. After a failed write or a close, the rest is drained: kept frames go back
/// to `owner`'s session, and `dead` tells the reader the connection is finished.
pub(super) async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: UnboundedReceiver<Out>,
    owner: Option<(Arc<Session>, u64)>,
    dead: CancellationToken,
) {
    let mut open = true;
    while let Some(out) = rx.recv().await {
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
                let _ = sink.send(close_message(code, &reason)).await;
                dead.cancel();
                continue;
            }
            Out::Ping | Out::Close { .. } => continue,
        };
        if let Err(e) = sink.send(message).await {
            tracing::debug!(error = %e, "websocket write failed");
            open = false;
            dead.cancel();
            if let Some((text, kind)) = kept {
                rebuffer(&owner, text, kind);
            }
        }
    }
    let _ = sink.close().await;
}

fn rebuffer(owner: &Option<(Arc<Session>, u64)>, text: String, kind: Kind) {
    if let Some((session, conn)) = owner
        && kind != Kind::Live
    {
        session.rebuffer(*conn, text, kind);
    }
}

//! MCP JSON-RPC over the WebSocket (chosen when the first frame has `jsonrpc`): one JSON-RPC message per text
//! frame, served by the same [`ExaiHandler`] as stdio and HTTP, bad input answered as on stdio (`inbound::decode`).

use std::future::Future;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use futures::StreamExt;
use rmcp::RoleServer;
use rmcp::ServiceExt;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use super::session::Out;
use super::{WsState, conn, writer};
use crate::ExaiHandler;
use crate::inbound::{self, Decoded};

/// Serves MCP on `socket`, starting with the already-read `first` frame.
pub(super) async fn serve(socket: WebSocket, first: String, state: Arc<WsState>) {
    let (sink, mut stream) = socket.split();
    let (out_tx, out_rx) = state.outbox();
    let (msg_tx, msg_rx) = mpsc::channel::<ClientJsonRpcMessage>(256);
    let dead = CancellationToken::new();
    let write_timeout = state.app.config.ws.write_timeout;
    let writer = tokio::spawn(writer::run(sink, out_rx, None, dead.clone(), write_timeout));
    let transport = WsTransport {
        incoming: msg_rx,
        outgoing: out_tx.clone(),
    };
    let handler = ExaiHandler::new(Arc::clone(&state.app));
    let stop = state.shutdown.child_token();
    let service_stop = stop.clone();
    let service = tokio::spawn(async move {
        match handler.serve_with_ct(transport, service_stop).await {
            Ok(service) => {
                let _ = service.waiting().await;
            }
            Err(e) => tracing::debug!(error = %e, "MCP over websocket ended before initialization"),
        }
    });
    let mut close = None;
    if route(first.as_bytes(), &msg_tx, &out_tx).await {
        let ping_interval = state.app.config.ws.ping_interval;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        close = loop {
            tokio::select! {
                message = stream.next() => match message {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Err(e)) => break conn::read_error(&e, state.app.config.ws.max_frame_bytes),
                    Some(Ok(Message::Text(text))) => {
                        if !route(text.as_bytes(), &msg_tx, &out_tx).await {
                            break None;
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if !route(&bytes, &msg_tx, &out_tx).await {
                            break None;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                },
                _ = ping.tick() => { let _ = out_tx.send(Out::Ping); }
                () = dead.cancelled() => break None,
                () = state.shutdown.cancelled() => break Some((1001, "exai is shutting down".to_owned())),
            }
        };
    }
    // The client is gone or leaving: the service stops (dropping any call still running) and lets go of its sender.
    drop(msg_tx);
    stop.cancel();
    let _ = service.await;
    if let Some((code, reason)) = close {
        let _ = out_tx.send(Out::Close { code, reason });
    }
    drop(out_tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
}

/// Hands one frame to the service, or answers it with its JSON-RPC error; `false` once the service is gone.
async fn route(bytes: &[u8], messages: &mpsc::Sender<ClientJsonRpcMessage>, replies: &Outbox) -> bool {
    // A client that does not read is being closed (4007): nothing more is read from it.
    if replies.is_full() {
        return false;
    }
    tokio::task::consume_budget().await;
    match decode_frame(bytes) {
        Decoded::Message(message) => messages.send(*message).await.is_ok(),
        Decoded::Ignore(why) => {
            tracing::debug!("{why}");
            true
        }
        Decoded::Reject(rejection) => {
            tracing::info!(code = rejection.code, message = %rejection.message, "rejected websocket message");
            replies.send(Out::live(rejection.to_json().to_string())).is_ok()
        }
    }
}

/// Decodes one text or binary frame as stdio decodes a line: surrounding whitespace is not part of the message.
fn decode_frame(bytes: &[u8]) -> Decoded {
    inbound::decode(bytes.trim_ascii())
}

/// rmcp's view of the socket: decoded messages in, serialized frames out (through the writer task).
struct WsTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    outgoing: Outbox,
}

impl Transport<RoleServer> for WsTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let sent = serde_json::to_string(&item)
            .map_err(std::io::Error::other)
            .and_then(|text| {
                self.outgoing.send(Out::live(text)).map_err(|_| {
                    let why = "websocket writer stopped, or the client does not read (its queue is full)";
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, why)
                })
            });
        std::future::ready(sent)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        Ok(())
    }
}

#[cfg(test)]
mod fuzz;

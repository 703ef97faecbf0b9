//! MCP over stdin/stdout, what desktop assistants launch. exai reads the lines itself (instead of rmcp's
//! stdio transport, which drops unparsable input silently) so bad input gets its JSON-RPC error and an
//! oversize line is refused without buffering it. One writer task owns stdout; logs never go there.

use std::future::Future;
use std::sync::Arc;

use exai_core::app::App;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ExaiHandler;
use crate::inbound::{self, Decoded, Rejection};

/// Serves one client on stdin/stdout until it disconnects or `shutdown` fires.
pub async fn serve(app: Arc<App>, shutdown: CancellationToken) -> std::io::Result<()> {
    serve_on(app, tokio::io::stdin(), tokio::io::stdout(), shutdown).await
}

/// Serves one client on any byte pipe pair (stdin/stdout in production, a duplex pipe in tests).
pub async fn serve_on<R, W>(app: Arc<App>, input: R, output: W, shutdown: CancellationToken) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let max = app.config.limits.max_request_bytes;
    serve_handler_on(ExaiHandler::new(app), max, input, output, shutdown).await
}

/// Serves any MCP handler on a byte pipe pair with the same line handling (`exai shim` serves its own handler
/// this way); a line over `max` bytes is refused without buffering it.
pub async fn serve_handler_on<H, R, W>(
    handler: H,
    max: usize,
    input: R,
    output: W,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    H: ServerHandler,
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<String>(256);
    let (msg_tx, msg_rx) = mpsc::channel::<ClientJsonRpcMessage>(256);
    let writer = tokio::spawn(write_lines(output, out_rx));
    let reader = tokio::spawn(read_messages(BufReader::new(input), max, msg_tx, out_tx.clone()));
    let transport = LineTransport {
        incoming: msg_rx,
        outgoing: out_tx,
    };
    let result = match handler.serve_with_ct(transport, shutdown).await {
        Ok(service) => service.waiting().await.map(drop).map_err(std::io::Error::other),
        Err(e) => Err(std::io::Error::other(e)),
    };
    // The reader may still be parked on stdin; once it is gone the writer drains and stops.
    reader.abort();
    let _ = reader.await;
    writer.await.map_err(std::io::Error::other)??;
    result
}

/// rmcp's view of the pipe: decoded messages in, serialized lines out.
struct LineTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    outgoing: mpsc::Sender<String>,
}

impl Transport<RoleServer> for LineTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outgoing = self.outgoing.clone();
        async move {
            let line = serde_json::to_string(&item).map_err(std::io::Error::other)?;
            outgoing
                .send(line)
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdout writer stopped"))
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        Ok(())
    }
}

/// Reads newline-delimited messages, never buffering more than `max` bytes of one line: a longer line is
/// discarded up to its newline and answered with a JSON-RPC error.
async fn read_messages<R: AsyncBufRead + Unpin>(
    mut input: R,
    max: usize,
    messages: mpsc::Sender<ClientJsonRpcMessage>,
    replies: mpsc::Sender<String>,
) {
    let mut line = Vec::new();
    let mut discarding = false;
    loop {
        let chunk = match input.fill_buf().await {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(error = %e, "stdin read failed; closing");
                break;
            }
        };
        let newline = chunk.iter().position(|&b| b == b'\n');
        let take = newline.map_or(chunk.len(), |i| i + 1);
        if !discarding {
            if line.len() + take > max + 2 {
                discarding = true;
                line = Vec::new();
                tracing::warn!(max, "stdin message over the size limit; discarding it");
                if replies
                    .send(Rejection::too_large(max).to_json().to_string())
                    .await
                    .is_err()
                {
                    break;
                }
            } else {
                line.extend_from_slice(&chunk[..take]);
            }
        }
        input.consume(take);
        if newline.is_some() {
            if !discarding && !handle_line(&line, &messages, &replies).await {
                break;
            }
            discarding = false;
            line.clear();
        }
    }
}

/// Routes one line; `false` when the service or the writer has gone away.
async fn handle_line(
    line: &[u8],
    messages: &mpsc::Sender<ClientJsonRpcMessage>,
    replies: &mpsc::Sender<String>,
) -> bool {
    let line = line.trim_ascii();
    if line.is_empty() {
        return true;
    }
    match inbound::decode(line) {
        Decoded::Message(message) => messages.send(*message).await.is_ok(),
        Decoded::Ignore(why) => {
            tracing::debug!("{why}");
            true
        }
        Decoded::Reject(rejection) => {
            tracing::info!(code = rejection.code, message = %rejection.message, "rejected stdin message");
            replies.send(rejection.to_json().to_string()).await.is_ok()
        }
    }
}

/// The only writer of the output pipe: one line per message, flushed at once.
async fn write_lines<W: AsyncWrite + Unpin>(mut output: W, mut lines: mpsc::Receiver<String>) -> std::io::Result<()> {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        output.write_all(line.as_bytes()).await?;
        output.flush().await?;
    }
    Ok(())
}

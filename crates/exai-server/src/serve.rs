//! The one accept loop behind every listener (HTTP, dashboard, WebSocket): axum's `serve` with hyper's HTTP/1
//! header-read timeout (`EXAI_HEADER_READ_TIMEOUT_SECS`) switched on, which `axum::serve` does not expose.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves `router` on `listener` until `shutdown` fires, then lets open requests finish. Each request carries
/// `ConnectInfo(info(io, addr))` of its connection; a client that takes longer than `header_timeout` to send a
/// request's headers (or, between requests, to start the next one) is disconnected.
pub async fn serve<L, T>(
    mut listener: L,
    router: Router,
    header_timeout: Duration,
    info: impl Fn(&L::Io, &L::Addr) -> T,
    shutdown: CancellationToken,
) where
    L: Listener,
    T: Clone + Send + Sync + 'static,
{
    let tracker = TaskTracker::new();
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let connect_info = ConnectInfo(info(&io, &addr));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(connect_info.clone());
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    tower::ServiceExt::oneshot(router, request.map(Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            // HTTP/1.1 only: cleartext HTTP/2 (prior knowledge) has no header-read timeout in hyper, so one idle h2c
            // connection would hold its slot for ever; MCP clients and browsers speak HTTP/1.1 to a plain port.
            // (hyper-util's auto builder reads the version itself on upgradeable connections, whatever it is told.)
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

//! The WebSocket listener: each TCP connection is counted against the daemon's connection limits; one past a
//! limit is still upgraded, then closed at once with 1008 and a reason naming the limit (see `mod.rs`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::conn_io::ReadCap;
use crate::conn_limit::{ConnGuard, ConnLimits, Counted};

/// A TCP listener that admits every connection but remembers which ones a limit refused.
pub(super) struct WsListener {
    inner: TcpListener,
    limits: Arc<ConnLimits>,
    first_bytes: Duration,
}

impl WsListener {
    /// `first_bytes`: how long a connection has to start its upgrade request (`EXAI_HEADER_READ_TIMEOUT_SECS`).
    pub(super) fn new(inner: TcpListener, limits: Arc<ConnLimits>, first_bytes: Duration) -> Self {
        Self {
            inner,
            limits,
            first_bytes,
        }
    }
}

/// An accepted connection: its slot (dropped with the socket), or why a limit refused it.
pub(super) type Admitted = Counted<Result<ConnGuard, String>>;

/// What the upgrade handler learns about its connection.
#[derive(Debug, Clone)]
pub(super) struct Admission {
    pub addr: SocketAddr,
    /// Set when a connection limit refused this connection: the reason, naming the limit.
    pub refused: Option<String>,
    /// What the connection may still send: capped until its first frame is accepted.
    pub read_cap: Arc<ReadCap>,
}

impl Admission {
    pub(super) fn of(io: &Admitted, addr: &SocketAddr) -> Self {
        Self {
            addr: *addr,
            refused: io.guard().as_ref().err().cloned(),
            read_cap: io.read_cap(),
        }
    }
}

impl axum::serve::Listener for WsListener {
    type Io = Admitted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Admitted, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Frames are small writes: send each at once (see the HTTP listener).
                    let _ = stream.set_nodelay(true);
                    let admission = self.limits.admit(addr.ip());
                    if let Err(why) = &admission {
                        tracing::warn!(client = %addr, %why, "websocket connection refused");
                        metrics::counter!("exai_connections_refused_total", "transport" => "ws").increment(1);
                    }
                    return (Counted::new(stream, admission, self.first_bytes), addr);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "websocket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

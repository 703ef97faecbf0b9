//! Connection limits for the daemon: at most `total` open connections and `per_ip` per client address. A
//! connection past either is answered with an HTTP 503 naming the limit and closed; counts drop with the socket.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

pub use crate::conn_io::Counted;

/// The limits and the live counts.
#[derive(Debug)]
pub struct ConnLimits {
    total: usize,
    per_ip: usize,
    /// The `transport` label of the `exai_open_connections` gauge these counts are reported under.
    transport: &'static str,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl ConnLimits {
    /// Limits for the HTTP listener (counted under `transport="http"`).
    pub fn new(total: usize, per_ip: usize) -> Arc<Self> {
        Self::for_transport(total, per_ip, "http")
    }

    /// Limits whose open count is reported as `exai_open_connections{transport}`.
    pub fn for_transport(total: usize, per_ip: usize, transport: &'static str) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_ip,
            transport,
            open: Mutex::default(),
        })
    }

    /// Open connections now (all clients).
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Admits a connection from `ip`, or says which limit refused it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.0 >= self.total {
            return Err(format!(
                "the server's connection limit ({}, EXAI_MAX_CONNECTIONS) is reached",
                self.total
            ));
        }
        let from_ip = open.1.entry(ip).or_insert(0);
        if *from_ip >= self.per_ip {
            return Err(format!(
                "your address already has {} open connections (EXAI_MAX_CONNECTIONS_PER_IP)",
                self.per_ip
            ));
        }
        *from_ip += 1;
        open.0 += 1;
        metrics::gauge!("exai_open_connections", "transport" => self.transport).set(open.0 as f64);
        Ok(ConnGuard {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// One admitted connection; dropping it gives its slot back.
#[derive(Debug)]
pub struct ConnGuard {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
        metrics::gauge!("exai_open_connections", "transport" => self.limits.transport).set(open.0 as f64);
    }
}

/// A TCP listener that enforces [`ConnLimits`]; each connection has `first_bytes` to start its request.
pub struct LimitedListener {
    inner: TcpListener,
    limits: Arc<ConnLimits>,
    first_bytes: Duration,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, limits: Arc<ConnLimits>, first_bytes: Duration) -> Self {
        Self {
            inner,
            limits,
            first_bytes,
        }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Streamed replies are many small writes: without this, Nagle's algorithm holds each one back until
            // the client acknowledges the last, which a delayed ACK stretches to ~40 ms.
            let _ = stream.set_nodelay(true);
            match self.limits.admit(addr.ip()) {
                Ok(guard) => return (Counted::new(stream, guard, self.first_bytes), addr),
                Err(why) => {
                    tracing::warn!(client = %addr, %why, "connection refused");
                    let transport = self.limits.transport;
                    metrics::counter!("exai_connections_refused_total", "transport" => transport).increment(1);
                    tokio::spawn(refuse(stream, why));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Answers a refused connection with a 503 that says why, then closes it.
async fn refuse(mut stream: TcpStream, why: String) {
    let body = serde_json::json!({ "error": "too_many_connections", "message": why }).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.write_all(response.as_bytes())).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limits_and_frees_on_drop() {
        let limits = ConnLimits::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let g1 = limits.admit(a).unwrap();
        let _g2 = limits.admit(a).unwrap();
        assert!(limits.admit(a).unwrap_err().contains("EXAI_MAX_CONNECTIONS_PER_IP"));
        let _g3 = limits.admit(b).unwrap();
        assert!(limits.admit(b).unwrap_err().contains("EXAI_MAX_CONNECTIONS)"));
        assert_eq!(limits.open(), 3);
        drop(g1);
        assert_eq!(limits.open(), 2);
        limits.admit(a).unwrap();
    }
}

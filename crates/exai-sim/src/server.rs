//! Starting and stopping a simulator: `Simulator::start` binds a socket and serves the router on a tokio
//! task; `SimHandle` gives its URLs, the request log, script queueing and a prompt shutdown.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::record::Recorded;
use crate::routes::router;
use crate::script::Script;
use crate::state::SimState;

/// Entry point: starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds `addr` (port 0 picks a free port) and serves until [`SimHandle::shutdown`] or drop.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = SimState::new(config);
        let app = router(state.clone());
        let token = state.shutdown_token().clone();
        let task = tokio::spawn(async move {
            // Stream chunks are small writes: send each at once rather than waiting on the client's ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
        });
        tracing::debug!(%addr, "exai-sim listening");
        Ok(SimHandle {
            addr,
            state,
            task: Some(task),
        })
    }

    /// Starts on `127.0.0.1` with a free port.
    pub async fn start_local(config: SimConfig) -> io::Result<SimHandle> {
        Simulator::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }
}

/// A running simulator. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: SimState,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://IP:PORT/v1` — the Kimi/OpenAI-style base URL.
    pub fn base_url_v1(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// `http://IP:PORT/api/paas/v4` — the GLM-style base URL.
    pub fn base_url_glm(&self) -> String {
        format!("{}/api/paas/v4", self.url())
    }

    /// The shared state (clone it to keep driving the simulator from elsewhere).
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests()
    }

    /// Only the chat-completion requests.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.state.chat_requests()
    }

    /// The most chat requests answered at once since start (or the last reset).
    pub fn peak_chats_in_flight(&self) -> usize {
        self.state.peak_chats_in_flight()
    }

    /// Queues a one-shot script for the next request to `target` (model id, `"*"` or `"prefix*"`).
    pub fn push_script(&self, target: impl Into<String>, script: Script) {
        self.state.push_script(target, script);
    }

    /// Forgets recorded requests and queued scripts.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Waits until `pred` holds for the request log or `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Recorded]) -> bool) -> bool {
        self.state.wait_for(timeout, pred).await
    }

    /// Stops serving: hanging and sleeping responses are cut off, connections close, the task ends.
    pub async fn shutdown(mut self) {
        self.state.begin_shutdown();
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "exai-sim server ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "exai-sim server task failed"),
                Err(_) => tracing::warn!("exai-sim server did not stop within 5 s"),
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.begin_shutdown();
    }
}

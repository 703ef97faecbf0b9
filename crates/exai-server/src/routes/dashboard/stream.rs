//! `GET /dashboard/stream?window=<secs>`: the page's one live connection, as server-sent events. It opens with a
//! `snapshot` (carrying `retry:`, how long the browser waits before reconnecting), then sends a `snapshot` every
//! [`SNAPSHOT_EVERY`], a `call` for each finished tool call and an `alert` for each raised or cleared alert as they
//! happen, and a `: keepalive` comment after [`KEEPALIVE_EVERY`] of silence. A page that falls more than the
//! broadcast's buffer behind gets a `lagged` event (how many events it missed) and carries on from the newest: it
//! is never disconnected for being slow. Streams end when the daemon shuts down. Open streams are counted in
//! `exai_open_connections{transport="dashboard"}` and every stream opened in `exai_dashboard_streams_opened_total`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use exai_core::observe::Event;
use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Interval, MissedTickBehavior};

use super::error::ApiError;
use super::{Dashboard, params, snapshot};

/// How often a snapshot goes out.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(2);
/// A comment after this long without an event (snapshots normally come first).
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);
/// What the browser waits before reconnecting a dropped stream (the page adds its own backoff on top).
pub const RETRY: Duration = Duration::from_secs(3);

/// Streams open now.
#[derive(Debug, Default)]
pub struct StreamCount(AtomicUsize);

impl StreamCount {
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One open stream; dropping it (the client went away, or shutdown) takes it off the count.
struct StreamGuard(Arc<Dashboard>);

impl StreamGuard {
    fn new(dash: Arc<Dashboard>) -> Self {
        let open = dash.streams.0.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!("exai_dashboard_streams_opened_total").increment(1);
        metrics::gauge!("exai_open_connections", "transport" => "dashboard").set(open as f64);
        Self(dash)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let open = self.0.streams.0.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("exai_open_connections", "transport" => "dashboard").set(open as f64);
    }
}

pub async fn open(
    State(dash): State<Arc<Dashboard>>,
    query: Result<Query<params::Params>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let query = params::decode(query)?;
    let window_secs = params::window(&query)?;
    let live = dash.app.observe.subscribe();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + SNAPSHOT_EVERY, SNAPSHOT_EVERY);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let state = Live {
        guard: StreamGuard::new(Arc::clone(&dash)),
        live,
        ticker,
        window_secs,
        opened: false,
    };
    let events = futures::stream::unfold(state, |mut s| async move { s.next().await.map(|e| (Ok(e), s)) });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEPALIVE_EVERY).text("keepalive")))
}

/// One stream's state.
struct Live {
    guard: StreamGuard,
    live: broadcast::Receiver<Event>,
    ticker: Interval,
    window_secs: u64,
    opened: bool,
}

impl Live {
    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        let dash = Arc::clone(&self.guard.0);
        if !self.opened {
            self.opened = true;
            return Some(self.snapshot().retry(RETRY));
        }
        tokio::select! {
            () = dash.shutdown.cancelled() => None,
            _ = self.ticker.tick() => Some(self.snapshot()),
            received = self.live.recv() => match received {
                Ok(Event::Call(call)) => Some(json("call", &call)),
                Ok(Event::Alert(change)) => Some(json("alert", &change)),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "a dashboard stream fell behind and skipped ahead");
                    Some(SseEvent::default().event("lagged").data(missed.to_string()))
                }
                Err(RecvError::Closed) => None,
            },
        }
    }

    fn snapshot(&self) -> SseEvent {
        json("snapshot", &snapshot::take(&self.guard.0, self.window_secs))
    }
}

fn json(name: &str, data: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|e| SseEvent::default().event("error").data(e.to_string()))
}

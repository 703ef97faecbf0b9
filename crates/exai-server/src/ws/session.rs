//! The session manager: a session (its running calls, its concurrency limit, its undelivered results) outlives
//! its connection for a grace period, so a reconnecting client collects results that finished while it was away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::frames;

/// What a frame is to the session: progress is dropped while no client is attached; `stream_complete` and final
/// frames are kept for the next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Live,
    Keep,
    Final,
}

/// One item for a connection's writer task.
#[derive(Debug)]
pub(super) enum Out {
    Text { text: String, kind: Kind },
    Ping,
    Close { code: u16, reason: String },
}

impl Out {
    pub(super) fn live(text: String) -> Self {
        Self::Text { text, kind: Kind::Live }
    }
}

/// Every live session, capped in number.
pub(super) struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    max: usize,
    grace: Duration,
    shutdown: CancellationToken,
}

pub(super) struct Session {
    pub id: String,
    state: Mutex<State>,
    /// Cancelled when the session ends (grace expired, shutdown): stops every call it still runs.
    ended: CancellationToken,
}

#[derive(Default)]
struct State {
    conn: Option<Attached>,
    /// Frames kept while no connection is attached, oldest first, and whether each is final.
    pending: Vec<(String, bool)>,
    /// Running calls by request id (its JSON text).
    calls: HashMap<String, CancellationToken>,
    /// Bumped on every detach, so a grace timer knows whether the session was resumed meanwhile.
    generation: u64,
}

struct Attached {
    id: u64,
    tx: UnboundedSender<Out>,
    kick: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    pub(super) fn new(max: usize, grace: Duration, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::default(),
            max,
            grace,
            shutdown,
        })
    }

    /// Sessions alive now (attached or within their grace period).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Gives connection `conn` a session: the one named `requested` if it is still alive (taking it over from any
    /// other connection, which is told through its `kick` token), else a new one. Queues the `hello_ack` and then
    /// every kept frame on `tx` before any other frame can reach it. `Err` when the session cap is reached.
    pub(super) fn attach(
        &self,
        requested: Option<&str>,
        conn: u64,
        tx: UnboundedSender<Out>,
        kick: CancellationToken,
    ) -> Result<Arc<Session>, String> {
        let mut map = lock(&self.map);
        let (session, resumed) = match requested.and_then(|id| map.get(id)) {
            Some(session) => (Arc::clone(session), true),
            None => {
                if map.len() >= self.max {
                    return Err(format!(
                        "the daemon already has {} WebSocket sessions (EXAI_WS_MAX_SESSIONS); retry later",
                        self.max
                    ));
                }
                let session = Arc::new(Session {
                    id: uuid::Uuid::new_v4().to_string(),
                    state: Mutex::default(),
                    ended: self.shutdown.child_token(),
                });
                map.insert(session.id.clone(), Arc::clone(&session));
                (session, false)
            }
        };
        let mut state = lock(&session.state);
        if let Some(old) = state.conn.take() {
            old.kick.cancel();
        }
        let pending = std::mem::take(&mut state.pending);
        let finals = pending.iter().filter(|(_, f)| *f).count();
        let _ = tx.send(Out::live(frames::hello_ack(&session.id, resumed, finals)));
        for (text, _) in pending {
            let _ = tx.send(Out::live(text));
        }
        state.conn = Some(Attached { id: conn, tx, kick });
        drop(state);
        metrics::gauge!("exai_open_sessions", "transport" => "ws").set(map.len() as f64);
        Ok(session)
    }

    /// Connection `conn` has gone: unless the session has moved to another connection, it waits `grace` for a
    /// resume, then ends (its calls are cancelled, its kept frames dropped).
    pub(super) fn detach(self: &Arc<Self>, session: &Arc<Session>, conn: u64) {
        let generation = {
            let mut state = lock(&session.state);
            if state.conn.as_ref().is_none_or(|c| c.id != conn) {
                return;
            }
            state.conn = None;
            state.generation += 1;
            state.generation
        };
        let sessions = Arc::clone(self);
        let session = Arc::clone(session);
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(sessions.grace) => {}
                () = session.ended.cancelled() => {}
            }
            let mut map = lock(&sessions.map);
            let state = lock(&session.state);
            if state.conn.is_none() && state.generation == generation {
                tracing::info!(session = %session.id, calls = state.calls.len(), "websocket session expired");
                drop(state);
                map.remove(&session.id);
                session.ended.cancel();
                metrics::gauge!("exai_open_sessions", "transport" => "ws").set(map.len() as f64);
            }
        });
    }
}

impl Session {
    /// The key of this session's concurrency limit (`EXAI_WS_SESSION_MAX_INFLIGHT`), stable across reconnects.
    pub(super) fn limit_key(&self) -> String {
        format!("ws session {}", self.id)
    }

    /// Sends a frame to the attached connection, or keeps it (unless `Live`) for the next one.
    pub(super) fn deliver(&self, text: String, kind: Kind) {
        let mut state = lock(&self.state);
        let text = match &state.conn {
            Some(conn) => match conn.tx.send(Out::Text { text, kind }) {
                Ok(()) => return,
                Err(e) => match e.0 {
                    Out::Text { text, .. } => text,
                    _ => return,
                },
            },
            None => text,
        };
        if kind != Kind::Live {
            state.pending.push((text, kind == Kind::Final));
        }
    }

    /// A kept frame that connection `conn` could not write: to the session's new connection if it has moved,
    /// else kept for the next one.
    pub(super) fn rebuffer(&self, conn: u64, text: String, kind: Kind) {
        let mut state = lock(&self.state);
        if let Some(attached) = &state.conn
            && attached.id != conn
        {
            if let Err(e) = attached.tx.send(Out::Text { text, kind })
                && let Out::Text { text, kind } = e.0
            {
                state.pending.push((text, kind == Kind::Final));
            }
            return;
        }
        state.pending.push((text, kind == Kind::Final));
    }

    /// Registers a call; `None` when `request_id` is already running in this session.
    pub(super) fn begin_call(&self, request_id: &str) -> Option<CancellationToken> {
        let mut state = lock(&self.state);
        if state.calls.contains_key(request_id) {
            return None;
        }
        let cancel = self.ended.child_token();
        state.calls.insert(request_id.to_owned(), cancel.clone());
        Some(cancel)
    }

    pub(super) fn end_call(&self, request_id: &str) {
        lock(&self.state).calls.remove(request_id);
    }

    /// Cancels a running call; `false` when no call has that id.
    pub(super) fn cancel_call(&self, request_id: &str) -> bool {
        match lock(&self.state).calls.get(request_id) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub(super) fn running(&self) -> usize {
        lock(&self.state).calls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn texts(rx: &mut mpsc::UnboundedReceiver<Out>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Out::Text { text, .. }) = rx.try_recv() {
            out.push(text);
        }
        out
    }

    #[tokio::test]
    async fn results_kept_while_away_arrive_after_the_hello_ack_on_resume() {
        let sessions = Sessions::new(1, Duration::from_secs(60), CancellationToken::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let s = sessions.attach(None, 1, tx, CancellationToken::new()).unwrap();
        assert!(texts(&mut rx)[0].contains("\"resumed\":false"));
        let (tx2, _rx2) = mpsc::unbounded_channel();
        let refused = sessions.attach(None, 2, tx2, CancellationToken::new()).err().unwrap();
        assert!(refused.contains("EXAI_WS_MAX_SESSIONS"), "{refused}");
        drop(rx);
        sessions.detach(&s, 1);
        s.deliver("progress".into(), Kind::Live);
        s.deliver("done".into(), Kind::Keep);
        s.deliver("result".into(), Kind::Final);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let again = sessions.attach(Some(&s.id), 3, tx, CancellationToken::new()).unwrap();
        assert_eq!(again.id, s.id);
        let got = texts(&mut rx);
        assert!(
            got[0].contains("\"resumed\":true") && got[0].contains("\"pending\":1"),
            "{got:?}"
        );
        assert_eq!(&got[1..], ["done", "result"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_not_resumed_within_the_grace_period_ends_and_cancels_its_calls() {
        let sessions = Sessions::new(4, Duration::from_secs(5), CancellationToken::new());
        let (tx, _rx) = mpsc::unbounded_channel();
        let s = sessions.attach(None, 1, tx, CancellationToken::new()).unwrap();
        let call = s.begin_call("\"r1\"").unwrap();
        assert!(s.begin_call("\"r1\"").is_none());
        sessions.detach(&s, 1);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(call.is_cancelled());
        assert_eq!(sessions.len(), 0);
        let (tx, mut rx) = mpsc::unbounded_channel();
        sessions.attach(Some(&s.id), 2, tx, CancellationToken::new()).unwrap();
        assert!(texts(&mut rx)[0].contains("\"resumed\":false"));
    }
}

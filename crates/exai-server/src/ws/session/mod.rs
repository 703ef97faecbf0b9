//! The session manager: a session (its running calls, its concurrency limit, its undelivered results) outlives
//! its connection for a grace period, so a reconnecting client collects results, on this replica or another one.
//!
//! Across replicas (see `shared` and docs/ws-protocol.md): the replica holding a session says so in the store;
//! frames kept while no client is attached go to the store, so whichever replica the client resumes on delivers
//! them; calls keep running where they started and their results reach the new replica through the store.
//! `ctx`: this replica's store operations for sessions. `peers`: heartbeat, refresh, polling another replica.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use exai_core::conversation::now_ms;
use exai_core::store::Store;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frames;
use super::outbox::{Caps, Outbox};
use super::shared::{self, KeptBody};
use ctx::Ctx;

mod ctx;
mod peers;
#[cfg(test)]
mod tests;

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

/// The caps of a replica's sessions.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionCaps {
    /// Sessions at once (`EXAI_WS_MAX_SESSIONS`).
    pub max: usize,
    /// Disconnected sessions one client address may hold (`EXAI_WS_MAX_DETACHED_SESSIONS_PER_CLIENT`).
    pub max_detached_per_client: usize,
    /// Frames and bytes a detached session keeps in memory, and a resume delivers at most.
    pub kept: Caps,
}

/// How long a disconnected session that never ran a call waits for its client (it has nothing to hand over).
pub(super) const UNUSED_GRACE: Duration = Duration::from_secs(5);

/// Every live session, capped in number (`EXAI_WS_MAX_SESSIONS`) and in disconnected sessions per client address
/// (`EXAI_WS_MAX_DETACHED_SESSIONS_PER_CLIENT`).
pub(super) struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    max: usize,
    max_detached_per_client: usize,
    ctx: Arc<Ctx>,
    shutdown: CancellationToken,
}

pub(super) struct Session {
    /// The resume credential: sent to its client only, never logged or recorded (see [`Session::tag`]).
    pub id: String,
    /// Who opened it: a hash of the token its client authenticated with ([`shared::owner`]); only a client
    /// presenting the same token resumes it.
    owner: String,
    ctx: Arc<Ctx>,
    state: Mutex<State>,
    /// Cancelled when the session ends (grace expired, shutdown): stops every call it still runs.
    ended: CancellationToken,
}

#[derive(Default)]
struct State {
    conn: Option<Attached>,
    /// Kept frames not (or not yet) in the store, oldest first: their store write is under way or failed, or they
    /// came while a resume was collecting.
    pending: VecDeque<Kept>,
    /// Kept frames a resume delivered from memory while their store write was under way: the write then deletes
    /// what it wrote, and a take skips them.
    claimed: HashSet<String>,
    /// Running calls by request id (its JSON text).
    calls: HashMap<String, CancellationToken>,
    /// Bumped on every detach and resume, so a grace timer knows whether the session was resumed meanwhile.
    generation: u64,
    /// The address of the client that opened or last resumed the session.
    client: Option<IpAddr>,
    /// When the session lost its connection (while it has none).
    detached_at: Option<Instant>,
    /// Whether the session ever ran a call or was resumed: one that never did gets only [`UNUSED_GRACE`].
    used: bool,
    /// Resumes collecting kept frames right now: frames kept meanwhile stay in memory for them.
    resuming: u32,
    /// Set while the session polls the store for results of calls another replica runs for it.
    remote_until: Option<Instant>,
    /// Whether the task writing kept frames to the store is running.
    flushing: bool,
}

struct Kept {
    name: String,
    text: String,
    is_final: bool,
    copy: StoreCopy,
}

/// Whether a kept frame also has a copy in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreCopy {
    /// None: the write failed, or the frame came while a resume here was collecting.
    None,
    /// Waiting for the session's one writer (one at a time, so the store gets them in delivery order).
    Queued,
    Writing,
    /// Written while a resume here was collecting (which may have missed it).
    Written,
}

struct Attached {
    id: u64,
    tx: Outbox,
    kick: CancellationToken,
}

/// Where a connection asking for a session comes from and how to reach it.
pub(super) struct Conn {
    pub id: u64,
    pub client: IpAddr,
    pub tx: Outbox,
    pub kick: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    /// `poll_window`: how long a session resumed from another replica waits for that replica's results.
    pub(super) fn new(
        caps: SessionCaps,
        grace: Duration,
        poll_window: Duration,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let ctx = Arc::new(Ctx {
            store,
            replica: shared::new_replica_id(),
            seq: AtomicU64::new(0),
            grace,
            poll_window,
            kept: caps.kept,
        });
        let sessions = Arc::new(Self {
            map: Mutex::default(),
            max: caps.max,
            max_detached_per_client: caps.max_detached_per_client,
            ctx,
            shutdown,
        });
        tokio::spawn(Arc::clone(&sessions).refresh());
        tokio::spawn(Arc::clone(&sessions).heartbeat());
        sessions
    }

    /// Sessions alive now (attached or within their grace period).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    fn new_session(&self, id: String, owner: &str) -> Arc<Session> {
        Arc::new(Session {
            id,
            owner: owner.to_owned(),
            ctx: Arc::clone(&self.ctx),
            state: Mutex::default(),
            ended: self.shutdown.child_token(),
        })
    }

    fn count(map: &HashMap<String, Arc<Session>>) {
        metrics::gauge!("exai_open_sessions", "transport" => "ws").set(map.len() as f64);
    }

    /// Gives connection `conn` a session: the one named `requested` if it is alive here or held by another replica
    /// (taking it over from any other connection of this replica, which is told through its `kick` token), else a
    /// new one. Queues the `hello_ack` and then every kept frame on `tx` before any other frame can reach it.
    /// A session opened by another `owner` (a client that authenticated with another token) is left alone: the
    /// client gets a new session, as for an unknown id. `Err` when the session cap is reached.
    pub(super) async fn attach(
        self: &Arc<Self>,
        requested: Option<&str>,
        owner: &str,
        conn: Conn,
    ) -> Result<Arc<Session>, String> {
        let Some(id) = requested else {
            return self.create(owner, conn).await;
        };
        let local = lock(&self.map).get(id).cloned();
        let holder = self.ctx.holder(id).await;
        let foreign = local.as_ref().is_some_and(|s| s.owner != owner)
            || holder.as_ref().is_some_and(|h| h.owner.as_deref() != Some(owner));
        if foreign {
            tracing::info!(session = %shared::tag(id), "websocket resume with another token than the session's; a new session instead");
            return self.create(owner, conn).await;
        }
        let elsewhere = holder.map(|h| h.replica).filter(|r| *r != self.ctx.replica);
        let stopped = match &elsewhere {
            Some(replica) => !self.ctx.alive(replica).await,
            None => false,
        };
        if stopped && local.is_none() && !self.ctx.has_kept(id).await {
            // Nothing finished there to hand over: a new session says at once that its calls are lost.
            if let Err(e) = self.ctx.store.delete_shared(shared::SESSION_SCOPE, id).await {
                self.ctx.failed("release", id, &e);
            }
            return self.create(owner, conn).await;
        }
        let session = match local {
            Some(session) => session,
            // Held by another replica: it goes on here under the same id (resuming is never refused by the cap).
            None if elsewhere.is_some() => {
                let mut map = lock(&self.map);
                let session = Arc::clone(
                    map.entry(id.to_owned())
                        .or_insert_with(|| self.new_session(id.to_owned(), owner)),
                );
                Self::count(&map);
                session
            }
            None => return self.create(owner, conn).await,
        };
        let from = elsewhere.clone().filter(|_| !stopped);
        if let Some(from) = session.resume(from, conn).await {
            tokio::spawn(Arc::clone(self).poll_remote(Arc::clone(&session), from));
        }
        if stopped && let Some(replica) = &elsewhere {
            // Its calls stopped with it: the client gets what had finished there, then learns the rest is lost.
            self.lose(&session, replica).await;
        }
        Ok(session)
    }

    /// A new session of `owner` for connection `conn`, said to be held here. At the cap, a disconnected session
    /// that never ran a call (it holds nothing) makes room.
    async fn create(self: &Arc<Self>, owner: &str, conn: Conn) -> Result<Arc<Session>, String> {
        let (session, evicted) = {
            let mut map = lock(&self.map);
            let mut evicted = None;
            if map.len() >= self.max {
                let idle = Self::detached(&map, |s| !s.used).into_iter().next();
                match idle {
                    Some(session) => {
                        map.remove(&session.id);
                        evicted = Some(session);
                    }
                    None => {
                        return Err(format!(
                            "the daemon already has {} WebSocket sessions (EXAI_WS_MAX_SESSIONS); retry later",
                            self.max
                        ));
                    }
                }
            }
            let session = self.new_session(uuid::Uuid::new_v4().to_string(), owner);
            map.insert(session.id.clone(), Arc::clone(&session));
            let _ = conn.tx.force(Out::live(frames::hello_ack(&session.id, false, 0)));
            {
                let mut state = lock(&session.state);
                state.client = Some(conn.client);
                state.conn = Some(Attached {
                    id: conn.id,
                    tx: conn.tx,
                    kick: conn.kick,
                });
            }
            Self::count(&map);
            (session, evicted)
        };
        if let Some(old) = evicted {
            self.end(old, "EXAI_WS_MAX_SESSIONS reached");
        }
        self.ctx.claim(&session.id, &session.owner).await;
        Ok(session)
    }

    /// The disconnected sessions in `map` that `filter` accepts, longest disconnected first.
    fn detached(map: &HashMap<String, Arc<Session>>, filter: impl Fn(&State) -> bool) -> Vec<Arc<Session>> {
        let mut found: Vec<(Instant, Arc<Session>)> = map
            .values()
            .filter_map(|s| {
                let state = lock(&s.state);
                let at = state.detached_at.filter(|_| state.conn.is_none() && filter(&state))?;
                Some((at, Arc::clone(s)))
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, s)| s).collect()
    }

    /// Ends a disconnected session before its grace period is over (already out of the map): its calls are
    /// cancelled and its holder record goes.
    fn end(self: &Arc<Self>, session: Arc<Session>, why: &'static str) {
        tracing::info!(session = %session.tag(), why, "websocket session ended early");
        metrics::counter!("exai_ws_sessions_evicted_total").increment(1);
        session.ended.cancel();
        let sessions = Arc::clone(self);
        tokio::spawn(async move {
            let holder = sessions.ctx.holder(&session.id).await;
            if holder.is_some_and(|h| h.replica == sessions.ctx.replica)
                && let Err(e) = sessions
                    .ctx
                    .store
                    .delete_shared(shared::SESSION_SCOPE, &session.id)
                    .await
            {
                sessions.ctx.failed("release", &session.id, &e);
            }
        });
    }

    /// Keeps client `client` within `EXAI_WS_MAX_DETACHED_SESSIONS_PER_CLIENT`: its longest-disconnected sessions
    /// end first, those that never ran a call before the others.
    fn limit_detached(self: &Arc<Self>, client: IpAddr) {
        let evicted: Vec<Arc<Session>> = {
            let mut map = lock(&self.map);
            let mut mine = Self::detached(&map, |s| s.client == Some(client));
            if mine.len() <= self.max_detached_per_client {
                return;
            }
            mine.sort_by_key(|s| lock(&s.state).used);
            let extra = mine.len() - self.max_detached_per_client;
            let evicted: Vec<Arc<Session>> = mine.into_iter().take(extra).collect();
            for session in &evicted {
                map.remove(&session.id);
            }
            Self::count(&map);
            evicted
        };
        for session in evicted {
            self.end(session, "EXAI_WS_MAX_DETACHED_SESSIONS_PER_CLIENT reached");
        }
    }

    /// Connection `conn` has gone: unless the session has moved to another connection, it waits `grace` for a
    /// resume, then ends (its calls are cancelled, its kept frames dropped) — unless another replica holds it by
    /// then, in which case its calls run to their end and leave their results in the store for that replica.
    pub(super) fn detach(self: &Arc<Self>, session: &Arc<Session>, conn: u64) {
        let (generation, client) = {
            let mut state = lock(&session.state);
            if state.conn.as_ref().is_none_or(|c| c.id != conn) {
                return;
            }
            state.conn = None;
            state.detached_at = Some(Instant::now());
            state.generation += 1;
            (state.generation, state.client)
        };
        tokio::spawn(Arc::clone(self).linger(Arc::clone(session), generation));
        if let Some(client) = client {
            self.limit_detached(client);
        }
    }

    /// A detached session's wait: checks for cancels aimed at its calls from another replica, and at the end of
    /// the grace period either ends the session or, if another replica holds it, lets its calls finish.
    async fn linger(self: Arc<Self>, session: Arc<Session>, generation: u64) {
        let grace = if lock(&session.state).used {
            self.ctx.grace
        } else {
            self.ctx.grace.min(UNUSED_GRACE)
        };
        let expires = Instant::now() + grace;
        let mut moved = false;
        loop {
            let wake = if moved {
                Instant::now() + shared::POLL
            } else {
                (Instant::now() + shared::POLL).min(expires)
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                () = session.ended.cancelled() => return,
            }
            let running = {
                let state = lock(&session.state);
                if state.conn.is_some() || state.generation != generation {
                    return;
                }
                !state.calls.is_empty()
            };
            if running {
                session.cancel_marked().await;
            }
            if !moved && Instant::now() >= expires {
                let holder = self.ctx.holder(&session.id).await;
                let elsewhere = holder.as_ref().filter(|h| h.replica != self.ctx.replica);
                let calls = {
                    let mut map = lock(&self.map);
                    let state = lock(&session.state);
                    let resumed = state.conn.is_some() || state.generation != generation;
                    let calls = state.calls.len();
                    drop(state);
                    if !resumed && map.get(&session.id).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                        map.remove(&session.id);
                    }
                    Self::count(&map);
                    (!resumed).then_some(calls)
                };
                let Some(calls) = calls else { return };
                if let Some(holder) = elsewhere {
                    tracing::info!(session = %session.tag(), replica = %holder.replica, calls,
                        "websocket session moved to another replica; its calls finish here");
                    moved = true;
                } else {
                    tracing::info!(session = %session.tag(), calls, "websocket session expired");
                    if holder.is_some()
                        && let Err(e) = self.ctx.store.delete_shared(shared::SESSION_SCOPE, &session.id).await
                    {
                        self.ctx.failed("release", &session.id, &e);
                    }
                    session.ended.cancel();
                    return;
                }
            }
            if moved && lock(&session.state).calls.is_empty() {
                return;
            }
        }
    }
}

impl Session {
    /// The key of this session's concurrency limit (`EXAI_WS_SESSION_MAX_INFLIGHT`), stable across reconnects on
    /// one replica (the limit is per replica: calls still running on another replica do not count here). Also what
    /// the call records name as its session (`tool_executions`, the dashboard), so it holds the [`Session::tag`],
    /// never the id: two live sessions sharing a tag (odds about 1 in 2^32 per pair) would share the limit.
    pub(super) fn limit_key(&self) -> String {
        format!("ws session {}", self.tag())
    }

    /// What logs and records show of the session: the first 8 characters of its id (a UUID), enough to match
    /// a client's own id, far too few to resume it.
    pub(super) fn tag(&self) -> &str {
        shared::tag(&self.id)
    }

    /// Attaches connection `conn` (closing any other connection of this session here): queues the `hello_ack`,
    /// then every kept frame — from memory and from the store — oldest first. `from` is the replica that held the
    /// session until now, when not this one: its calls may still be running, so the session polls for their
    /// results: returns that replica when a poller should start.
    async fn resume(self: &Arc<Self>, from: Option<String>, conn: Conn) -> Option<String> {
        {
            let mut state = lock(&self.state);
            if let Some(old) = state.conn.take() {
                old.kick.cancel();
            }
            state.generation += 1;
            state.resuming += 1;
        }
        let stored = self.ctx.take_kept(&self.id).await;
        let mut orphans = Vec::new();
        let poll = {
            let mut state = lock(&self.state);
            if let Some(old) = state.conn.take() {
                old.kick.cancel();
            }
            state.generation += 1;
            state.resuming -= 1;
            let stored_names: HashSet<&str> = stored.iter().map(|(name, _)| name.as_str()).collect();
            let memory: Vec<Kept> = state.pending.drain(..).collect();
            for kept in memory.iter().filter(|k| !stored_names.contains(k.name.as_str())) {
                match kept.copy {
                    StoreCopy::Writing => {
                        state.claimed.insert(kept.name.clone());
                    }
                    StoreCopy::Written => orphans.push(kept.name.clone()),
                    StoreCopy::None | StoreCopy::Queued => {}
                }
            }
            let mut frames: BTreeMap<String, (String, bool)> = BTreeMap::new();
            for (name, body) in stored {
                if !state.claimed.remove(&name) {
                    frames.insert(name, (body.frame, body.is_final));
                }
            }
            for kept in memory {
                frames.insert(kept.name, (kept.text, kept.is_final));
            }
            self.trim(&mut frames);
            let finals = frames.values().filter(|(_, f)| *f).count();
            let _ = conn.tx.force(Out::live(frames::hello_ack(&self.id, true, finals)));
            for (text, _) in frames.into_values() {
                let _ = conn.tx.force(Out::live(text));
            }
            state.client = Some(conn.client);
            state.detached_at = None;
            state.used = true;
            state.conn = Some(Attached {
                id: conn.id,
                tx: conn.tx,
                kick: conn.kick,
            });
            let start = from.is_some() && state.remote_until.is_none();
            if from.is_some() {
                state.remote_until = Some(Instant::now() + self.ctx.poll_window);
            }
            start
        };
        if let Some(from) = &from {
            tracing::info!(session = %self.tag(), %from, "websocket session resumed from another replica");
        }
        self.ctx.claim(&self.id, &self.owner).await;
        for name in orphans {
            self.unkeep(&name).await;
        }
        from.filter(|_| poll)
    }

    /// Drops the oldest of the frames a resume is about to deliver past the kept caps (frames, bytes): the store
    /// may hold more than memory does.
    fn trim(&self, frames: &mut BTreeMap<String, (String, bool)>) {
        let caps = self.ctx.kept;
        let mut bytes: usize = frames.values().map(|(text, _)| text.len()).sum();
        while frames.len() > caps.frames || (bytes > caps.bytes && frames.len() > 1) {
            let Some((name, (text, _))) = frames.pop_first() else {
                break;
            };
            bytes -= text.len();
            tracing::warn!(session = %self.tag(), frame = %name,
                "too many kept frames to deliver (EXAI_WS_MAX_QUEUED_FRAMES / _BYTES); dropped the oldest");
        }
    }

    /// Sends a frame to the attached connection, or keeps it (unless `Live`) for the next one.
    pub(super) fn deliver(self: &Arc<Self>, text: String, kind: Kind) {
        let mut state = lock(&self.state);
        let text = match &state.conn {
            Some(conn) => match conn.tx.send(Out::Text { text, kind }) {
                Ok(()) => return,
                Err(Out::Text { text, .. }) => text,
                Err(_) => return,
            },
            None => text,
        };
        if kind != Kind::Live {
            self.keep(&mut state, text, kind == Kind::Final);
        }
    }

    /// A kept frame that connection `conn` could not write: to the session's new connection if it has moved,
    /// else kept for the next one.
    pub(super) fn rebuffer(self: &Arc<Self>, conn: u64, text: String, kind: Kind) {
        let mut state = lock(&self.state);
        if let Some(attached) = &state.conn
            && attached.id != conn
        {
            if let Err(Out::Text { text, kind }) = attached.tx.send(Out::Text { text, kind }) {
                self.keep(&mut state, text, kind == Kind::Final);
            }
            return;
        }
        self.keep(&mut state, text, kind == Kind::Final);
    }

    /// Keeps a frame while no connection is attached: in memory, and written to the store for whichever replica
    /// the client resumes on (not while a resume here is collecting: it takes the memory copy).
    fn keep(self: &Arc<Self>, state: &mut State, text: String, is_final: bool) {
        let seq = self.ctx.seq.fetch_add(1, Ordering::Relaxed);
        let name = shared::kept_name(now_ms(), &self.ctx.replica, seq);
        let writing = state.resuming == 0;
        if writing && !state.flushing {
            state.flushing = true;
            tokio::spawn(Arc::clone(self).flush());
        }
        let caps = self.ctx.kept;
        let mut bytes: usize = state.pending.iter().map(|k| k.text.len()).sum();
        while !state.pending.is_empty() && (state.pending.len() >= caps.frames || bytes + text.len() > caps.bytes) {
            let Some(dropped) = state.pending.pop_front() else {
                break;
            };
            bytes -= dropped.text.len();
            tracing::warn!(session = %self.tag(), frame = %dropped.name,
                "too many kept frames in memory (EXAI_WS_MAX_QUEUED_FRAMES / _BYTES); dropped the oldest");
        }
        state.pending.push_back(Kept {
            name,
            text,
            is_final,
            copy: if writing { StoreCopy::Queued } else { StoreCopy::None },
        });
    }

    /// Writes the queued kept frames to the store, one at a time and oldest first, so that a replica taking them
    /// meanwhile never gets a later frame without the earlier ones.
    async fn flush(self: Arc<Self>) {
        loop {
            let next = {
                let mut state = lock(&self.state);
                match state.pending.iter_mut().find(|k| k.copy == StoreCopy::Queued) {
                    Some(kept) => {
                        kept.copy = StoreCopy::Writing;
                        let body = KeptBody {
                            is_final: kept.is_final,
                            frame: kept.text.clone(),
                        };
                        (kept.name.clone(), body.encode())
                    }
                    None => {
                        state.flushing = false;
                        return;
                    }
                }
            };
            self.store_kept(next.0, next.1).await;
        }
    }

    /// Writes one kept frame to the store; once there, the memory copy goes (a failed write leaves it in memory,
    /// where only a resume on this replica finds it).
    async fn store_kept(&self, name: String, body: String) {
        let lapse = self.ctx.grace + shared::PENDING_MARGIN;
        let expires = now_ms() + lapse.as_millis() as i64;
        let scope = shared::pending_scope(&self.id);
        let written = self.ctx.store.put_shared(&scope, &name, &body, expires).await;
        let orphan = {
            let mut state = lock(&self.state);
            let claimed = state.claimed.remove(&name);
            let resuming = state.resuming > 0;
            match (&written, state.pending.iter().position(|k| k.name == name)) {
                // A resume collecting right now may have missed the store copy: it takes the memory one instead.
                (Ok(()), Some(i)) if resuming => {
                    state.pending[i].copy = StoreCopy::Written;
                    false
                }
                (Ok(()), Some(i)) => {
                    state.pending.remove(i);
                    false
                }
                (Err(_), Some(i)) => {
                    state.pending[i].copy = StoreCopy::None;
                    false
                }
                (Ok(()), None) => claimed,
                (Err(_), None) => false,
            }
        };
        if let Err(e) = &written {
            self.ctx.failed("keep", &self.id, e);
        }
        if orphan {
            self.unkeep(&name).await;
        }
    }

    /// Deletes the store copy of a kept frame that a resume delivered from memory.
    async fn unkeep(&self, name: &str) {
        if let Err(e) = self
            .ctx
            .store
            .delete_shared(&shared::pending_scope(&self.id), name)
            .await
        {
            self.ctx.failed("unkeep", &self.id, &e);
        }
    }

    /// Cancels the calls another replica asked to cancel (the client sent `cancel` there).
    async fn cancel_marked(&self) {
        match self
            .ctx
            .store
            .take_shared(&shared::cancel_scope(&self.id), now_ms())
            .await
        {
            Ok(marks) => {
                for mark in marks {
                    let found = self.cancel_call(&mark.name);
                    tracing::debug!(session = %self.tag(), request_id = %mark.name, found, "cancel from another replica");
                }
            }
            Err(e) => self.ctx.failed("take_cancels", &self.id, &e),
        }
    }

    /// Registers a call; `None` when `request_id` is already running in this session.
    pub(super) fn begin_call(&self, request_id: &str) -> Option<CancellationToken> {
        let mut state = lock(&self.state);
        if state.calls.contains_key(request_id) {
            return None;
        }
        let cancel = self.ended.child_token();
        state.used = true;
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

    /// A `cancel` for a call this replica does not run: when the session came from another replica, the call may
    /// run there, so a cancel mark goes to the store, where that replica finds it within `POLL`.
    pub(super) fn cancel_elsewhere(self: &Arc<Self>, request_id: &str) {
        if lock(&self.state).remote_until.is_none() {
            return;
        }
        let session = Arc::clone(self);
        let request_id = request_id.to_owned();
        tokio::spawn(async move {
            let expires = now_ms() + session.ctx.poll_window.as_millis() as i64;
            let scope = shared::cancel_scope(&session.id);
            if let Err(e) = session.ctx.store.put_shared(&scope, &request_id, "{}", expires).await {
                session.ctx.failed("cancel", &session.id, &e);
            }
        });
    }

    pub(super) fn running(&self) -> usize {
        lock(&self.state).calls.len()
    }
}

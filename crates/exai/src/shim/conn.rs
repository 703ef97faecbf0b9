//! The shim's one connection to the daemon: connects and says `hello`, routes every incoming frame by its
//! `request_id` through the correlation table, and reconnects with backoff (resuming the session) when it drops.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::calls::{Event, Table};
use super::frames::{self, Incoming};
use super::spawn::DaemonStarter;

/// How long a connection attempt (TCP, upgrade and `hello_ack`) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The shim sends a `ping` op this often; a connection silent for `SILENCE_LIMIT` is treated as dead.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// How often `--start-daemon` may start another daemon while none answers.
const RESTART_EVERY: Duration = Duration::from_secs(30);
/// The largest frame the shim accepts (the daemon's own limit is 32 MiB).
const MAX_FRAME: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub token: TokenSource,
    pub starter: Option<DaemonStarter>,
    /// How long a new call waits for a (re)connection before failing.
    pub connect_wait: Duration,
}

/// Where the `hello` token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// `EXAI_WS_TOKEN`.
    Set(String),
    /// The daemon's token file in this data directory (`exai_core::ws_token`), read at every attempt: a daemon
    /// the shim starts creates it before it listens.
    File(PathBuf),
    /// None that may be sent: the daemon's URL is not on loopback, and the token file is for this machine's daemon
    /// (which, off loopback, needs `EXAI_WS_TOKEN` anyway). What to tell the user.
    Missing(String),
}

impl TokenSource {
    fn resolve(&self) -> Result<String, Failure> {
        let fatal = |reason: String| Failure {
            reason,
            refused: false,
            fatal: true,
        };
        match self {
            Self::Set(token) => Ok(token.clone()),
            Self::File(dir) => match exai_core::ws_token::read(dir) {
                Ok(Some(token)) => Ok(token.expose().to_owned()),
                Ok(None) => Err(fatal(format!(
                    "no WebSocket token: {} does not exist (run the shim as the daemon's user with its data \
                     directory, or set EXAI_WS_TOKEN to the daemon's token)",
                    exai_core::ws_token::path(dir).display()
                ))),
                Err(e) => Err(fatal(e.to_string())),
            },
            Self::Missing(why) => Err(fatal(why.clone())),
        }
    }

    /// What to tell the user when the daemon refuses the token.
    fn refused(&self) -> String {
        match self {
            Self::Set(_) | Self::Missing(_) => {
                "the daemon refused the token (set EXAI_WS_TOKEN to the daemon's token)".to_owned()
            }
            Self::File(dir) => format!(
                "the daemon refused the token from {} (a daemon with another data directory or its own \
                 EXAI_WS_TOKEN? set EXAI_WS_TOKEN to its token)",
                exai_core::ws_token::path(dir).display()
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    /// Not connected yet, or between attempts; `reason` is the last failure, if any.
    Down {
        reason: Option<String>,
    },
    Up {
        out: mpsc::UnboundedSender<Message>,
    },
}

/// A handle on the daemon connection, cheap to clone.
#[derive(Clone, Debug)]
pub struct Daemon {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    table: Table,
    state: watch::Sender<State>,
    ever_up: AtomicBool,
    tools: Mutex<Option<Vec<Value>>>,
    /// Calls cancelled while disconnected: their `cancel` goes out on the next connection (the session resumes
    /// them, so the daemon would otherwise run them to the end).
    cancels: Mutex<Vec<String>>,
}

impl Daemon {
    /// Starts the connection task; it runs until `stop` fires (then cancels the calls still open on the daemon
    /// and closes the connection) and the returned handle finishes.
    pub fn start(settings: Settings, stop: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (state, _) = watch::channel(State::Down { reason: None });
        let daemon = Self {
            inner: Arc::new(Inner {
                settings,
                table: Table::new(),
                state,
                ever_up: AtomicBool::new(false),
                tools: Mutex::new(None),
                cancels: Mutex::new(Vec::new()),
            }),
        };
        let task = tokio::spawn(daemon.clone().run(stop));
        (daemon, task)
    }

    pub fn url(&self) -> &str {
        &self.inner.settings.url
    }

    /// The daemon's tools: the cached list (refreshed on every connection), else asked for now.
    pub async fn tools(&self) -> Result<Vec<Value>, String> {
        if let Some(tools) = self.inner.tools.lock().unwrap().clone() {
            return Ok(tools);
        }
        let out = self.connected().await?;
        let (id, rx) = self.inner.table.open_list();
        if out.send(Message::text(frames::list_tools(&id))).is_err() {
            self.inner.table.close_list(&id);
            return Err(format!("the connection to the exai daemon at {} dropped", self.url()));
        }
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the shim stopped".into()),
            Err(_) => {
                self.inner.table.close_list(&id);
                Err(format!(
                    "the exai daemon at {} did not list its tools within 10 s",
                    self.url()
                ))
            }
        }
    }

    /// Starts a call: returns its request id and its events (progress, then one final event).
    pub async fn call(
        &self,
        name: &str,
        arguments: &Map<String, Value>,
    ) -> Result<(String, mpsc::UnboundedReceiver<Event>), String> {
        let out = self.connected().await?;
        let (id, rx) = self.inner.table.open_call();
        if out
            .send(Message::text(frames::call_tool(&id, name, arguments)))
            .is_err()
        {
            self.inner.table.close_call(&id);
            return Err(format!("the connection to the exai daemon at {} dropped", self.url()));
        }
        Ok((id, rx))
    }

    /// Cancels a call the caller gave up on: forgets it and tells the daemon to drop its work.
    pub fn cancel(&self, id: &str) {
        if !self.inner.table.close_call(id) {
            return;
        }
        match &*self.inner.state.borrow() {
            State::Up { out } if out.send(Message::text(frames::cancel(id))).is_ok() => {}
            _ => self.inner.cancels.lock().unwrap().push(id.to_owned()),
        }
    }

    /// Forgets a call without cancelling it (it already ended).
    pub fn forget(&self, id: &str) {
        self.inner.table.close_call(id);
    }

    /// The writer of the current connection, waiting up to `connect_wait` for one. Fails at once when no daemon
    /// has ever answered and the shim will not start one.
    async fn connected(&self) -> Result<mpsc::UnboundedSender<Message>, String> {
        let mut state = self.inner.state.subscribe();
        let wait = async {
            loop {
                let failed = match &*state.borrow_and_update() {
                    State::Up { out } => return Ok(out.clone()),
                    State::Down { reason: Some(reason) } => Some(reason.clone()),
                    State::Down { reason: None } => None,
                };
                if let Some(reason) = failed
                    && !self.inner.ever_up.load(Ordering::Relaxed)
                    && self.inner.settings.starter.is_none()
                {
                    return Err(reason);
                }
                if state.changed().await.is_err() {
                    return Err("the shim is shutting down".to_owned());
                }
            }
        };
        match tokio::time::timeout(self.inner.settings.connect_wait, wait).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(reason)) => Err(self.unreachable(&reason)),
            Err(_) => {
                let reason = match &*self.inner.state.borrow() {
                    State::Down { reason: Some(r) } => r.clone(),
                    _ => "no connection".to_owned(),
                };
                Err(self.unreachable(&reason))
            }
        }
    }

    fn unreachable(&self, reason: &str) -> String {
        if reason.contains("daemon refused") {
            return format!("cannot use the exai daemon at {}: {reason}", self.inner.settings.url);
        }
        let start = match &self.inner.settings.starter {
            Some(_) => "the shim tried to start one (`exai serve`); check its log in the data directory",
            None => "start it with `exai serve` (or run the shim with `exai shim --start-daemon`)",
        };
        format!(
            "no exai daemon reachable at {} ({reason}); {start}",
            self.inner.settings.url
        )
    }

    /// Connects, serves the connection until it drops, and reconnects with backoff, until `stop`.
    async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut session: Option<String> = None;
        // With `--start-daemon`, a daemon is started when none answers, at most once per `RESTART_EVERY`.
        let mut started_daemon: Option<tokio::time::Instant> = None;
        loop {
            let attempt = tokio::select! {
                r = self.connect(session.as_deref()) => r,
                () = stop.cancelled() => return,
            };
            match attempt {
                Ok((ws, ack)) => {
                    backoff.reset();
                    if let Some(old) = &session
                        && !ack.resumed
                    {
                        let lost = self.inner.table.fail_all(&format!(
                            "the exai daemon lost this call while the shim was reconnecting (session {old} \
                             expired or the daemon restarted); retry it"
                        ));
                        if lost > 0 {
                            tracing::warn!(lost, "daemon did not resume the session; its calls failed");
                        }
                    }
                    // The id is a resume credential: logs (often kept by the assistant) show only its first 8 characters.
                    let tag: String = ack.session_id.chars().take(8).collect();
                    tracing::info!(url = %self.url(), session = %tag, resumed = ack.resumed, "connected to the exai daemon");
                    session = Some(ack.session_id);
                    let reason = self.serve(ws, &stop).await;
                    self.inner.table.fail_lists(&reason);
                    if stop.is_cancelled() {
                        return;
                    }
                    tracing::warn!(url = %self.url(), %reason, open_calls = self.inner.table.open_calls(), "daemon connection lost; reconnecting");
                    self.inner.state.send_replace(State::Down { reason: Some(reason) });
                }
                Err(failure) => {
                    if failure.fatal {
                        self.inner.table.fail_all(&failure.reason);
                    }
                    if failure.refused
                        && started_daemon.is_none_or(|at| at.elapsed() > RESTART_EVERY)
                        && let Some(starter) = &self.inner.settings.starter
                    {
                        started_daemon = Some(tokio::time::Instant::now());
                        match starter.start() {
                            Ok(pid) => tracing::info!(pid, url = %self.url(), "started an exai daemon"),
                            Err(e) => tracing::warn!(error = %e, "could not start an exai daemon"),
                        }
                    }
                    tracing::debug!(reason = %failure.reason, "daemon connection attempt failed");
                    self.inner.state.send_replace(State::Down {
                        reason: Some(failure.reason),
                    });
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One connection attempt: TCP, WebSocket upgrade, `hello` → `hello_ack`.
    async fn connect(&self, session: Option<&str>) -> Result<(Ws, Ack), Failure> {
        let settings = &self.inner.settings;
        let attempt = async {
            let mut config = WebSocketConfig::default();
            config.max_message_size = Some(MAX_FRAME);
            config.max_frame_size = Some(MAX_FRAME);
            let (mut ws, _) = tokio_tungstenite::connect_async_with_config(settings.url.as_str(), Some(config), true)
                .await
                .map_err(|e| {
                    let refused = matches!(&e, tokio_tungstenite::tungstenite::Error::Io(io)
                        if io.kind() == std::io::ErrorKind::ConnectionRefused);
                    Failure {
                        reason: if refused {
                            "connection refused".to_owned()
                        } else {
                            e.to_string()
                        },
                        refused,
                        fatal: false,
                    }
                })?;
            let token = settings.token.resolve()?;
            let hello = frames::hello(Some(&token), session);
            ws.send(Message::text(hello)).await.map_err(Failure::from_ws)?;
            loop {
                let Some(msg) = ws.next().await else {
                    return Err(Failure::plain("the daemon closed the connection before hello_ack"));
                };
                let text = match msg.map_err(Failure::from_ws)? {
                    Message::Text(text) => text,
                    Message::Close(frame) => {
                        let why = frame
                            .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                            .unwrap_or_default();
                        return Err(Failure::plain(&format!("the daemon closed the connection ({why})")));
                    }
                    _ => continue,
                };
                match Incoming::parse(&text) {
                    Ok(Incoming::HelloAck {
                        ok: true, session_id, ..
                    }) => {
                        let resumed = serde_json::from_str::<Value>(&text)
                            .ok()
                            .and_then(|v| v.get("resumed").and_then(Value::as_bool))
                            .unwrap_or(session.is_some() && session == session_id.as_deref());
                        return Ok((
                            ws,
                            Ack {
                                session_id: session_id.unwrap_or_default(),
                                resumed,
                            },
                        ));
                    }
                    Ok(Incoming::HelloAck { ok: false, error, .. }) => {
                        let error = error.unwrap_or_else(|| "refused".into());
                        let fatal = error == "unauthorized";
                        let reason = match fatal {
                            true => settings.token.refused(),
                            false => format!("the daemon refused the connection: {error}"),
                        };
                        return Err(Failure {
                            reason,
                            refused: false,
                            fatal,
                        });
                    }
                    other => tracing::debug!(frame = ?other, "frame before hello_ack ignored"),
                }
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Failure::plain("no hello_ack within 10 s")),
        }
    }

    /// Serves one connection: a writer task fed by a channel, this task reading; returns why it ended.
    async fn serve(&self, ws: Ws, stop: &CancellationToken) -> String {
        let (mut sink, mut stream) = ws.split();
        let (out, mut queue) = mpsc::unbounded_channel::<Message>();
        let mut writer = tokio::spawn(async move {
            while let Some(msg) = queue.recv().await {
                if let Err(e) = sink.send(msg).await {
                    return format!("write failed: {e}");
                }
            }
            let _ = sink.close().await;
            "closed by the shim".to_owned()
        });
        self.inner.ever_up.store(true, Ordering::Relaxed);
        // Refresh the tool list on every connection (the daemon may have restarted with other tools).
        let list_id = self.inner.table.fresh_id();
        let _ = out.send(Message::text(frames::list_tools(&list_id)));
        for id in std::mem::take(&mut *self.inner.cancels.lock().unwrap()) {
            let _ = out.send(Message::text(frames::cancel(&id)));
        }
        self.inner.state.send_replace(State::Up { out: out.clone() });
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_heard = tokio::time::Instant::now();
        let reason = loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        break format!("nothing heard from the daemon for {} s", SILENCE_LIMIT.as_secs());
                    }
                    let _ = out.send(Message::text(frames::ping(&self.inner.table.fresh_id())));
                    continue;
                }
                w = &mut writer => break w.unwrap_or_else(|e| format!("writer stopped: {e}")),
                () = stop.cancelled() => {
                    // The assistant went away: drop the work of its calls rather than let the daemon finish them.
                    for id in self.inner.table.open_ids() {
                        let _ = out.send(Message::text(frames::cancel(&id)));
                    }
                    drop(out);
                    let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
                    return "shutting down".to_owned();
                }
            };
            last_heard = tokio::time::Instant::now();
            match msg {
                None => break "the daemon closed the connection".to_owned(),
                Some(Err(e)) => break format!("read failed: {e}"),
                Some(Ok(Message::Text(text))) => self.route(&text, &list_id, &out),
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) => format!("the daemon closed the connection ({} {})", u16::from(f.code), f.reason),
                        None => "the daemon closed the connection".to_owned(),
                    };
                }
                Some(Ok(Message::Binary(_))) => tracing::warn!("binary frame from the daemon ignored"),
                Some(Ok(_)) => {} // ping/pong control frames: tungstenite answers pings itself
            }
        };
        self.inner.state.send_replace(State::Down {
            reason: Some(reason.clone()),
        });
        drop(out);
        writer.abort();
        reason
    }

    /// Routes one text frame to the call (or list request) it names.
    fn route(&self, text: &str, list_id: &str, out: &mpsc::UnboundedSender<Message>) {
        let table = &self.inner.table;
        let frame = match Incoming::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(error = %e, "unparsable frame from the daemon ignored");
                return;
            }
        };
        let unmatched = |id: &str, op: &str| tracing::debug!(request_id = %id, op, "frame for no open call ignored");
        match frame {
            Incoming::ListToolsRes { request_id, tools } => {
                *self.inner.tools.lock().unwrap() = Some(tools.clone());
                if request_id.as_deref() != Some(list_id) {
                    table.deliver_list(request_id.as_deref(), Ok(tools));
                }
            }
            Incoming::Progress { request_id, message } => {
                if !table.deliver(&request_id, Event::Progress(message)) {
                    unmatched(&request_id, "progress");
                }
            }
            Incoming::StreamChunk { request_id, chunk } => {
                if !table.deliver(&request_id, Event::Progress(chunk)) {
                    unmatched(&request_id, "stream_chunk");
                }
            }
            Incoming::StreamComplete { request_id } => tracing::trace!(%request_id, "stream complete"),
            Incoming::CallToolRes { request_id, frame, .. } => {
                if !table.deliver(&request_id, Event::Result(frame)) {
                    unmatched(&request_id, "call_tool_res");
                }
            }
            Incoming::Error {
                request_id,
                code,
                message,
            } => match request_id {
                Some(id) if table.has_list(&id) => {
                    table.deliver_list(Some(&id), Err(format!("{code}: {message}")));
                }
                Some(id)
                    if table.deliver(
                        &id,
                        Event::Error {
                            code: code.clone(),
                            message: message.clone(),
                        },
                    ) => {}
                Some(id) => tracing::debug!(request_id = %id, %code, "error frame for no open call ignored"),
                None => tracing::warn!(%code, %message, "error frame from the daemon"),
            },
            Incoming::Ping { request_id } => {
                let mut pong = serde_json::json!({"op": "pong"});
                if let Some(id) = request_id {
                    pong["request_id"] = id.into();
                }
                let _ = out.send(Message::text(pong.to_string()));
            }
            Incoming::Pong => {}
            Incoming::HelloAck { .. } => tracing::debug!("unexpected hello_ack ignored"),
            Incoming::Unknown { op } => tracing::info!(%op, "frame with an unknown op ignored"),
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Ack {
    session_id: String,
    resumed: bool,
}

/// Why a connection attempt failed.
struct Failure {
    reason: String,
    /// Nothing listens there (so `--start-daemon` may start one).
    refused: bool,
    /// Retrying cannot help the calls waiting now (a wrong token): fail them.
    fatal: bool,
}

impl Failure {
    fn plain(reason: &str) -> Self {
        Self {
            reason: reason.to_owned(),
            refused: false,
            fatal: false,
        }
    }

    fn from_ws(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::plain(&e.to_string())
    }
}

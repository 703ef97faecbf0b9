//! The request log: one `Recorded` per HTTP request (method, path, headers, JSON body, outcome), and the
//! `Guard` that notices when a client hangs up before its response finished.

use serde_json::Value;

use crate::state::SimState;

/// Where the script that drove a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptSource {
    /// A one-shot script queued with `push_script`.
    Queued,
    /// The request's `x-sim-script` header.
    Header,
    /// The model's configured script.
    Model,
    /// No script: the default echo.
    Default,
}

/// How a request ended (so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still being answered (or hanging as scripted).
    InProgress,
    /// The whole response was handed to the connection.
    Completed,
    /// The simulator aborted it on purpose (`reset_after_chunks`).
    Aborted,
    /// The client went away before the response finished.
    ClientHungUp,
}

/// One request as the simulator saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// 1-based arrival order.
    pub seq: u64,
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// All request headers, names lower-cased, in arrival order (including `authorization`).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `None` when empty or not JSON.
    pub body: Option<Value>,
    /// `body.model`, when present.
    pub model: Option<String>,
    /// `body.stream == true`.
    pub stream: bool,
    /// Which script applied (chat requests that got that far).
    pub script_source: Option<ScriptSource>,
    /// Response status, once decided (0 before).
    pub status: u16,
    /// Body chunks written so far (SSE events for streams).
    pub chunks_sent: usize,
    pub outcome: Outcome,
}

impl Recorded {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bearer token from `Authorization`, if any.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// True when the client hung up before the response finished.
    pub fn hung_up(&self) -> bool {
        self.outcome == Outcome::ClientHungUp
    }

    /// The request's `messages`, if the body had them.
    pub fn messages(&self) -> &[Value] {
        self.body
            .as_ref()
            .and_then(|b| b.get("messages"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Lives as long as a response is being produced; dropping it unfinished means the client hung up (hyper
/// drops the handler future or the body stream when the connection closes).
pub(crate) struct Guard {
    state: SimState,
    seq: u64,
    armed: bool,
    /// Counted among the chat requests in flight until finished or dropped.
    counted: bool,
}

impl Guard {
    pub(crate) fn new(state: SimState, seq: u64) -> Self {
        Guard {
            state,
            seq,
            armed: true,
            counted: false,
        }
    }

    /// Counts this request among the chat requests in flight (see `SimState::peak_chats_in_flight`).
    pub(crate) fn count_in_flight(&mut self) {
        if !self.counted {
            self.counted = true;
            self.state.chat_started();
        }
    }

    fn uncount(&mut self) {
        if self.counted {
            self.counted = false;
            self.state.chat_ended();
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Recorded)) {
        self.state.update_record(self.seq, f);
    }

    pub(crate) fn set_status(&self, status: u16) {
        self.update(|r| r.status = status);
    }

    pub(crate) fn chunk_sent(&self) {
        self.update(|r| r.chunks_sent += 1);
    }

    pub(crate) fn finish(&mut self, outcome: Outcome) {
        self.uncount();
        if self.armed {
            self.armed = false;
            self.update(|r| r.outcome = outcome);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.uncount();
        if self.armed && !self.state.is_shutting_down() {
            self.update(|r| r.outcome = Outcome::ClientHungUp);
        }
    }
}

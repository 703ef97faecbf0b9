//! `SimState`: the shared, cloneable heart of a simulator — configuration, the one-shot script queue, the
//! request log and the shutdown token. Tests drive a running simulator through it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{LatencyProfile, SimConfig};
use crate::record::{Outcome, Recorded, ScriptSource};
use crate::rng::Rng;
use crate::script::Script;

/// Shared state of one simulator; cheap to clone. Build one with [`SimState::new`] to mount
/// [`crate::router`] yourself, or get it from [`crate::SimHandle::state`].
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Inner>,
}

struct Inner {
    config: RwLock<SimConfig>,
    queue: Mutex<VecDeque<(String, Script)>>,
    records: Mutex<VecDeque<Recorded>>,
    next_seq: AtomicU64,
    /// Chat requests being answered now, and the most at once since start or the last reset.
    chats_in_flight: AtomicUsize,
    peak_chats_in_flight: AtomicUsize,
    rng: Rng,
    changed: Notify,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("queued", &self.queued())
            .field("requests", &lock(&self.inner.records).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let rng = Rng::new(config.seed);
        SimState {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                queue: Mutex::new(VecDeque::new()),
                records: Mutex::new(VecDeque::new()),
                next_seq: AtomicU64::new(1),
                chats_in_flight: AtomicUsize::new(0),
                peak_chats_in_flight: AtomicUsize::new(0),
                rng,
                changed: Notify::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// A snapshot of the configuration.
    pub fn config(&self) -> SimConfig {
        self.inner.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces (or with `None` removes) one model's default script while running; adds the model if needed.
    pub fn set_model_script(&self, model: &str, script: Option<Script>) {
        let mut config = self.inner.config.write().unwrap_or_else(|p| p.into_inner());
        match config.models.iter_mut().find(|m| m.id == model) {
            Some(m) => m.script = script,
            None => {
                let mut spec = crate::config::ModelSpec::new(model);
                spec.script = script;
                config.models.push(spec);
            }
        }
    }

    /// Switches the latency profile while running.
    pub fn set_latency(&self, latency: LatencyProfile) {
        self.inner.config.write().unwrap_or_else(|p| p.into_inner()).latency = latency;
    }

    /// Queues a one-shot script for the next chat request whose model matches `target`: an exact model id,
    /// `"*"` for any model, or a prefix ending in `*` (`"glm-*"`). Queued scripts are used in order.
    pub fn push_script(&self, target: impl Into<String>, script: Script) {
        lock(&self.inner.queue).push_back((target.into(), script));
    }

    /// How many one-shot scripts are still queued.
    pub fn queued(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    /// Every request so far (up to `SimConfig::max_recorded`, oldest dropped first), in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.records).iter().cloned().collect()
    }

    /// Only the chat-completion requests.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .collect()
    }

    /// Chat requests being answered right now.
    pub fn chats_in_flight(&self) -> usize {
        self.inner.chats_in_flight.load(Ordering::SeqCst)
    }

    /// The most chat requests answered at once since start (or the last [`SimState::reset`]).
    pub fn peak_chats_in_flight(&self) -> usize {
        self.inner.peak_chats_in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn chat_started(&self) {
        let now = self.inner.chats_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.peak_chats_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    pub(crate) fn chat_ended(&self) {
        self.inner.chats_in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Forgets recorded requests and queued scripts (configuration stays).
    pub fn reset(&self) {
        self.inner
            .peak_chats_in_flight
            .store(self.chats_in_flight(), Ordering::SeqCst);
        lock(&self.inner.queue).clear();
        lock(&self.inner.records).clear();
        self.inner.changed.notify_waiters();
    }

    /// Waits until `pred` holds for the request log, or `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Recorded]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if pred(lock(&self.inner.records).make_contiguous()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(lock(&self.inner.records).make_contiguous());
            }
        }
    }

    pub(crate) fn take_queued(&self, model: &str) -> Option<Script> {
        let mut queue = lock(&self.inner.queue);
        let pos = queue.iter().position(|(target, _)| target_matches(target, model))?;
        queue.remove(pos).map(|(_, s)| s)
    }

    pub(crate) fn record(&self, mut rec: Recorded) -> u64 {
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        rec.seq = seq;
        let limit = self
            .inner
            .config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .max_recorded
            .max(1);
        {
            let mut records = lock(&self.inner.records);
            while records.len() >= limit {
                records.pop_front();
            }
            records.push_back(rec);
        }
        self.inner.changed.notify_waiters();
        seq
    }

    pub(crate) fn update_record(&self, seq: u64, f: impl FnOnce(&mut Recorded)) {
        {
            let mut records = lock(&self.inner.records);
            match records.iter_mut().rev().find(|r| r.seq == seq) {
                Some(r) => f(r),
                None => return,
            }
        }
        self.inner.changed.notify_waiters();
    }

    pub(crate) fn rng(&self) -> &crate::rng::Rng {
        &self.inner.rng
    }

    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Marks every still-running request as cut off by the shutdown and wakes all sleeping handlers.
    pub(crate) fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.changed.notify_waiters();
    }

    /// Counts requests that are still in progress.
    pub fn in_progress(&self) -> usize {
        lock(&self.inner.records)
            .iter()
            .filter(|r| r.outcome == Outcome::InProgress)
            .count()
    }

    pub(crate) fn script_source_label(source: ScriptSource) -> &'static str {
        match source {
            ScriptSource::Queued => "queued",
            ScriptSource::Header => "header",
            ScriptSource::Model => "model",
            ScriptSource::Default => "default",
        }
    }
}

fn target_matches(target: &str, model: &str) -> bool {
    match target.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => target == model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_exact_star_and_prefix() {
        assert!(target_matches("glm-4.6", "glm-4.6"));
        assert!(!target_matches("glm-4.6", "glm-4.5"));
        assert!(target_matches("*", "anything"));
        assert!(target_matches("glm-*", "glm-4.5-air"));
        assert!(!target_matches("glm-*", "kimi-k2-0905-preview"));
    }

    #[test]
    fn the_log_keeps_only_the_newest_requests() {
        let state = SimState::new(SimConfig {
            max_recorded: 3,
            ..SimConfig::default()
        });
        for _ in 0..5 {
            state.record(Recorded {
                seq: 0,
                method: "GET".into(),
                path: "/v1/models".into(),
                headers: Vec::new(),
                body: None,
                model: None,
                stream: false,
                script_source: None,
                status: 0,
                chunks_sent: 0,
                outcome: Outcome::InProgress,
            });
        }
        let seqs: Vec<u64> = state.requests().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(state.in_progress(), 3);
    }

    #[test]
    fn queued_scripts_are_taken_in_order_per_target() {
        let state = SimState::new(SimConfig::default());
        state.push_script("glm-4.6", Script::status(503));
        state.push_script("*", Script::status(500));
        state.push_script("glm-4.6", Script::status(429));
        assert_eq!(state.take_queued("kimi-k2-0905-preview").unwrap().status, Some(500));
        assert_eq!(state.take_queued("glm-4.6").unwrap().status, Some(503));
        assert_eq!(state.take_queued("glm-4.6").unwrap().status, Some(429));
        assert!(state.take_queued("glm-4.6").is_none());
        assert_eq!(state.queued(), 0);
    }
}

//! The live view of what the server does: a bounded window of recent tool calls, a broadcast of events for the
//! dashboard's stream, and a bounded hand-off to the auditor. Recording never blocks, fails or slows a call.
//!
//! - [`window`]: statistics over a window of calls (rate, error rate, percentiles, per tool, per error kind, trend).
//! - [`alerts`]: the alert rules (pure evaluation) and the loop that raises, clears, stores and exports them.
//! - [`auditor`]: the optional AI auditor: batches of events to a cheap model, observations stored.
//! - [`journal`]: the `tool_executions` writer: batched, one writer at a time, bounded backlog.
//! - [`host`]: the process's CPU and memory, and the memory it may use (for the `cpu` and `memory` rules).
//! - `tasks`: [`start`], which spawns the alert loop and the auditor for `exai serve`.

pub mod alerts;
pub mod auditor;
pub mod host;
pub mod journal;
mod tasks;
pub mod window;

pub use tasks::start;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::store::Execution;

/// Most calls kept in memory (about 200 bytes each); older ones are only in the `tool_executions` table.
pub const RECENT_CAP: usize = 20_000;
/// How many events a slow dashboard stream may fall behind before it skips ahead.
const LIVE_CAPACITY: usize = 1024;

/// How bad an alert or an auditor observation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// An alert rule started or stopped firing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertChange {
    /// The rule's stable name (`error_rate`, `p95_latency_simple`, `circuit_open`, ...).
    pub rule: String,
    pub severity: Severity,
    /// What was seen, with the value and the threshold.
    pub message: String,
    /// True when raised, false when cleared.
    pub firing: bool,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// Something the dashboard's stream and the auditor hear about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A tool call finished.
    Call(Execution),
    /// An alert was raised or cleared.
    Alert(AlertChange),
}

/// The hub every finished call and alert change goes through.
#[derive(Debug)]
pub struct Observe {
    recent: Mutex<VecDeque<Execution>>,
    /// Alerts firing now, by rule.
    firing: Mutex<BTreeMap<String, AlertChange>>,
    live: broadcast::Sender<Event>,
    auditor: Mutex<Option<mpsc::Sender<Event>>>,
}

impl Default for Observe {
    fn default() -> Self {
        Self {
            recent: Mutex::new(VecDeque::new()),
            firing: Mutex::new(BTreeMap::new()),
            live: broadcast::channel(LIVE_CAPACITY).0,
            auditor: Mutex::new(None),
        }
    }
}

impl Observe {
    /// Seeds the window with calls from before a restart (any order; kept oldest first).
    pub fn preload(&self, mut calls: Vec<Execution>) {
        calls.sort_by_key(|c| c.at_ms);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        for call in calls.into_iter().rev().take(RECENT_CAP).rev() {
            recent.push_back(call);
        }
        while recent.len() > RECENT_CAP {
            recent.pop_front();
        }
    }

    /// Adds a finished call to the window and tells the stream and the auditor.
    pub fn record_call(&self, call: Execution) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_CAP {
                recent.pop_front();
            }
            recent.push_back(call.clone());
        }
        self.publish(Event::Call(call));
    }

    /// Tells the stream and the auditor that an alert changed, and keeps the set of firing alerts.
    pub fn record_alert(&self, change: AlertChange) {
        {
            let mut firing = self.firing.lock().unwrap_or_else(|e| e.into_inner());
            if change.firing {
                firing.insert(change.rule.clone(), change.clone());
            } else {
                firing.remove(&change.rule);
            }
        }
        self.publish(Event::Alert(change));
    }

    /// The alerts firing now, by rule name.
    pub fn firing_alerts(&self) -> Vec<AlertChange> {
        let firing = self.firing.lock().unwrap_or_else(|e| e.into_inner());
        firing.values().cloned().collect()
    }

    fn publish(&self, event: Event) {
        let auditor = self.auditor.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(tx) = auditor
            && let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(event.clone())
        {
            metrics::counter!("exai_auditor_events_dropped_total").increment(1);
        }
        // No subscriber is not an error: nobody has the dashboard open.
        let _ = self.live.send(event);
    }

    /// A receiver of every event from now on (the dashboard's stream).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// Routes events to the auditor from now on, dropping (and counting) those that do not fit `tx`'s buffer.
    pub fn attach_auditor(&self, tx: mpsc::Sender<Event>) {
        *self.auditor.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// Calls that finished at or after `since_ms` (Unix ms), oldest first.
    pub fn calls_since(&self, since_ms: i64) -> Vec<Execution> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let start = recent.partition_point(|c| c.at_ms < since_ms);
        recent.range(start..).cloned().collect()
    }

    /// The newest `n` calls, newest first.
    pub fn latest(&self, n: usize) -> Vec<Execution> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().rev().take(n).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at_ms: i64, tool: &str) -> Execution {
        Execution {
            at_ms,
            tool: tool.into(),
            provider: None,
            model: None,
            latency_ms: 5,
            status: "ok".into(),
            error_kind: None,
            tokens_in: None,
            tokens_out: None,
            session: None,
        }
    }

    #[test]
    fn keeps_calls_in_order_and_bounded() {
        let observe = Observe::default();
        observe.preload(vec![call(30, "b"), call(10, "a")]);
        observe.record_call(call(40, "c"));
        let since: Vec<_> = observe.calls_since(20).into_iter().map(|c| c.tool).collect();
        assert_eq!(since, ["b", "c"]);
        assert_eq!(observe.latest(1)[0].tool, "c");
        for i in 0..RECENT_CAP as i64 {
            observe.record_call(call(100 + i, "x"));
        }
        assert_eq!(observe.calls_since(0).len(), RECENT_CAP);
        assert_eq!(observe.calls_since(0)[0].at_ms, 100);
    }

    #[tokio::test]
    async fn streams_events_and_drops_what_the_auditor_cannot_take() {
        let observe = Observe::default();
        let mut live = observe.subscribe();
        let (tx, mut rx) = mpsc::channel(1);
        observe.attach_auditor(tx);
        observe.record_call(call(1, "a"));
        observe.record_call(call(2, "b"));
        match live.recv().await.unwrap() {
            Event::Call(c) => assert_eq!(c.tool, "a"),
            other => panic!("unexpected {other:?}"),
        }
        match rx.recv().await.unwrap() {
            Event::Call(c) => assert_eq!(c.tool, "a"),
            other => panic!("unexpected {other:?}"),
        }
        // The second call did not fit the auditor's buffer of one and was dropped, not queued.
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn keeps_the_firing_alerts() {
        let observe = Observe::default();
        let change = |rule: &str, firing| AlertChange {
            rule: rule.into(),
            severity: Severity::Warning,
            message: String::new(),
            firing,
            at_ms: 1,
        };
        observe.record_alert(change("error_rate", true));
        observe.record_alert(change("circuit_open", true));
        observe.record_alert(change("error_rate", false));
        let rules: Vec<_> = observe.firing_alerts().into_iter().map(|a| a.rule).collect();
        assert_eq!(rules, ["circuit_open"]);
    }
}

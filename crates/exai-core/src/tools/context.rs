//! What a running tool call gets: the shared [`App`], a way to report progress (a no-op unless the
//! caller sent a progress token), the call's cancellation token and its deadline.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::resilience::budget::Budget;

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
    /// The message is a piece of the model's answer (not a status line such as a heartbeat), so transports
    /// that tell them apart (the WebSocket daemon's `stream_chunk`) can.
    pub answer_text: bool,
}

type Report = dyn Fn(Progress) -> BoxFuture<'static, ()> + Send + Sync;

/// Delivers progress to the caller; [`ProgressSink::none`] when the caller did not ask for progress.
#[derive(Clone, Default)]
pub struct ProgressSink(Option<Arc<Report>>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ProgressSink(active)"
        } else {
            "ProgressSink(none)"
        })
    }
}

impl ProgressSink {
    pub fn none() -> Self {
        Self(None)
    }
    pub fn new(report: impl Fn(Progress) -> BoxFuture<'static, ()> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(report)))
    }
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }
    /// A sink whose reports are numbered from its own counter, whatever number they are sent with: several
    /// calls through it (one after another, or at once) still report a strictly increasing progress.
    pub fn sequenced(&self) -> Self {
        let Some(inner) = self.0.clone() else {
            return Self::none();
        };
        // Held while a report is handed on, so numbers reach the transport in order.
        let counter = Arc::new(tokio::sync::Mutex::new(0u64));
        Self::new(move |p: Progress| {
            let (inner, counter) = (inner.clone(), counter.clone());
            Box::pin(async move {
                let mut n = counter.lock().await;
                *n += 1;
                inner(Progress {
                    progress: *n as f64,
                    ..p
                })
                .await;
            })
        })
    }

    /// A sink whose messages start with `[label] ` (to tell apart calls made at once).
    pub fn tagged(&self, label: &str) -> Self {
        let Some(inner) = self.0.clone() else {
            return Self::none();
        };
        let label = label.to_owned();
        Self::new(move |p: Progress| {
            inner(Progress {
                message: p.message.map(|m| format!("[{label}] {m}")),
                ..p
            })
        })
    }

    /// Sends one report and waits until it is handed to the transport, so reports keep their order
    /// relative to the final result.
    pub async fn report(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        if let Some(report) = &self.0 {
            report(Progress {
                progress,
                total,
                message,
                answer_text: false,
            })
            .await;
        }
    }

    /// Like [`ProgressSink::report`], for a piece of the model's answer.
    pub async fn report_text(&self, progress: f64, text: String) {
        if let Some(report) = &self.0 {
            report(Progress {
                progress,
                total: None,
                message: Some(text),
                answer_text: true,
            })
            .await;
        }
    }
}

/// Which model answered a call and the tokens its answers used, filled in by every model call the tool makes
/// (clones share one record), so the server can log the call with them.
#[derive(Debug, Clone, Default)]
pub struct CallUsage(Arc<std::sync::Mutex<Option<UsedModel>>>);

/// The last answering provider and model, and the tokens of all answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsedModel {
    pub provider: String,
    pub model: String,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
}

impl CallUsage {
    /// Adds one answer.
    pub fn add(&self, provider: &str, model: &str, usage: Option<crate::provider::Usage>) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let used = slot.get_or_insert_with(UsedModel::default);
        used.provider = provider.to_owned();
        used.model = model.to_owned();
        if let Some(u) = usage {
            *used.tokens_in.get_or_insert(0) += u.input_tokens as i64;
            *used.tokens_out.get_or_insert(0) += u.output_tokens as i64;
        }
    }

    /// What was added so far (`None` when no model answered).
    pub fn get(&self) -> Option<UsedModel> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Debug, Clone)]
pub struct ToolContext {
    pub app: Arc<App>,
    pub progress: ProgressSink,
    pub cancel: CancellationToken,
    /// The call's one time budget: everything the tool does spends from what is left, and records where.
    pub budget: Budget,
    /// The models that answered and their tokens.
    pub usage: CallUsage,
}

impl ToolContext {
    /// Time left before the deadline (zero once it has passed).
    pub fn remaining(&self) -> std::time::Duration {
        self.budget.remaining()
    }
}

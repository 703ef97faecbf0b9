//! A call's one time budget: created at entry with the tier's deadline, spent by everything below, and able to
//! say where the time went (queued X ms, attempt 1 Y ms, backoff Z ms, ...) when it runs out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// A deadline plus a ledger of what it was spent on. Cheap to clone; clones share the ledger.
#[derive(Debug, Clone)]
pub struct Budget {
    started: Instant,
    deadline: Instant,
    spent: Arc<Mutex<Vec<(String, Duration)>>>,
}

impl Budget {
    /// A budget of `total` from now.
    pub fn new(total: Duration) -> Self {
        let started = Instant::now();
        Self {
            started,
            deadline: started + total,
            spent: Arc::default(),
        }
    }

    /// A budget that ends at `deadline` (the handler's deadline for this call).
    pub fn until(deadline: Instant) -> Self {
        Self {
            started: Instant::now(),
            deadline,
            spent: Arc::default(),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn total(&self) -> Duration {
        self.deadline - self.started
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn is_spent(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Records that `what` took `took` (e.g. `queued for kimi`, `attempt 1 kimi-k2-0905-preview`).
    pub fn record(&self, what: impl Into<String>, took: Duration) {
        self.spent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what.into(), took));
    }

    /// Runs `work`, recording how long it took under `what`.
    pub async fn spend<T>(&self, what: impl Into<String>, work: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = work.await;
        self.record(what, start.elapsed());
        out
    }

    /// `queued for kimi 12 ms, attempt 1 kimi-k2 30001 ms, ...`, or `nothing recorded`.
    pub fn ledger(&self) -> String {
        let spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        if spent.is_empty() {
            return "nothing recorded".to_owned();
        }
        spent
            .iter()
            .map(|(what, took)| format!("{what} {} ms", took.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spends_from_one_deadline_and_says_where_the_time_went() {
        let b = Budget::new(Duration::from_secs(10));
        b.spend("queued for kimi", tokio::time::sleep(Duration::from_millis(1500)))
            .await;
        let clone = b.clone();
        clone
            .spend("attempt 1 kimi-k2", tokio::time::sleep(Duration::from_secs(3)))
            .await;
        assert_eq!(b.remaining(), Duration::from_millis(5500));
        assert_eq!(b.ledger(), "queued for kimi 1500 ms, attempt 1 kimi-k2 3000 ms");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(b.is_spent());
        assert_eq!(b.total(), Duration::from_secs(10));
    }
}

//! Process-wide counters: when the server started, how many tool calls are running and have run.
//! In-flight accounting goes through [`InflightGuard`], so every exit path (error, panic, cancel) decrements.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Runtime {
    started: Instant,
    started_unix: u64,
    inflight: AtomicUsize,
    calls_total: AtomicU64,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            inflight: AtomicUsize::new(0),
            calls_total: AtomicU64::new(0),
        }
    }
}

impl Runtime {
    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
    pub fn started_unix(&self) -> u64 {
        self.started_unix
    }
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
    pub fn calls_total(&self) -> u64 {
        self.calls_total.load(Ordering::Relaxed)
    }
    /// Counts a call as running until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        InflightGuard(Arc::clone(self))
    }
}

/// Marks one running call; dropping it (on any path) ends the call's accounting.
#[derive(Debug)]
pub struct InflightGuard(Arc<Runtime>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_decrements_on_drop_even_when_unwinding() {
        let rt = Arc::new(Runtime::default());
        let g = rt.enter();
        assert_eq!(rt.inflight(), 1);
        drop(g);
        assert_eq!(rt.inflight(), 0);
        let rt2 = Arc::clone(&rt);
        let r = std::panic::catch_unwind(move || {
            let _g = rt2.enter();
            panic!("boom");
        });
        assert!(r.is_err());
        assert_eq!(rt.inflight(), 0);
        assert_eq!(rt.calls_total(), 2);
    }
}

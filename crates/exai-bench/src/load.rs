//! A closed-loop load generator: `concurrency` workers call one async operation back to back for a warm-up and
//! then a measured period, and the measured calls are summarised (throughput, p50/p99, time to first byte).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// What one call took: in all, and until its first streamed byte when it streams.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub total: Duration,
    pub first_byte: Option<Duration>,
}

/// One cell of a results table.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub concurrency: usize,
    pub calls: u64,
    pub errors: u64,
    /// Successful calls per second over the measured period.
    pub per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub first_byte_p50_us: Option<u64>,
    /// The first error seen, if any (so a failing cell says why).
    pub first_error: Option<String>,
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `call(worker)` from `concurrency` workers: `warmup` unmeasured, then `measure` measured.
pub async fn run<F, Fut>(concurrency: usize, warmup: Duration, measure: Duration, call: F) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Timing>> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let measured_from = start + warmup;
    let end = measured_from + measure;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let call = Arc::clone(&call);
        workers.push(tokio::spawn(async move {
            let (mut totals, mut firsts, mut errors, mut first_error) = (Vec::new(), Vec::new(), 0u64, None);
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let result = call(worker).await;
                if began < measured_from {
                    continue;
                }
                match result {
                    Ok(t) => {
                        totals.push(t.total.as_micros() as u64);
                        if let Some(f) = t.first_byte {
                            firsts.push(f.as_micros() as u64);
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (totals, firsts, errors, first_error)
        }));
    }
    let (mut totals, mut firsts, mut errors, mut first_error) = (Vec::new(), Vec::new(), 0, None);
    for w in workers {
        let (t, f, e, fe) = w.await.expect("a load worker panicked");
        totals.extend(t);
        firsts.extend(f);
        errors += e;
        first_error = first_error.or(fe);
    }
    // Calls that started in the measured period may end after it: divide by the time actually spent.
    let spent = start.elapsed().saturating_sub(warmup).max(measure);
    totals.sort_unstable();
    firsts.sort_unstable();
    Summary {
        concurrency,
        calls: totals.len() as u64 + errors,
        errors,
        per_sec: totals.len() as f64 / spent.as_secs_f64(),
        p50_us: quantile(&totals, 0.5),
        p99_us: quantile(&totals, 0.99),
        first_byte_p50_us: (!firsts.is_empty()).then(|| quantile(&firsts, 0.5)),
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=200).collect();
        assert_eq!(quantile(&v, 0.5), 100);
        assert_eq!(quantile(&v, 0.99), 198);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[tokio::test]
    async fn counts_successes_and_errors_of_the_measured_period_only() {
        let summary = run(
            4,
            Duration::from_millis(50),
            Duration::from_millis(200),
            |worker| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                anyhow::ensure!(worker != 0, "worker 0 always fails");
                Ok(Timing {
                    total: Duration::from_millis(10),
                    first_byte: Some(Duration::from_millis(1)),
                })
            },
        )
        .await;
        assert!(summary.errors > 0 && summary.calls > summary.errors, "{summary:?}");
        // Three succeeding workers at ~100 calls/s each; allow a slow machine.
        assert!(summary.per_sec > 100.0 && summary.per_sec < 320.0, "{summary:?}");
        assert_eq!((summary.p50_us, summary.first_byte_p50_us), (10_000, Some(1_000)));
        assert_eq!(summary.first_error.as_deref(), Some("worker 0 always fails"));
    }
}

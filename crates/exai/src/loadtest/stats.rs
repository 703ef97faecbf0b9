//! What a run measured: one [`Sample`] per call, summed into [`Group`]s (all calls, per tool, per session)
//! with counts by outcome, latency percentiles (nearest rank) and throughput.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::client::ErrorKind;

/// One finished call.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// When the call started and finished, milliseconds since the run began.
    pub start_ms: u64,
    pub end_ms: u64,
    pub session: usize,
    pub tool: String,
    pub latency_us: u64,
    pub error: Option<ErrorKind>,
    pub fallback: bool,
    pub progress: u32,
}

impl Sample {
    pub fn latency_ms(&self) -> f64 {
        self.latency_us as f64 / 1000.0
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    /// From latencies in microseconds (any order).
    pub fn of(mut micros: Vec<u64>) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            micros[rank - 1] as f64 / 1000.0
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            max: micros[micros.len() - 1] as f64 / 1000.0,
            mean: micros.iter().sum::<u64>() as f64 / micros.len() as f64 / 1000.0,
        }
    }
}

/// Calls summed by outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Group {
    pub calls: u64,
    /// Answered by the model asked for (fallbacks are not successes).
    pub successes: u64,
    pub fallbacks: u64,
    pub errors: u64,
    /// Errors by kind (`timeout`, `over_capacity`, …).
    pub error_kinds: BTreeMap<String, u64>,
    /// Deadline and upstream timeouts (also counted in `error_kinds`).
    pub timeouts: u64,
    /// Over every call, whatever its outcome.
    pub latency_ms: Latency,
    /// Over successful calls only.
    pub success_latency_ms: Latency,
    pub calls_per_sec: f64,
    pub progress_messages: u64,
}

impl Group {
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>, elapsed: Duration) -> Self {
        let mut group = Group::default();
        let (mut all, mut ok) = (Vec::new(), Vec::new());
        for s in samples {
            group.calls += 1;
            group.progress_messages += u64::from(s.progress);
            all.push(s.latency_us);
            match s.error {
                None if s.fallback => group.fallbacks += 1,
                None => {
                    group.successes += 1;
                    ok.push(s.latency_us);
                }
                Some(kind) => {
                    group.errors += 1;
                    *group.error_kinds.entry(kind.name().to_owned()).or_default() += 1;
                    if kind.is_timeout() {
                        group.timeouts += 1;
                    }
                }
            }
        }
        group.latency_ms = Latency::of(all);
        group.success_latency_ms = Latency::of(ok);
        group.calls_per_sec = group.calls as f64 / elapsed.as_secs_f64().max(0.001);
        group
    }
}

/// One second of the run: calls finished in it, errors, and their latency percentiles.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub t: u64,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Per-second buckets over the run (by finish time).
pub fn timeline(samples: &[Sample], elapsed: Duration) -> Vec<Second> {
    let seconds = elapsed.as_secs() as usize + 1;
    let mut buckets: Vec<Vec<&Sample>> = vec![Vec::new(); seconds];
    for s in samples {
        let i = ((s.end_ms / 1000) as usize).min(seconds - 1);
        buckets[i].push(s);
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(t, bucket)| {
            let latency = Latency::of(bucket.iter().map(|s| s.latency_us).collect());
            Second {
                t: t as u64,
                calls: bucket.len() as u64,
                errors: bucket.iter().filter(|s| s.error.is_some()).count() as u64,
                p50_ms: latency.p50,
                p95_ms: latency.p95,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(latency_ms: u64, error: Option<ErrorKind>, fallback: bool) -> Sample {
        Sample {
            start_ms: 0,
            end_ms: latency_ms,
            session: 0,
            tool: "chat".into(),
            latency_us: latency_ms * 1000,
            error,
            fallback,
            progress: 1,
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latency::of((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!((l.p50, l.p90, l.p95, l.p99, l.max), (50.0, 90.0, 95.0, 99.0, 100.0));
        assert_eq!(l.mean, 50.5);
        assert_eq!(Latency::of(vec![7_000]).p99, 7.0);
    }

    #[test]
    fn groups_count_fallbacks_and_errors_apart_from_successes() {
        let samples = [
            sample(10, None, false),
            sample(20, None, true),
            sample(2000, Some(ErrorKind::Timeout), false),
            sample(5, Some(ErrorKind::OverCapacity), false),
        ];
        let g = Group::of(&samples, Duration::from_secs(2));
        assert_eq!(
            (g.calls, g.successes, g.fallbacks, g.errors, g.timeouts),
            (4, 1, 1, 2, 1)
        );
        assert_eq!(g.error_kinds["over_capacity"], 1);
        assert_eq!(g.success_latency_ms.max, 10.0);
        assert_eq!(g.calls_per_sec, 2.0);
        let t = timeline(&samples, Duration::from_secs(2));
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].calls, t[2].calls, t[2].errors), (3, 1, 1));
    }
}

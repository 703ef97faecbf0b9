//! The run's verdicts beyond the server invariants: memory stability, circuit activity, and what the `timeout`
//! and `recovery` scenarios must show.

use super::client::ErrorKind;
use super::report::{Check, Circuits, Probe, Stability};
use super::scenario::{Plan, ScenarioKind};
use super::scrape::{Before, Metrics};
use super::stats::{Latency, Sample};
use super::watch::Tick;

pub const MIB: f64 = 1024.0 * 1024.0;

/// Memory over the run and its verdict: flat when the last quarter's mean is within 20 % (or 16 MiB) of the
/// second quarter's (the first quarter is warm-up: pools and caches filling).
pub fn stability(ticks: &[Tick], disconnects: u32) -> Option<Stability> {
    let memory: Vec<(f64, f64)> = ticks.iter().filter_map(|t| t.memory.map(|m| (t.secs, m))).collect();
    if memory.is_empty() {
        return None;
    }
    let values: Vec<f64> = memory.iter().map(|(_, m)| *m).collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let q = values.len() / 4;
    let (early, late) = if q >= 2 {
        (mean(&values[q..2 * q]), mean(&values[values.len() - q..]))
    } else {
        (values[0], values[values.len() - 1])
    };
    let growth = late - early;
    let growth_pct = if early > 0.0 { growth / early * 100.0 } else { 0.0 };
    Some(Stability {
        memory_start_bytes: values[0],
        memory_end_bytes: values[values.len() - 1],
        memory_peak_bytes: values.iter().copied().fold(0.0, f64::max),
        memory_growth_pct: growth_pct,
        memory_flat: growth_pct <= 20.0 || growth <= 16.0 * MIB,
        unexpected_disconnects: disconnects,
        memory,
    })
}

pub fn circuits(ticks: &[Tick], before: &Before, after: Option<&Metrics>) -> Circuits {
    let first_open = ticks.iter().find(|t| t.open_circuits > 0.0).map(|t| t.secs);
    let all_closed = first_open.and_then(|opened| {
        ticks
            .iter()
            .filter(|t| t.secs > opened && t.open_circuits == 0.0)
            .map(|t| t.secs)
            .next()
    });
    let opened_before = before
        .metrics
        .as_ref()
        .map_or(0.0, |m| m.sum("exai_circuit_opened_total"));
    Circuits {
        first_open_secs: first_open,
        all_closed_secs: all_closed,
        opened: after.map_or(0.0, |m| m.sum("exai_circuit_opened_total")) - opened_before,
        open_at_end: after
            .map(|m| {
                m.named("exai_circuit_open")
                    .filter(|s| s.value > 0.0)
                    .map(|s| s.labels.get("target").cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// What the `timeout` and `recovery` scenarios must show.
pub fn scenario_checks(
    plan: &Plan,
    samples: &[Sample],
    circuits: Option<&Circuits>,
    probe: Option<&Probe>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    match plan.scenario {
        ScenarioKind::Timeout => {
            let timeouts = samples
                .iter()
                .filter(|s| s.error.is_some_and(ErrorKind::is_timeout))
                .count();
            checks.push(Check::new(
                "every call ended with a timeout error",
                !samples.is_empty() && timeouts == samples.len(),
                format!("{timeouts} of {} calls timed out", samples.len()),
            ));
            let deadline = plan.deadline.as_secs_f64() * 1000.0;
            let tolerance = (deadline * 0.25).max(1000.0);
            let outside: Vec<f64> = samples
                .iter()
                .map(Sample::latency_ms)
                .filter(|ms| *ms < deadline - 50.0 || *ms > deadline + tolerance)
                .collect();
            let latency = Latency::of(samples.iter().map(|s| s.latency_us).collect());
            checks.push(Check::new(
                "every call ended at its deadline",
                !samples.is_empty() && outside.is_empty(),
                format!(
                    "deadline {deadline:.0} ms: calls ended after {:.0}–{:.0} ms (p50 {:.0} ms); {} outside \
                     [{:.0}, {:.0}] ms",
                    samples.iter().map(Sample::latency_ms).fold(f64::INFINITY, f64::min),
                    latency.max,
                    latency.p50,
                    outside.len(),
                    deadline - 50.0,
                    deadline + tolerance
                ),
            ));
            if let Some(p) = probe {
                checks.push(Check::new(
                    "tier-1 calls unaffected by the hanging upstream",
                    p.calls > 0 && p.errors == 0 && p.latency_ms.p95 <= p.threshold_ms as f64,
                    format!(
                        "probe: {} calls, {} errors, p95 {:.1} ms (threshold {} ms)",
                        p.calls, p.errors, p.latency_ms.p95, p.threshold_ms
                    ),
                ));
            }
        }
        ScenarioKind::Recovery => {
            let failing_ms = plan.failing_for.as_millis() as u64;
            let failed_early = samples
                .iter()
                .filter(|s| s.end_ms < failing_ms && s.error.is_some())
                .count();
            let ok_late = samples
                .iter()
                .filter(|s| s.start_ms > failing_ms && s.error.is_none())
                .count();
            checks.push(Check::new(
                "calls failed while the upstream failed",
                failed_early > 0,
                format!(
                    "{failed_early} calls failed in the first {:.1} s",
                    plan.failing_for.as_secs_f64()
                ),
            ));
            if let Some(c) = circuits {
                checks.push(Check::new(
                    "circuits opened",
                    c.opened > 0.0 && c.first_open_secs.is_some(),
                    format!(
                        "exai_circuit_opened_total rose by {}; first seen open at {}",
                        c.opened,
                        c.first_open_secs.map_or("never".to_owned(), |s| format!("{s:.1} s"))
                    ),
                ));
                checks.push(Check::new(
                    "circuits closed again",
                    c.open_at_end.is_empty() && c.all_closed_secs.is_some(),
                    format!(
                        "all closed at {}; open at the end: {}",
                        c.all_closed_secs.map_or("never".to_owned(), |s| format!("{s:.1} s")),
                        if c.open_at_end.is_empty() {
                            "none".to_owned()
                        } else {
                            c.open_at_end.join(", ")
                        }
                    ),
                ));
            }
            checks.push(Check::new(
                "calls succeeded after the upstream recovered",
                ok_late > 0,
                format!(
                    "{ok_late} successful calls started after {:.1} s",
                    plan.failing_for.as_secs_f64()
                ),
            ));
        }
        _ => {}
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(memory_mib: &[f64]) -> Vec<Tick> {
        memory_mib
            .iter()
            .enumerate()
            .map(|(i, m)| Tick {
                secs: i as f64,
                memory: Some(m * MIB),
                open_circuits: 0.0,
            })
            .collect()
    }

    #[test]
    fn memory_is_flat_after_warm_up_and_growing_when_the_late_quarter_climbs() {
        // Warm-up from 20 to 40 MiB, then steady: flat.
        let flat = stability(&ticks(&[20.0, 30.0, 40.0, 40.0, 41.0, 40.0, 41.0, 40.0, 41.0, 41.0]), 0).unwrap();
        assert!(flat.memory_flat, "{flat:?}");
        assert_eq!(
            (flat.memory_start_bytes, flat.memory_peak_bytes),
            (20.0 * MIB, 41.0 * MIB)
        );
        // A leak: 100 MiB to 400 MiB.
        let steps: Vec<f64> = (0..12).map(|i| 100.0 + 25.0 * i as f64).collect();
        let leak = stability(&ticks(&steps), 2).unwrap();
        assert!(!leak.memory_flat && leak.memory_growth_pct > 20.0, "{leak:?}");
        assert_eq!(leak.unexpected_disconnects, 2);
        assert!(stability(&[], 0).is_none());
    }
}

//! What runs alongside the sessions: the cross-session probe (a tier-1 `version` call every 200 ms in a
//! session of its own) and the `/metrics` sampler (resident memory, open circuits).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::client::Session;
use super::report::Probe;
use super::scrape::Metrics;
use super::stats::Latency;

/// How often the probe session calls `version`.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// One `/metrics` sample taken during the run.
pub struct Tick {
    pub secs: f64,
    pub memory: Option<f64>,
    pub open_circuits: f64,
}

/// The probe's calls: `(latency, failed)`.
pub struct ProbeRun {
    pub samples: Vec<(Duration, bool)>,
}

impl ProbeRun {
    pub fn summary(&self, threshold: Duration) -> Probe {
        Probe {
            calls: self.samples.len() as u64,
            errors: self.samples.iter().filter(|(_, failed)| *failed).count() as u64,
            latency_ms: Latency::of(self.samples.iter().map(|(d, _)| d.as_micros() as u64).collect()),
            threshold_ms: threshold.as_millis() as u64,
            delayed: self.samples.iter().filter(|(d, _)| *d > threshold).count() as u64,
        }
    }
}

/// Calls the tier-1 `version` tool every [`PROBE_EVERY`] in a session of its own until `stop`: a slow answer
/// means another session's work delayed it.
pub async fn run_probe(mut session: Session, stop: CancellationToken) -> ProbeRun {
    let mut run = ProbeRun { samples: Vec::new() };
    while !stop.is_cancelled() {
        let began = Instant::now();
        let result = session.call("version", json!({}), false).await;
        run.samples.push((began.elapsed(), result.error.is_some()));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = session.pause(PROBE_EVERY) => {}
        }
    }
    session.close().await;
    run
}

/// Samples `/metrics` every `every_ms` until `stop`: resident memory and open circuits.
pub async fn sample_metrics(
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    every_ms: u64,
    start: Instant,
    stop: CancellationToken,
) -> Vec<Tick> {
    let mut ticks = Vec::new();
    loop {
        if let Ok(m) = Metrics::fetch(&http, &base, token.as_deref()).await {
            ticks.push(Tick {
                secs: start.elapsed().as_secs_f64(),
                memory: m.named("process_resident_memory_bytes").next().map(|s| s.value),
                open_circuits: m.sum("exai_circuit_open"),
            });
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(every_ms)) => {}
        }
    }
    ticks
}

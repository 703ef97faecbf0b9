//! The Prometheus recorder behind `GET /metrics`: built once at start-up with the buckets of every histogram in
//! [`exai_core::metrics::METRICS`], installed as the global `metrics` recorder, and read through its handle.

use std::time::Duration;

use exai_core::metrics::{self, Kind, METRICS};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// How often buffered histogram samples are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What the daemon's HTTP app exports at `/metrics`; `None` serves 404 (tests without a global recorder).
#[derive(Clone, Default)]
pub struct Exporter(pub Option<PrometheusHandle>);

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Exporter(prometheus)"
        } else {
            "Exporter(none)"
        })
    }
}

/// A recorder with exai's histogram buckets (not installed).
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    METRICS.iter().try_fold(PrometheusBuilder::new(), |b, m| match m.kind {
        Kind::Histogram(buckets) => b.set_buckets_for_metric(Matcher::Full(m.name.to_owned()), buckets),
        _ => Ok(b),
    })
}

/// Installs the global recorder, describes every metric and keeps histograms folded in; call once, inside
/// a Tokio runtime.
pub fn install() -> Result<Exporter, BuildError> {
    let handle = builder()?.install_recorder()?;
    metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            upkeep.run_upkeep();
        }
    });
    Ok(Exporter(Some(handle)))
}

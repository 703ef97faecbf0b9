//! `GET /metrics`: everything recorded, in the Prometheus text format, plus the process's CPU time and resident
//! memory read from `/proc/self` at scrape time (Linux only).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use exai_core::metrics::METRICS;

use crate::prometheus::Exporter;

/// The Prometheus text exposition content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(exporter): State<Exporter>) -> Response {
    let Some(handle) = exporter.0 else {
        return (StatusCode::NOT_FOUND, "metrics are not recorded in this process\n").into_response();
    };
    handle.run_upkeep();
    let mut text = handle.render();
    // Written here rather than recorded: the recorder's counters are whole numbers, CPU time is not.
    if let Some(p) = process::read() {
        append(&mut text, "process_cpu_seconds_total", "counter", p.cpu_seconds);
        append(
            &mut text,
            "process_resident_memory_bytes",
            "gauge",
            p.resident_bytes as f64,
        );
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Appends one unlabelled sample with its help text from the metrics list.
fn append(text: &mut String, name: &str, kind: &str, value: f64) {
    let help = METRICS.iter().find(|m| m.name == name).map_or("", |m| m.help);
    text.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n"
    ));
}

pub mod process {
    //! The process's own CPU time and memory, from `/proc/self/stat` and `/proc/self/statm`: read by
    //! `exai_core::observe::host`, which the `cpu` and `memory` alert rules share.

    pub use exai_core::observe::host::process_usage as read;
}

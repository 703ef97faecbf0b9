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
    //! The process's own CPU time and memory, from `/proc/self/stat` and `/proc/self/statm`.

    /// One reading.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Usage {
        pub cpu_seconds: f64,
        pub resident_bytes: u64,
    }

    /// Clock ticks per second of `utime`/`stime` (`sysconf(_SC_CLK_TCK)`, 100 on every Linux platform exai runs).
    const TICKS_PER_SEC: f64 = 100.0;
    /// Page size of `statm` (4 KiB on x86-64 and most arm64 kernels).
    const PAGE_BYTES: u64 = 4096;

    /// Reads the process's usage; `None` where `/proc` is missing (not Linux).
    pub fn read() -> Option<Usage> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        parse(&stat, &statm)
    }

    /// Parses `stat` (fields 14 and 15: utime, stime, after the parenthesised command name) and `statm`
    /// (field 2: resident pages).
    pub fn parse(stat: &str, statm: &str) -> Option<Usage> {
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // `after_name` starts at field 3 (state), so utime (14) is index 11 and stime (15) index 12.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(Usage {
            cpu_seconds: (utime + stime) as f64 / TICKS_PER_SEC,
            resident_bytes: resident * PAGE_BYTES,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_proc_self() {
            let stat = "4242 (exai (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 100 1000 2000";
            let usage = parse(stat, "5000 300 100 50 0 400 0\n").unwrap();
            assert_eq!(usage.cpu_seconds, 3.0);
            assert_eq!(usage.resident_bytes, 300 * 4096);
            assert!(parse("garbage", "").is_none());
        }

        #[cfg(target_os = "linux")]
        #[test]
        fn reads_this_process() {
            assert!(read().unwrap().resident_bytes > 0);
        }
    }
}

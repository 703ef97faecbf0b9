//! The process's CPU use and memory for the page, measured the way the `cpu` and `memory` alert rules measure them
//! (`exai_core::observe::host`): CPU in per cent of every CPU the process may use, between two readings (the first
//! reading averages over the uptime), and resident memory against the memory the process may use. Readings closer
//! than [`MIN_SPAN`] reuse the last figure, so many open pages do not shrink the measuring span to noise.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use exai_core::observe::host;
use tokio::time::Instant;

/// Shortest span a per-cent figure is measured over.
const MIN_SPAN: Duration = Duration::from_millis(900);

/// The process's CPU time and memory now.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CpuReading {
    /// Per cent of all the CPUs the process may use, rounded to a tenth.
    pub cpu_percent: f64,
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    /// Its cgroup's memory limit, else the machine's memory; `None` when unknown.
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Debug, Default)]
pub struct CpuMeter {
    /// The shared meter, and when it last measured and what.
    state: Mutex<(host::CpuMeter, Option<(Instant, f64)>)>,
    memory_limit: OnceLock<Option<u64>>,
}

impl CpuMeter {
    /// Reads `/proc/self`; `None` where it is missing (not Linux).
    pub fn read(&self, uptime_secs: f64) -> Option<CpuReading> {
        let usage = host::process_usage()?;
        let now = Instant::now();
        let cpus = host::cpus();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let percent = match state.1 {
            Some((at, percent)) if now.saturating_duration_since(at) < MIN_SPAN => percent,
            _ => {
                let measured = state.0.percent(now, usage.cpu_seconds, cpus);
                let percent = measured.unwrap_or_else(|| average(usage.cpu_seconds, uptime_secs, cpus));
                state.1 = Some((now, percent));
                percent
            }
        };
        Some(CpuReading {
            cpu_percent: (percent * 10.0).round() / 10.0,
            cpu_seconds: usage.cpu_seconds,
            resident_bytes: usage.resident_bytes,
            memory_limit_bytes: *self.memory_limit.get_or_init(host::memory_limit_bytes),
        })
    }
}

/// CPU seconds over wall seconds and CPUs, in per cent (0 with no time or no CPUs).
fn average(cpu_secs: f64, wall_secs: f64, cpus: f64) -> f64 {
    if wall_secs <= 0.0 || cpus <= 0.0 {
        return 0.0;
    }
    cpu_secs.max(0.0) / wall_secs / cpus * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_over_the_uptime_and_reads_this_process() {
        assert_eq!(average(1.0, 2.0, 2.0), 25.0);
        assert_eq!(average(1.0, 0.0, 2.0), 0.0);
        #[cfg(target_os = "linux")]
        {
            let meter = CpuMeter::default();
            let first = meter.read(10.0).unwrap();
            assert!(first.resident_bytes > 0 && first.cpu_percent >= 0.0);
            assert_eq!(
                meter.read(10.0).unwrap().cpu_percent,
                first.cpu_percent,
                "within MIN_SPAN"
            );
        }
    }
}

//! What the `cpu` and `memory` alert rules measure, read from Linux's `/proc` and `/sys/fs/cgroup`: the
//! process's CPU seconds and resident memory, the memory it may use, and a CPU percentage from two readings.
//! Everywhere else every reading is `None` and the two rules stay quiet.

use std::time::Duration;

/// The process's CPU time (user + system) and resident memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessUsage {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
}

/// Clock ticks per second of `utime`/`stime` (`sysconf(_SC_CLK_TCK)`, 100 on every Linux platform exai runs).
const TICKS_PER_SEC: f64 = 100.0;
/// Page size of `statm` (4 KiB on x86-64 and most arm64 kernels).
const PAGE_BYTES: u64 = 4096;
/// cgroup v1 reports "no limit" as a number near `i64::MAX`; anything above this is treated as none.
const NO_LIMIT_ABOVE: u64 = 1 << 60;

/// This process's usage now; `None` where `/proc` is missing.
pub fn process_usage() -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    parse_usage(&stat, &statm)
}

/// Parses `/proc/self/stat` (fields 14 and 15, utime and stime, counted after the parenthesised command name,
/// which may itself contain spaces and parentheses) and `/proc/self/statm` (field 2, resident pages).
pub fn parse_usage(stat: &str, statm: &str) -> Option<ProcessUsage> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(ProcessUsage {
        cpu_seconds: (utime + stime) as f64 / TICKS_PER_SEC,
        resident_bytes: resident * PAGE_BYTES,
    })
}

/// The memory this process may use: its cgroup's limit when one is set (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), else the machine's `MemTotal`.
pub fn memory_limit_bytes() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut candidates = Vec::new();
    for line in cgroup.lines() {
        // `0::/path` (v2) or `N:memory:/path` (v1).
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if controllers.is_empty() {
            candidates.push(format!("/sys/fs/cgroup{path}/memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            candidates.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
        }
    }
    candidates.push("/sys/fs/cgroup/memory.max".into());
    candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".into());
    let cgroup_limit = candidates
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|text| parse_cgroup_limit(&text));
    cgroup_limit.or_else(|| parse_mem_total(&std::fs::read_to_string("/proc/meminfo").ok()?))
}

/// A cgroup memory limit in bytes; `None` for `max` or v1's "unlimited" sentinel.
pub fn parse_cgroup_limit(text: &str) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|b| *b > 0 && *b < NO_LIMIT_ABOVE)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
pub fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The CPUs this process may run on (`std::thread::available_parallelism`, which honours cgroup quotas and
/// CPU affinity).
pub fn cpus() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// Turns successive CPU-second readings into a percentage of all available CPUs (100 % = every CPU the process
/// may use was busy with it for the whole interval).
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(tokio::time::Instant, f64)>,
}

impl CpuMeter {
    /// The percentage since the previous reading; `None` for the first one, or when no time passed.
    pub fn percent(&mut self, now: tokio::time::Instant, cpu_seconds: f64, cpus: f64) -> Option<f64> {
        let previous = self.last.replace((now, cpu_seconds));
        let (then, before) = previous?;
        let wall = now.saturating_duration_since(then);
        (wall > Duration::ZERO && cpus > 0.0)
            .then(|| ((cpu_seconds - before).max(0.0) / wall.as_secs_f64() / cpus) * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_and_cgroup_files() {
        let stat = "4242 (exai (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 12 0 100 1000 2000";
        let usage = parse_usage(stat, "5000 300 100 50 0 400 0\n").unwrap();
        assert_eq!(usage.cpu_seconds, 3.0);
        assert_eq!(usage.resident_bytes, 300 * 4096);
        assert!(parse_usage("garbage", "").is_none());
        assert_eq!(parse_cgroup_limit("max\n"), None);
        assert_eq!(parse_cgroup_limit("9223372036854771712\n"), None);
        assert_eq!(parse_cgroup_limit("536870912\n"), Some(512 << 20));
        assert_eq!(
            parse_mem_total("MemTotal:       16384000 kB\nMemFree: 1 kB\n"),
            Some(16_384_000 * 1024)
        );
    }

    #[test]
    fn cpu_percent_is_of_all_available_cpus() {
        let mut meter = CpuMeter::default();
        let t0 = tokio::time::Instant::now();
        assert_eq!(meter.percent(t0, 10.0, 2.0), None);
        // 1.6 CPU seconds over 1 s of wall time on 2 CPUs: 80 %.
        let p = meter.percent(t0 + Duration::from_secs(1), 11.6, 2.0).unwrap();
        assert!((p - 80.0).abs() < 1e-9, "{p}");
        assert_eq!(meter.percent(t0 + Duration::from_secs(1), 12.0, 2.0), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process_and_its_memory_limit() {
        assert!(process_usage().unwrap().resident_bytes > 0);
        assert!(memory_limit_bytes().unwrap() > 0);
    }
}

//! Statistics over a window of finished calls: rate, error rate, latency percentiles, success rate by tool,
//! error distribution and a trend in equal time buckets. Shared by the dashboard and the alert rules.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::Execution;

/// Whether a call counts against the error rate: anything but `ok`, and `cancelled` (the client's choice).
pub fn is_error(call: &Execution) -> bool {
    !matches!(call.status.as_str(), "ok" | "cancelled")
}

/// What a window of calls looked like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub window_secs: u64,
    pub calls: u64,
    pub errors: u64,
    /// errors / calls (0 with no calls).
    pub error_rate: f64,
    /// Calls per second over the window.
    pub rate_per_sec: f64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    /// By tool name, in name order.
    pub by_tool: Vec<ToolStats>,
    /// Failed calls by error kind (or status when no kind), most frequent first.
    pub errors_by_kind: Vec<KindCount>,
    /// The window in equal buckets, oldest first.
    pub trend: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolStats {
    pub tool: String,
    pub calls: u64,
    pub errors: u64,
    pub success_rate: f64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindCount {
    pub kind: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Unix milliseconds where the bucket starts.
    pub start_ms: i64,
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// The `q` quantile (0..=1) of `sorted` by nearest rank.
pub fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn sorted_latencies<'a>(calls: impl Iterator<Item = &'a Execution>) -> Vec<i64> {
    let mut v: Vec<i64> = calls.map(|c| c.latency_ms).collect();
    v.sort_unstable();
    v
}

/// Statistics of the calls in `(now_ms - window_ms, now_ms]`, with the trend cut into `buckets` parts.
pub fn stats(calls: &[Execution], now_ms: i64, window_ms: i64, buckets: usize) -> Stats {
    let window_ms = window_ms.max(1);
    let from = now_ms - window_ms;
    let inside: Vec<&Execution> = calls.iter().filter(|c| c.at_ms > from && c.at_ms <= now_ms).collect();
    let errors = inside.iter().filter(|c| is_error(c)).count() as u64;
    let latencies = sorted_latencies(inside.iter().copied());

    let mut tools: BTreeMap<&str, Vec<&Execution>> = BTreeMap::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for c in &inside {
        tools.entry(c.tool.as_str()).or_default().push(c);
        if is_error(c) {
            let kind = c.error_kind.clone().unwrap_or_else(|| c.status.clone());
            *kinds.entry(kind).or_default() += 1;
        }
    }
    let by_tool = tools
        .into_iter()
        .map(|(tool, calls)| {
            let errors = calls.iter().filter(|c| is_error(c)).count() as u64;
            let lat = sorted_latencies(calls.iter().copied());
            ToolStats {
                tool: tool.to_owned(),
                calls: calls.len() as u64,
                errors,
                success_rate: 1.0 - errors as f64 / calls.len() as f64,
                p50_ms: quantile(&lat, 0.5),
                p95_ms: quantile(&lat, 0.95),
            }
        })
        .collect();
    let mut errors_by_kind: Vec<KindCount> = kinds
        .into_iter()
        .map(|(kind, count)| KindCount { kind, count })
        .collect();
    errors_by_kind.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));

    let buckets = buckets.max(1);
    let width = (window_ms as f64 / buckets as f64).ceil().max(1.0) as i64;
    let mut cut: Vec<Vec<&Execution>> = vec![Vec::new(); buckets];
    for c in &inside {
        let i = ((c.at_ms - from - 1) / width).clamp(0, buckets as i64 - 1) as usize;
        cut[i].push(c);
    }
    let trend = cut
        .into_iter()
        .enumerate()
        .map(|(i, calls)| {
            let lat = sorted_latencies(calls.iter().copied());
            Bucket {
                start_ms: from + i as i64 * width,
                calls: calls.len() as u64,
                errors: calls.iter().filter(|c| is_error(c)).count() as u64,
                p50_ms: quantile(&lat, 0.5),
                p95_ms: quantile(&lat, 0.95),
            }
        })
        .collect();

    let n = inside.len() as u64;
    Stats {
        window_secs: (window_ms / 1000) as u64,
        calls: n,
        errors,
        error_rate: if n == 0 { 0.0 } else { errors as f64 / n as f64 },
        rate_per_sec: n as f64 / (window_ms as f64 / 1000.0),
        p50_ms: quantile(&latencies, 0.5),
        p95_ms: quantile(&latencies, 0.95),
        p99_ms: quantile(&latencies, 0.99),
        by_tool,
        errors_by_kind,
        trend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(at_ms: i64, tool: &str, latency_ms: i64, status: &str, kind: Option<&str>) -> Execution {
        Execution {
            at_ms,
            tool: tool.into(),
            provider: None,
            model: None,
            latency_ms,
            status: status.into(),
            error_kind: kind.map(Into::into),
            tokens_in: None,
            tokens_out: None,
            session: None,
        }
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.95), Some(95));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&[7], 0.01), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn counts_rates_tools_kinds_and_buckets() {
        let calls = vec![
            call(500, "chat", 999, "ok", None), // before the window
            call(1_500, "chat", 100, "ok", None),
            call(2_500, "chat", 300, "timeout", Some("timeout")),
            call(3_500, "debug", 200, "cancelled", Some("cancelled")),
            call(4_000, "debug", 400, "error", Some("provider")),
            call(4_500, "chat", 50, "ok", None), // after now
        ];
        let s = stats(&calls, 4_000, 3_000, 3);
        assert_eq!((s.calls, s.errors), (4, 2));
        assert_eq!(s.error_rate, 0.5);
        assert!((s.rate_per_sec - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!((s.p50_ms, s.p95_ms), (Some(200), Some(400)));
        assert_eq!(s.by_tool.len(), 2);
        assert_eq!(s.by_tool[0].tool, "chat");
        assert_eq!(s.by_tool[0].success_rate, 0.5);
        assert_eq!(s.by_tool[1].errors, 1, "a cancelled call is not an error");
        let kinds: Vec<_> = s.errors_by_kind.iter().map(|k| (k.kind.as_str(), k.count)).collect();
        assert_eq!(kinds, [("provider", 1), ("timeout", 1)]);
        let per_bucket: Vec<_> = s.trend.iter().map(|b| (b.start_ms, b.calls)).collect();
        assert_eq!(per_bucket, [(1_000, 1), (2_000, 1), (3_000, 2)]);
    }
}

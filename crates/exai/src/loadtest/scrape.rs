//! Reading the server: `/metrics` (Prometheus text) and the `status` tool, before and after a run, and the
//! post-run invariant checks — no permit still held, permits consistent, no leak counted, every call accounted.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use super::client::http::HttpSession;
use super::report::Check;

/// One sample line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub series: Vec<Series>,
}

impl Metrics {
    pub async fn fetch(client: &reqwest::Client, base: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let url = format!("{base}/metrics");
        let mut request = client.get(&url).timeout(Duration::from_secs(10));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        Ok(Self::parse(&response.text().await?))
    }

    pub fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (head, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match head.split_once('{') {
                    Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                    None => (head, BTreeMap::new()),
                };
                Some(Series {
                    name: name.to_owned(),
                    labels,
                    value,
                })
            })
            .collect();
        Self { series }
    }

    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.name == name)
    }

    pub fn sum(&self, name: &str) -> f64 {
        self.named(name).map(|s| s.value).sum()
    }

    /// The value of `name` whose label `key` is `value` (summed over other labels).
    pub fn with_label(&self, name: &str, key: &str, value: &str) -> f64 {
        self.named(name)
            .filter(|s| s.labels.get(key).is_some_and(|v| v == value))
            .map(|s| s.value)
            .sum()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        labels.insert(key.trim_start_matches(',').trim().to_owned(), after[..end].to_owned());
        rest = &after[end + 1..];
    }
    labels
}

/// Time spent waiting for permits during the run, per limit (from `mcp_semaphore_wait_seconds`).
#[derive(Debug, Clone, Serialize)]
pub struct PermitWait {
    pub limit: String,
    /// Permits granted during the run.
    pub acquisitions: u64,
    pub mean_ms: f64,
    /// The bucket bound at or under which 95 % of the waits fell (a histogram gives no more precision).
    pub p95_at_most_ms: f64,
    /// Permits refused (queue full or waited too long).
    pub refused: u64,
}

pub fn permit_waits(before: &Metrics, after: &Metrics) -> Vec<PermitWait> {
    let limits: std::collections::BTreeSet<String> = after
        .named("mcp_semaphore_wait_seconds_count")
        .filter_map(|s| s.labels.get("limit").cloned())
        .collect();
    limits
        .into_iter()
        .map(|limit| {
            let delta = |name: &str| after.with_label(name, "limit", &limit) - before.with_label(name, "limit", &limit);
            let count = delta("mcp_semaphore_wait_seconds_count").max(0.0);
            let sum = delta("mcp_semaphore_wait_seconds_sum").max(0.0);
            let mut buckets: Vec<(f64, f64)> = after
                .named("mcp_semaphore_wait_seconds_bucket")
                .filter(|s| s.labels.get("limit") == Some(&limit))
                .filter_map(|s| {
                    let le = s.labels.get("le")?;
                    let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                    let earlier = before
                        .named("mcp_semaphore_wait_seconds_bucket")
                        .find(|b| b.labels.get("limit") == Some(&limit) && b.labels.get("le") == Some(le))
                        .map_or(0.0, |b| b.value);
                    Some((bound, s.value - earlier))
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let p95 = buckets
                .iter()
                .find(|(_, cumulative)| count > 0.0 && *cumulative >= 0.95 * count)
                .map_or(0.0, |(bound, _)| bound * 1000.0);
            let refused = after.with_label("mcp_semaphore_acquisition_failures_total", "limit", &limit)
                - before.with_label("mcp_semaphore_acquisition_failures_total", "limit", &limit);
            PermitWait {
                limit,
                acquisitions: count as u64,
                mean_ms: if count > 0.0 { sum / count * 1000.0 } else { 0.0 },
                p95_at_most_ms: if count > 0.0 { p95 } else { 0.0 },
                refused: refused.max(0.0) as u64,
            }
        })
        .collect()
}

/// The `status` tool's structured answer.
pub async fn status(session: &mut HttpSession) -> anyhow::Result<Value> {
    let result = session.call("status", json!({}), false).await;
    match (result.error, result.structured) {
        (None, Some(status)) => Ok(status),
        (kind, _) => bail!("status failed ({kind:?}): {}", result.message.unwrap_or_default()),
    }
}

/// The server's state before the run, to compare against after it.
#[derive(Debug, Clone, Default)]
pub struct Before {
    pub metrics: Option<Metrics>,
    pub status: Option<Value>,
}

/// Checks the server after a run: `issued` calls were made through it (probe included).
pub async fn invariants(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    control: &mut HttpSession,
    before: &Before,
    issued: u64,
    exclusive: bool,
) -> (Vec<Check>, Option<Metrics>) {
    let mut checks = Vec::new();
    // Permits are released as calls end; give the last ones a moment.
    let mut after = None;
    let mut held = Vec::new();
    for _ in 0..25 {
        match Metrics::fetch(client, base, token).await {
            Ok(m) => {
                held = m
                    .named("mcp_semaphore_current_value")
                    .filter(|s| s.value != 0.0)
                    .map(|s| format!("{}={}", s.labels.get("limit").map_or("?", String::as_str), s.value))
                    .collect();
                after = Some(m);
                if held.is_empty() {
                    break;
                }
            }
            Err(e) => {
                checks.push(Check::new("metrics readable", false, format!("{e:#}")));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(m) = &after {
        checks.push(Check::new(
            "no permit held after the run",
            held.is_empty(),
            if held.is_empty() {
                "every mcp_semaphore_current_value is 0".to_owned()
            } else {
                format!("still held: {}", held.join(", "))
            },
        ));
        let before_violations = before
            .metrics
            .as_ref()
            .map_or(0.0, |b| b.sum("mcp_semaphore_invariant_violations_total"));
        let violations = m.sum("mcp_semaphore_invariant_violations_total") - before_violations;
        checks.push(Check::new(
            "no permit invariant violation",
            violations == 0.0,
            format!("mcp_semaphore_invariant_violations_total rose by {violations}"),
        ));
    }
    match status(control).await {
        Ok(status) => {
            let consistent = status["permits_consistent"] == true;
            checks.push(Check::new(
                "permits consistent (status)",
                consistent,
                format!("permits_consistent = {}", status["permits_consistent"]),
            ));
            // The status call itself holds one global permit (and its session's).
            let busy: Vec<String> = status["limits"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| {
                    let allowed = if l["name"] == "global" { 1 } else { 0 };
                    l["in_use"].as_u64().unwrap_or(0) > allowed
                })
                .map(|l| format!("{} in use {}", l["name"].as_str().unwrap_or("?"), l["in_use"]))
                .collect();
            checks.push(Check::new(
                "limits idle (status)",
                busy.is_empty(),
                if busy.is_empty() {
                    "no limit in use beyond the status call itself".to_owned()
                } else {
                    busy.join(", ")
                },
            ));
            if let Some(start) = before.status.as_ref().and_then(|s| s["calls_total"].as_u64()) {
                let end = status["calls_total"].as_u64().unwrap_or(0);
                // Both status calls count themselves: the server saw `end - start - 1` calls in between.
                let seen = end.saturating_sub(start + 1);
                let ok = if exclusive { seen == issued } else { seen >= issued };
                let relation = if exclusive {
                    "exactly"
                } else {
                    "at least (shared server)"
                };
                checks.push(Check::new(
                    "calls accounted (status.calls_total)",
                    ok,
                    format!("server counted {seen} calls during the run; clients made {issued} (expected {relation})"),
                ));
            }
        }
        Err(e) => checks.push(Check::new("status readable", false, format!("{e:#}"))),
    }
    (checks, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "mcp_semaphore_wait_seconds_bucket{limit=\"global\",le=\"0.001\"} 10\n\
        mcp_semaphore_wait_seconds_bucket{limit=\"global\",le=\"0.01\"} 10\n\
        mcp_semaphore_wait_seconds_bucket{limit=\"global\",le=\"+Inf\"} 10\n\
        mcp_semaphore_wait_seconds_sum{limit=\"global\"} 0\n\
        mcp_semaphore_wait_seconds_count{limit=\"global\"} 10\n";
    const AFTER: &str = "# HELP x y\n\
        mcp_semaphore_current_value{limit=\"global\"} 0\n\
        mcp_semaphore_wait_seconds_bucket{limit=\"global\",le=\"0.001\"} 100\n\
        mcp_semaphore_wait_seconds_bucket{limit=\"global\",le=\"0.01\"} 105\n\
        mcp_semaphore_wait_seconds_bucket{limit=\"global\",le=\"+Inf\"} 110\n\
        mcp_semaphore_wait_seconds_sum{limit=\"global\"} 0.5\n\
        mcp_semaphore_wait_seconds_count{limit=\"global\"} 110\n\
        process_resident_memory_bytes 12345678\n";

    #[test]
    fn metrics_parse_and_permit_waits_are_run_deltas() {
        let (before, after) = (Metrics::parse(BEFORE), Metrics::parse(AFTER));
        assert_eq!(after.sum("process_resident_memory_bytes"), 12_345_678.0);
        assert_eq!(after.with_label("mcp_semaphore_current_value", "limit", "global"), 0.0);
        let waits = permit_waits(&before, &after);
        assert_eq!(waits.len(), 1);
        let w = &waits[0];
        assert_eq!((w.limit.as_str(), w.acquisitions), ("global", 100));
        assert!((w.mean_ms - 5.0).abs() < 1e-9, "{w:?}");
        assert_eq!(w.p95_at_most_ms, 10.0, "95 of 100 waits were within 10 ms");
    }
}

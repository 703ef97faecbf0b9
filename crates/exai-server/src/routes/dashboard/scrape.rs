//! Reads a few of the recorder's own samples back out of its Prometheus text: the tool-call counters (so the
//! page's totals are exactly what `/metrics` says) and the open connections and sessions by transport (counted by
//! the listeners, which the dashboard does not own).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::prometheus::Exporter;

/// Calls finished since start for one tool, from `exai_tool_calls_total`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolTotal {
    pub tool: String,
    pub calls: u64,
    /// Calls whose status is neither `ok` nor `cancelled` (the window statistics' rule).
    pub errors: u64,
}

/// What the samples say.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scraped {
    /// By tool name, in name order.
    pub tools: Vec<ToolTotal>,
    /// `exai_open_connections` by transport.
    pub connections: BTreeMap<String, u64>,
    /// `exai_open_sessions` by transport.
    pub sessions: BTreeMap<String, u64>,
}

/// Renders the recorder and reads it; empty when this process records no metrics.
pub fn scrape(exporter: &Exporter) -> Scraped {
    exporter.0.as_ref().map(|h| parse(&h.render())).unwrap_or_default()
}

/// Reads the samples of interest from Prometheus text.
pub fn parse(text: &str) -> Scraped {
    let mut tools: BTreeMap<String, ToolTotal> = BTreeMap::new();
    let mut out = Scraped::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        let value = value.max(0.0) as u64;
        match name {
            "exai_tool_calls_total" => {
                let Some(tool) = label("tool") else { continue };
                let total = tools.entry(tool.to_owned()).or_insert_with(|| ToolTotal {
                    tool: tool.to_owned(),
                    ..ToolTotal::default()
                });
                total.calls += value;
                if !matches!(label("status"), Some("ok" | "cancelled")) {
                    total.errors += value;
                }
            }
            "exai_open_connections" | "exai_open_sessions" => {
                let transport = label("transport").unwrap_or("unknown").to_owned();
                let map = if name == "exai_open_connections" {
                    &mut out.connections
                } else {
                    &mut out.sessions
                };
                *map.entry(transport).or_default() += value;
            }
            _ => {}
        }
    }
    out.tools = tools.into_values().collect();
    out
}

/// A sample's labels, values unescaped.
type Labels<'a> = Vec<(&'a str, String)>;

/// `name{k="v",...} value` → its parts.
fn sample(line: &str) -> Option<(&str, Labels<'_>, f64)> {
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = head.split_once('{') else {
        return Some((head, Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut rest = rest.strip_suffix('}')?;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, other)) => val.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => val.push(c),
            }
        }
        let end = end?;
        labels.push((key.trim_start_matches(','), val));
        rest = &after[end + 1..];
    }
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tool_totals_connections_and_sessions() {
        let text = "# HELP exai_tool_calls_total x\n\
            exai_tool_calls_total{tool=\"chat\",status=\"ok\",error_kind=\"none\"} 3\n\
            exai_tool_calls_total{tool=\"chat\",status=\"tool_error\",error_kind=\"provider\"} 2\n\
            exai_tool_calls_total{status=\"cancelled\",tool=\"debug\",error_kind=\"cancelled\"} 1\n\
            exai_open_connections{transport=\"http\"} 4\n\
            exai_open_sessions{transport=\"ws\"} 1\n\
            exai_tool_latency_seconds_bucket{tool=\"chat\",le=\"0.5\"} 5\n\
            process_cpu_seconds_total 1.5\n";
        let s = parse(text);
        assert_eq!(
            s.tools,
            [
                ToolTotal {
                    tool: "chat".into(),
                    calls: 5,
                    errors: 2
                },
                ToolTotal {
                    tool: "debug".into(),
                    calls: 1,
                    errors: 0
                },
            ]
        );
        assert_eq!(s.connections["http"], 4);
        assert_eq!(s.sessions["ws"], 1);
        let (_, labels, _) = sample(r#"m{a="x\"y,z",b="2"} 1"#).unwrap();
        assert_eq!(labels, [("a", "x\"y,z".to_owned()), ("b", "2".to_owned())]);
    }
}

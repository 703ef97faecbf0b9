//! A benchmark's results: pairs of runs (a baseline `a` and exai or its rival `b`) measured side by side, printed
//! as a Markdown table (what the README shows) and serialisable as JSON.

use serde::Serialize;

use crate::load::Summary;

/// One case measured both ways at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub case: String,
    pub a: Summary,
    pub b: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub title: String,
    /// What `a` and `b` are, e.g. "direct" and "through exai".
    pub a_name: String,
    pub b_name: String,
    /// Machine, date, settings, memory: one line each.
    pub context: Vec<String>,
    pub pairs: Vec<Pair>,
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn signed_ms(us: i64) -> String {
    format!("{:+.2}", us as f64 / 1000.0)
}

fn first_byte(s: &Summary) -> String {
    s.first_byte_p50_us.map_or("–".into(), ms)
}

impl Report {
    pub fn markdown(&self) -> String {
        let (a, b) = (&self.a_name, &self.b_name);
        let mut out = format!("### {}\n\n", self.title);
        for line in &self.context {
            out.push_str(&format!("- {line}\n"));
        }
        out.push_str(&format!(
            "\n| Case | Concurrency | {a} calls/s | {b} calls/s | {b} ÷ {a} | {a} p50 / p99 ms | {b} p50 / p99 ms | \
             added p50 / p99 ms | first byte p50 ms ({a} / {b}) | errors ({a} / {b}) |\n"
        ));
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for p in &self.pairs {
            let ratio = if p.a.per_sec > 0.0 {
                p.b.per_sec / p.a.per_sec
            } else {
                0.0
            };
            out.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {:.2}× | {} / {} | {} / {} | {} / {} | {} / {} | {} / {} |\n",
                p.case,
                p.a.concurrency,
                p.a.per_sec,
                p.b.per_sec,
                ratio,
                ms(p.a.p50_us),
                ms(p.a.p99_us),
                ms(p.b.p50_us),
                ms(p.b.p99_us),
                signed_ms(p.b.p50_us as i64 - p.a.p50_us as i64),
                signed_ms(p.b.p99_us as i64 - p.a.p99_us as i64),
                first_byte(&p.a),
                first_byte(&p.b),
                p.a.errors,
                p.b.errors,
            ));
        }
        let failures: Vec<String> = self
            .pairs
            .iter()
            .flat_map(|p| [(&self.a_name, &p.a, &p.case), (&self.b_name, &p.b, &p.case)])
            .filter_map(|(who, s, case)| {
                s.first_error
                    .as_ref()
                    .map(|e| format!("- {case}, {who}, concurrency {}: {e}", s.concurrency))
            })
            .collect();
        if !failures.is_empty() {
            out.push_str("\nFirst error of each failing cell:\n");
            out.push_str(&failures.join("\n"));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(per_sec: f64, p50_us: u64, errors: u64) -> Summary {
        Summary {
            concurrency: 16,
            calls: 100,
            errors,
            per_sec,
            p50_us,
            p99_us: p50_us * 2,
            first_byte_p50_us: None,
            first_error: (errors > 0).then(|| "HTTP 503".into()),
        }
    }

    #[test]
    fn prints_ratio_added_latency_and_failures() {
        let report = Report {
            title: "t".into(),
            a_name: "direct".into(),
            b_name: "exai".into(),
            context: vec!["2 cores".into()],
            pairs: vec![Pair {
                case: "sim".into(),
                a: summary(2000.0, 400, 0),
                b: summary(1000.0, 900, 3),
            }],
        };
        let md = report.markdown();
        assert!(
            md.contains("| sim | 16 | 2000 | 1000 | 0.50× | 0.40 / 0.80 | 0.90 / 1.80 | +0.50 / +1.00 |"),
            "{md}"
        );
        assert!(md.contains("- sim, exai, concurrency 16: HTTP 503"), "{md}");
    }
}

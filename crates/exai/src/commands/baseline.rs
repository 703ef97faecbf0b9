//! `exai baseline collect` runs every enabled tool (or `--tools`) N times through a real MCP session and stores
//! each tool's p50 / p95 / mean in `tool_baselines`; `exai baseline compare` measures again and fails (exit 1)
//! naming every tool whose p50 regressed past `--threshold-pct` (and by at least `--min-delta-ms`, so sub-
//! millisecond noise never fails CI) or that now fails where it did not.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use exai_core::config::Config;
use exai_core::store::ToolBaseline;

use crate::loadtest::TargetArgs;
use crate::loadtest::arguments::Arguments;
use crate::loadtest::options::{LatencyChoice, Transport};
use crate::loadtest::stats::Latency;
use crate::loadtest::target::{Target, Tokens};

#[derive(Debug, Clone, Args)]
pub struct MeasureArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Timed calls per tool (after one untimed warm-up call).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Only these tools (default: every tool the server lists).
    #[arg(long, value_delimiter = ',')]
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// A tool regressed when its p50 grew by more than this percentage…
    #[arg(long, default_value_t = 25.0)]
    pub threshold_pct: f64,
    /// …and by at least this many milliseconds.
    #[arg(long, default_value_t = 20.0)]
    pub min_delta_ms: f64,
}

pub async fn collect(config: &Config, args: MeasureArgs) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let store = super::open_store(config).await?;
    let baselines = measure(config, &args).await?;
    store
        .record_tool_baselines(&baselines)
        .await
        .context("storing the baselines")?;
    println!(
        "{:<12} {:>5} {:>6} {:>10} {:>10} {:>10}",
        "tool", "runs", "errors", "p50 ms", "p95 ms", "mean ms"
    );
    for b in &baselines {
        println!(
            "{:<12} {:>5} {:>6} {:>10.2} {:>10.2} {:>10.2}",
            b.tool, b.runs, b.errors, b.p50_ms, b.p95_ms, b.mean_ms
        );
    }
    println!(
        "stored {} baselines ({} transport) in tool_baselines",
        baselines.len(),
        transport_name(&args)
    );
    Ok(())
}

pub async fn compare(config: &Config, args: CompareArgs) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let store = super::open_store(config).await?;
    let transport = transport_name(&args.measure);
    let stored: Vec<ToolBaseline> = store
        .latest_tool_baselines()
        .await
        .context("reading the baselines")?
        .into_iter()
        .filter(|b| b.transport == transport)
        .collect();
    if stored.is_empty() {
        bail!("no {transport} baselines stored yet: run `exai baseline collect` first");
    }
    let current = measure(config, &args.measure).await?;
    println!(
        "{:<12} {:>10} {:>10} {:>9} {:>10} {:>10}  verdict",
        "tool", "base p50", "now p50", "change", "base p95", "now p95"
    );
    let mut regressions = Vec::new();
    for now in &current {
        let Some(base) = stored.iter().find(|b| b.tool == now.tool) else {
            println!("{:<12} (no baseline; collect again to add it)", now.tool);
            continue;
        };
        let change_pct = if base.p50_ms > 0.0 {
            (now.p50_ms / base.p50_ms - 1.0) * 100.0
        } else {
            0.0
        };
        let slower = now.p50_ms > base.p50_ms * (1.0 + args.threshold_pct / 100.0)
            && now.p50_ms - base.p50_ms >= args.min_delta_ms;
        let failing = now.errors > 0 && base.errors == 0;
        let verdict = match (slower, failing) {
            (_, true) => format!("REGRESSED: {} of {} calls failed", now.errors, now.runs),
            (true, _) => format!("REGRESSED: p50 +{change_pct:.0} % (> {} %)", args.threshold_pct),
            _ => "ok".to_owned(),
        };
        println!(
            "{:<12} {:>10.2} {:>10.2} {:>+8.1}% {:>10.2} {:>10.2}  {verdict}",
            now.tool, base.p50_ms, now.p50_ms, change_pct, base.p95_ms, now.p95_ms
        );
        if slower || failing {
            regressions.push(format!(
                "{} (p50 {:.2} ms -> {:.2} ms, {:+.0} %; {} errors)",
                now.tool, base.p50_ms, now.p50_ms, change_pct, now.errors
            ));
        }
    }
    if !regressions.is_empty() {
        bail!("{} tool(s) regressed: {}", regressions.len(), regressions.join(", "));
    }
    println!(
        "no regression past {} % (and {} ms)",
        args.threshold_pct, args.min_delta_ms
    );
    Ok(())
}

fn transport_name(args: &MeasureArgs) -> &'static str {
    match args.target.transport.unwrap_or(Transport::Http) {
        Transport::Http => "http",
        Transport::Ws => "ws",
        Transport::Stdio => "stdio",
    }
}

/// Calls each tool `runs` times in one session, sequentially, and summarises the successful calls.
async fn measure(config: &Config, args: &MeasureArgs) -> anyhow::Result<Vec<ToolBaseline>> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let transport = args.target.transport.unwrap_or(Transport::Http);
    let latency = args.target.latency_profile.unwrap_or(LatencyChoice::Zero);
    let token = Tokens::new(config, args.target.token.clone());
    let target = Target::prepare(&args.target, transport, latency, Vec::new(), token, 1).await?;
    let outcome = measure_on(&target, args, transport_name(args)).await;
    target.stop().await;
    outcome
}

async fn measure_on(target: &Target, args: &MeasureArgs, transport: &str) -> anyhow::Result<Vec<ToolBaseline>> {
    let mut session = target.session("exai-baseline").await?;
    let tools = match args.tools.is_empty() {
        true => session.list_tools().await.context("listing the tools")?,
        false => args.tools.clone(),
    };
    let arguments = Arguments {
        prompt_bytes: 200,
        chat_models: vec!["glm-4.5-flash".to_owned()],
    };
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let mut baselines = Vec::new();
    for tool in tools {
        let _ = session.call(&tool, arguments.for_call(&tool, 0), false).await;
        let (mut micros, mut errors) = (Vec::new(), 0);
        for n in 0..args.runs {
            let began = Instant::now();
            let result = session
                .call(&tool, arguments.for_call(&tool, n as u64 + 1), false)
                .await;
            match result.error {
                None => micros.push(began.elapsed().as_micros() as u64),
                Some(kind) => {
                    errors += 1;
                    tracing::warn!(tool, ?kind, message = ?result.message, "baseline call failed");
                }
            }
        }
        if micros.is_empty() {
            eprintln!("exai baseline: every call of `{tool}` failed; it gets no latency baseline");
        }
        let latency = Latency::of(micros);
        baselines.push(ToolBaseline {
            at_ms,
            tool,
            transport: transport.to_owned(),
            runs: args.runs as i64,
            errors,
            p50_ms: latency.p50,
            p95_ms: latency.p95,
            mean_ms: latency.mean,
        });
    }
    session.close().await;
    Ok(baselines)
}

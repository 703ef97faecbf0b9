//! `exai loadtest`: plans the run from the scenario and flags, prepares the target (a given loopback daemon, or
//! a started simulator + server), runs it, writes the JSON and HTML reports, prints the summary table, and fails
//! (exit 1) when any check failed. With `--replicas 1,3` it runs once per replica count (N started servers sharing
//! Redis, and PostgreSQL when given, each run in a fresh schema of its own) and adds a side-by-side table. The
//! pieces live in `crate::loadtest`.

use anyhow::{Context, bail};
use exai_core::config::Config;

use crate::loadtest::LoadtestArgs;
use crate::loadtest::options::Transport;
use crate::loadtest::report::{ReplicaRun, Report};
use crate::loadtest::runner;
use crate::loadtest::scenario::Plan;
use crate::loadtest::schema::{self, RunSchema};
use crate::loadtest::summary;
use crate::loadtest::target::{Target, Tokens};

pub async fn run(config: &Config, args: LoadtestArgs) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let plan = Plan::from_args(&args)?;
    let token = Tokens::new(config, args.target.token.clone());
    if !args.replicas.is_empty() {
        return run_replicas(&args, plan, token).await;
    }
    let report = run_once(&args, plan, token, 1, Vec::new()).await?;
    finish(&args, vec![report])
}

/// One run against a target prepared with `replicas` started servers and `extra_env`.
async fn run_once(
    args: &LoadtestArgs,
    plan: Plan,
    token: Tokens,
    replicas: usize,
    extra_env: Vec<(String, String)>,
) -> anyhow::Result<Report> {
    let mut env = plan.server_env();
    env.extend(extra_env);
    let target = Target::prepare(&args.target, plan.transport, plan.latency, env, token, replicas).await?;
    eprintln!(
        "exai loadtest: {} scenario, {} sessions over {:?} against {} for up to {:.0} s{}",
        plan.scenario.name(),
        plan.sessions,
        plan.transport,
        target.describe(),
        plan.duration.as_secs_f64(),
        plan.calls.map_or(String::new(), |c| format!(" or {c} calls"))
    );
    let outcome = runner::run(plan, &target, args.quiet).await;
    target.stop().await;
    let mut report = outcome?;
    if replicas > 1 || !args.replicas.is_empty() {
        report.target = format!("{replicas} replicas: {}", report.target);
    }
    Ok(report)
}

/// `--replicas`: one run per replica count, the replicas sharing Redis under a key prefix of the run's own.
async fn run_replicas(args: &LoadtestArgs, plan: Plan, token: Tokens) -> anyhow::Result<()> {
    if args.target.target.is_some() {
        bail!("--replicas starts its own servers; it takes no --target");
    }
    if plan.transport != Transport::Http {
        bail!("--replicas needs --transport http (sessions are spread over the replicas' HTTP endpoints)");
    }
    if args.replicas.contains(&0) {
        bail!("--replicas counts must be at least 1");
    }
    let redis = args
        .redis_url
        .clone()
        .context("--replicas needs a shared Redis: pass --redis-url or set EXAI_REDIS_URL")?;
    let store = match &args.database_url {
        Some(_) => "postgres",
        None => {
            eprintln!(
                "exai loadtest: no --database-url / EXAI_DATABASE_URL: each replica keeps its own SQLite store \
                 (limits are still shared through Redis)"
            );
            "sqlite"
        }
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut reports = Vec::new();
    for &n in &args.replicas {
        let mut env = vec![
            ("EXAI_REDIS_URL".to_owned(), redis.clone()),
            (
                "EXAI_REDIS_KEY_PREFIX".to_owned(),
                format!("exai-loadtest:{}:{stamp}:{n}:", std::process::id()),
            ),
        ];
        // Each run gets a fresh schema of its own, dropped after it whatever happened (ctrl-c included).
        let schema = match &args.database_url {
            Some(url) => Some(RunSchema::create(url, &schema::name(stamp, n)).await?),
            None => None,
        };
        if let Some(schema) = &schema {
            eprintln!(
                "exai loadtest: the {n}-replica run uses the PostgreSQL schema {} (dropped after it)",
                schema.name
            );
            env.push(("EXAI_DATABASE_URL".to_owned(), schema.scoped_url()));
        }
        let outcome = tokio::select! {
            outcome = run_once(args, plan.clone(), token.clone(), n, env) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted during the {n}-replica run")),
        };
        let schema_name = schema.as_ref().map(|s| s.name.clone());
        if let Some(schema) = schema {
            let name = schema.name.clone();
            if let Err(e) = schema.drop().await {
                eprintln!("exai loadtest: {e:#}; drop it by hand: DROP SCHEMA {name} CASCADE");
            }
        }
        let mut report = outcome?;
        if let Some(name) = schema_name {
            report.target = format!("{} (PostgreSQL schema {name}, dropped)", report.target);
        }
        reports.push((n, report));
    }
    let runs: Vec<ReplicaRun> = reports.iter().map(|(n, r)| ReplicaRun::of(*n, store, r)).collect();
    let reports = reports
        .into_iter()
        .map(|(_, mut r)| {
            r.replicas = runs.clone();
            r
        })
        .collect();
    finish(args, reports)?;
    Ok(())
}

/// Writes every report, prints the summaries (and the replica comparison), fails when any check failed.
fn finish(args: &LoadtestArgs, reports: Vec<Report>) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for report in &reports {
        let (json, html) = report.write(&args.report_dir)?;
        print!("{}", summary::render(report));
        println!("reports: {} and {}", json.display(), html.display());
        failed.extend(report.checks.iter().filter(|c| !c.ok).map(|c| c.name.clone()));
    }
    if let Some(runs) = reports.first().map(|r| &r.replicas).filter(|r| !r.is_empty()) {
        println!();
        print!("{}", summary::replicas(runs));
    }
    if !failed.is_empty() {
        bail!("the load test failed: {}", failed.join("; "));
    }
    Ok(())
}

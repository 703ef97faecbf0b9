//! `exai loadtest`: plans the run from the scenario and flags, prepares the target (a given loopback daemon, or
//! a started simulator + server), runs it, writes the JSON and HTML reports, prints the summary table, and fails
//! (exit 1) when any check failed. The pieces live in `crate::loadtest`.

use anyhow::bail;
use exai_core::config::Config;

use crate::loadtest::LoadtestArgs;
use crate::loadtest::runner;
use crate::loadtest::scenario::Plan;
use crate::loadtest::summary;
use crate::loadtest::target::Target;

pub async fn run(config: &Config, args: LoadtestArgs) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let plan = Plan::from_args(&args)?;
    let token = args
        .target
        .token
        .clone()
        .or_else(|| config.http.token.as_ref().map(|t| t.expose().to_owned()));
    let target = Target::prepare(&args.target, plan.transport, plan.latency, plan.server_env(), token).await?;
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
    let report = outcome?;
    let (json, html) = report.write(&args.report_dir)?;
    print!("{}", summary::render(&report));
    println!("reports: {} and {}", json.display(), html.display());
    if !report.passed {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        bail!("the load test failed: {}", failed.join("; "));
    }
    Ok(())
}

//! One run: connect every session, script the upstream for the scenario, let the sessions call tools from the
//! mix until the duration or call count is reached (in-flight calls then get a grace period, after which they
//! are abandoned), run the cross-session probe and the `/metrics` sampler alongside, then check the server.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use exai_sim::Script;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::arguments::Arguments;
use super::client::{ErrorKind, Session};
use super::options::Transport;
use super::progress::{self, Counters};
use super::report::{Check, Report};
use super::scenario::{Plan, ScenarioKind};
use super::scrape::{self, Before, Metrics};
use super::stats::{Group, Sample, timeline};
use super::target::Target;
use super::verdict::{MIB, circuits, scenario_checks, stability};
use super::watch::{ProbeRun, run_probe, sample_metrics};

/// What every session task shares.
struct Shared {
    plan: Plan,
    arguments: Arguments,
    start: Instant,
    samples: Mutex<Vec<Sample>>,
    counters: Arc<Counters>,
}

/// What a session task reports when it ends.
#[derive(Default)]
struct SessionEnd {
    disconnects: u32,
    renewals: u32,
    issued: u64,
    /// For stdio sessions (their own server): the `status` the child gave at the end.
    status: Option<serde_json::Value>,
}
pub async fn run(plan: Plan, target: &Target, quiet: bool) -> anyhow::Result<Report> {
    if plan.scenario.scripts_upstream() && target.sim.is_none() {
        bail!(
            "the {} scenario scripts the upstream simulator: run it against a started server (no --target, \
             --upstream sim)",
            plan.scenario.name()
        );
    }
    let http = reqwest::Client::new();
    let token = target.token.as_deref();
    // One `Before` per replica (the first is the one permit waits and circuits compare against).
    let mut befores = Vec::new();
    for (r, base) in target.http_bases.iter().enumerate() {
        let mut control = target
            .control_on(r, "loadtest-control")
            .await
            .context("connecting the control session")?
            .context("no control session")?;
        befores.push(Before {
            metrics: Some(Metrics::fetch(&http, base, token).await?),
            status: Some(scrape::status(&mut control).await?),
        });
        control.close().await;
    }
    let before = befores.first().cloned().unwrap_or_default();
    let replicas = target.http_bases.len().max(1);
    let mut sessions = Vec::with_capacity(plan.sessions);
    for i in 0..plan.sessions {
        let session = target
            .session_on(i % replicas, &format!("loadtest-{i}"))
            .await
            .with_context(|| format!("connecting session {i} to {}", target.describe()))?;
        sessions.push(session);
    }
    let enabled = sessions[0].list_tools().await.context("listing the target's tools")?;
    if let Some((missing, _)) = plan.mix.weights.iter().find(|(tool, _)| !enabled.contains(tool)) {
        bail!(
            "--mix names `{missing}`, which the target does not offer (enabled: {}); for a started server, \
             --server-env EXAI_TOOL_PROFILE=full enables every tool",
            enabled.join(", ")
        );
    }
    let probe_session = match target.transport {
        Transport::Stdio => None,
        _ => Some(
            target
                .session("loadtest-probe")
                .await
                .context("connecting the probe session")?,
        ),
    };
    if let Some(sim) = &target.sim {
        script_upstream(sim, &plan);
    }

    let started_at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let shared = Arc::new(Shared {
        arguments: Arguments {
            prompt_bytes: plan.prompt_bytes,
            chat_models: plan.chat_models.clone(),
        },
        plan: plan.clone(),
        start: Instant::now(),
        samples: Mutex::new(Vec::new()),
        counters: Arc::new(Counters::default()),
    });
    let stop = CancellationToken::new();
    let progress = (!quiet).then(|| progress::spawn(shared.counters.clone(), plan.duration, plan.calls, stop.clone()));
    let probe = probe_session.map(|session| tokio::spawn(run_probe(session, stop.clone())));
    let sampler = target.http_base.clone().map(|base| {
        let every = if plan.duration > Duration::from_secs(120) {
            5_000
        } else {
            500
        };
        tokio::spawn(sample_metrics(
            http.clone(),
            base,
            target.token.clone(),
            every,
            shared.start,
            stop.clone(),
        ))
    });
    let recovery = match (&target.sim, plan.scenario) {
        (Some(sim), ScenarioKind::Recovery) => {
            let state = sim.state().clone();
            let after = plan.failing_for;
            let healthy = plan.upstream_script();
            Some(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                for model in state.config().models {
                    state.set_model_script(&model.id, healthy.clone());
                }
            }))
        }
        _ => None,
    };

    let mut tasks = tokio::task::JoinSet::new();
    for (i, session) in sessions.into_iter().enumerate() {
        tasks.spawn(run_session(i, session, shared.clone()));
    }
    let hard_stop = tokio::time::Instant::from_std(shared.start) + plan.duration + plan.grace();
    let mut ends = Vec::new();
    loop {
        match tokio::time::timeout_at(hard_stop, tasks.join_next()).await {
            Ok(Some(Ok(end))) => ends.push(end),
            Ok(Some(Err(e))) => bail!("a session task failed: {e}"),
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                break;
            }
        }
    }
    let elapsed = shared.start.elapsed();
    stop.cancel();
    if let Some(task) = recovery {
        task.abort();
    }
    let probe = match probe {
        Some(task) => Some(task.await.context("probe task")?),
        None => None,
    };
    let ticks = match sampler {
        Some(task) => task.await.context("metrics sampler")?,
        None => Vec::new(),
    };
    if let Some(task) = progress {
        let _ = task.await;
    }

    let samples = std::mem::take(&mut *shared.samples.lock().unwrap_or_else(|p| p.into_inner()));
    let issued = shared.counters.started.load(Ordering::Relaxed);
    let abandoned = issued.saturating_sub(samples.len() as u64);
    let never_arrived = samples
        .iter()
        .filter(|s| matches!(s.error, Some(ErrorKind::Transport | ErrorKind::Refused)))
        .count() as u64;

    let mut checks = Vec::new();
    checks.push(Check::new(
        "every call finished within the run's grace period",
        abandoned == 0,
        format!(
            "{abandoned} of {issued} calls were still running {} s after the last start",
            plan.grace().as_secs()
        ),
    ));
    let mut after_metrics = None;
    let probe_calls = probe.as_ref().map_or(0, |p: &ProbeRun| p.samples.len() as u64);
    for (r, (base, before)) in target.http_bases.iter().zip(&befores).enumerate() {
        // A fresh control session: an idle 2025-era HTTP session may have expired during a long run.
        let Some(mut control) = target
            .control_on(r, "loadtest-control")
            .await
            .context("connecting the control session")?
        else {
            continue;
        };
        // Session i ran on replica i % replicas; the probe on the first. Calls that never arrived are not counted.
        let reached = if replicas == 1 {
            issued + probe_calls - never_arrived
        } else {
            let mine = |s: &&Sample| s.session % replicas == r;
            let sent = samples.iter().filter(mine).count() as u64;
            let lost = samples
                .iter()
                .filter(mine)
                .filter(|s| matches!(s.error, Some(ErrorKind::Transport | ErrorKind::Refused)))
                .count() as u64;
            sent - lost + if r == 0 { probe_calls } else { 0 }
        };
        let (found, after) =
            scrape::invariants(&http, base, token, &mut control, before, reached, target.exclusive).await;
        control.close().await;
        checks.extend(found.into_iter().map(|mut c| {
            if replicas > 1 {
                c.name = format!("replica {}: {}", r + 1, c.name);
            }
            c
        }));
        if r == 0 {
            after_metrics = after;
        }
    }
    for (i, end) in ends.iter().enumerate() {
        if let Some(status) = &end.status {
            let seen = status["calls_total"].as_u64().unwrap_or(0);
            checks.push(Check::new(
                format!("stdio session {i}: permits consistent, calls accounted"),
                status["permits_consistent"] == true && seen == end.issued + 1,
                format!(
                    "permits_consistent = {}, calls_total = {seen} for {} calls plus this status",
                    status["permits_consistent"], end.issued
                ),
            ));
        }
    }
    let disconnects: u32 = ends.iter().map(|e| e.disconnects).sum();
    if target.transport == Transport::Ws {
        checks.push(Check::new(
            "WebSocket connections stayed up",
            disconnects == 0,
            format!(
                "{disconnects} unexpected disconnects over {} held connections",
                plan.sessions
            ),
        ));
    }
    let stability = stability(&ticks, disconnects);
    if let (ScenarioKind::Soak, Some(s)) = (plan.scenario, &stability) {
        checks.push(Check::new(
            "memory flat",
            s.memory_flat,
            format!(
                "resident memory {:.1} MiB at start, {:.1} MiB at end, peak {:.1} MiB; growth {:+.1} %",
                s.memory_start_bytes / MIB,
                s.memory_end_bytes / MIB,
                s.memory_peak_bytes / MIB,
                s.memory_growth_pct
            ),
        ));
    }
    let circuits = (plan.scenario == ScenarioKind::Recovery).then(|| circuits(&ticks, &before, after_metrics.as_ref()));
    let probe = probe.map(|p| p.summary(plan.probe_threshold));
    checks.extend(scenario_checks(&plan, &samples, circuits.as_ref(), probe.as_ref()));

    let passed = checks.iter().all(|c| c.ok);
    let mut per_tool: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    let mut per_session: Vec<Vec<&Sample>> = vec![Vec::new(); plan.sessions];
    for s in &samples {
        per_tool.entry(s.tool.clone()).or_default().push(s);
        per_session[s.session].push(s);
    }
    let permit_waits = match (&before.metrics, &after_metrics) {
        (Some(b), Some(a)) => scrape::permit_waits(b, a),
        _ => Vec::new(),
    };
    Ok(Report {
        exai_version: exai_core::VERSION,
        scenario: plan.scenario.name(),
        target: target.describe(),
        started_at_unix_ms,
        elapsed_secs: elapsed.as_secs_f64(),
        totals: Group::of(&samples, elapsed),
        per_tool: per_tool
            .into_iter()
            .map(|(tool, s)| (tool, Group::of(s, elapsed)))
            .collect(),
        per_session: per_session.into_iter().map(|s| Group::of(s, elapsed)).collect(),
        abandoned,
        sessions_renewed: ends.iter().map(|e| e.renewals).sum(),
        probe,
        permit_waits,
        stability,
        circuits,
        checks,
        passed,
        timeline: timeline(&samples, elapsed),
        samples,
        replicas: Vec::new(),
        plan,
    })
}
/// Sets every simulated model's behaviour for the scenario: hang (`timeout`) or fail with 503 (`recovery`,
/// until its recovery task clears the scripts).
fn script_upstream(sim: &exai_sim::SimHandle, plan: &Plan) {
    let script = match plan.scenario {
        ScenarioKind::Timeout => Some(Script::hang()),
        ScenarioKind::Recovery => Some(Script::status(503)),
        _ => plan.upstream_script(),
    };
    let state = sim.state();
    for model in state.config().models {
        state.set_model_script(&model.id, script.clone());
    }
}

async fn run_session(index: usize, mut session: Session, shared: Arc<Shared>) -> SessionEnd {
    let plan = &shared.plan;
    let mut rng = fastrand::Rng::with_seed(plan.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let total = plan.mix.total();
    let mut end = SessionEnd::default();
    loop {
        if shared.start.elapsed() >= plan.duration {
            break;
        }
        let n = shared.counters.started.fetch_add(1, Ordering::Relaxed);
        if plan.calls.is_some_and(|limit| n >= limit) {
            shared.counters.started.fetch_sub(1, Ordering::Relaxed);
            break;
        }
        end.issued += 1;
        let tool = plan.mix.pick(rng.u32(..total)).to_owned();
        let args = shared.arguments.for_call(&tool, n);
        let start_ms = shared.start.elapsed().as_millis() as u64;
        let began = Instant::now();
        let result = session.call(&tool, args, plan.stream).await;
        let latency = began.elapsed();
        shared.counters.done.fetch_add(1, Ordering::Relaxed);
        if result.error.is_some() {
            shared.counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(tool, error = ?result.error, message = ?result.message, "call failed");
        }
        let sample = Sample {
            start_ms,
            end_ms: shared.start.elapsed().as_millis() as u64,
            session: index,
            tool,
            latency_us: latency.as_micros() as u64,
            error: result.error,
            fallback: result.fallback,
            progress: result.progress,
        };
        shared.samples.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
        if !plan.think.is_zero() {
            session.pause(plan.think).await;
        }
    }
    end.disconnects = session.unexpected_disconnects();
    end.renewals = session.renewals();
    if let Session::Stdio(_) = &session {
        let status = session.call("status", json!({}), false).await;
        end.status = status.structured;
    }
    session.close().await;
    end
}

//! One module per subcommand, plus the start-up shared by the serving ones.
//!
//! - `stdio`, `serve`: the two MCP front-ends.
//! - `shim`: `exai shim`, stdio MCP bridged to the daemon's WebSocket (pieces in `crate::shim`).
//! - `admin`: `exai admin reset-circuits`, against a running daemon.
//! - `config`: `exai config check`.
//! - `tools`: `exai tools [--tokens|--json]`.
//! - `sim`: `exai sim`, the upstream simulator on its own.
//! - `providers`: GLM, Kimi, custom endpoints (or the simulator) as the app's providers and models.
//! - `loadtest`, `baseline`: `exai loadtest` and `exai baseline collect|compare` (pieces in `crate::loadtest`).

pub mod admin;
pub mod baseline;
pub mod config;
pub mod loadtest;
mod providers;
pub mod serve;
pub mod shim;
pub mod sim;
pub mod stdio;
pub mod tools;

use std::sync::Arc;

use anyhow::Context;
use exai_core::app::App;
use exai_core::config::Config;
use exai_core::resilience::fleet::{FleetLink, OnFailure};
use exai_core::store::Store;
use exai_core::tools::Registry;
use exai_sim::{SimConfig, SimHandle, Simulator};
use exai_store::{PgStore, SqliteStore};
use tokio_util::sync::CancellationToken;

/// How a serving command starts.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Offer the conformance suite's fixtures (`--conformance-fixtures`).
    pub fixtures: bool,
    /// Route every model to the in-process simulator (`--sim`).
    pub sim: bool,
}

/// A started app, and the simulator it talks to when `--sim` (stopped when this is dropped).
pub struct Started {
    pub app: Arc<App>,
    /// The Prometheus recorder's handle, for `GET /metrics`.
    pub exporter: exai_server::prometheus::Exporter,
    _sim: Option<SimHandle>,
}

/// Opens the configured store: PostgreSQL with `EXAI_DATABASE_URL`, else SQLite in the data directory.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database_url {
        Some(url) => Arc::new(
            PgStore::connect_with_timeout(url.expose(), config.timeouts.database)
                .await
                .context("connecting to PostgreSQL")?,
        ),
        None => Arc::new(
            SqliteStore::open_with_timeout(&config.data_dir, config.timeouts.database)
                .await
                .context("opening the embedded database")?,
        ),
    })
}

/// The fleet when `EXAI_REDIS_URL` is set. Redis not answering at start is an error with
/// `EXAI_REDIS_ON_FAILURE=closed`; with `open` it is logged and exai runs on local limits until Redis answers.
async fn connect_fleet(config: &Config) -> anyhow::Result<Option<Arc<FleetLink>>> {
    let fleet = &config.fleet;
    let Some(url) = &fleet.url else {
        return Ok(None);
    };
    let options = exai_fleet::Options {
        key_prefix: fleet.key_prefix.clone(),
        lease_ttl: fleet.lease_ttl,
        timeout: fleet.timeout,
    };
    let redis = exai_fleet::RedisFleet::new(url.expose(), options).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The same connection carries the response cache's shared layer (a Redis failure there is only a miss).
    let link = FleetLink::new(Arc::new(redis.clone()), fleet.on_failure).with_cache(Arc::new(redis));
    // Pinged through the link, so a Redis that does not answer at start opens the skip window (and logs it once).
    match (link.ping().await, fleet.on_failure) {
        (Ok(()), _) => tracing::info!(
            on_failure = fleet.on_failure.as_str(),
            "fleet limits shared through Redis"
        ),
        (Err(e), OnFailure::Closed) => {
            anyhow::bail!(
                "Redis (EXAI_REDIS_URL) does not answer: {e}; with EXAI_REDIS_ON_FAILURE=closed exai cannot start without it"
            )
        }
        (Err(_), OnFailure::Open) => {}
    }
    Ok(Some(Arc::new(link)))
}

/// Opens the store, wires the providers and builds the shared [`App`] for a serving command.
async fn start(config: Config, options: Options, transport: &str) -> anyhow::Result<Started> {
    crate::logging::init(&config.log);
    let exporter = exai_server::prometheus::install().context("installing the metrics recorder")?;
    let store = open_store(&config).await?;
    let fleet = connect_fleet(&config).await?;
    store
        .record_start(exai_core::VERSION, transport)
        .await
        .context("recording the start")?;
    let database = store.ping().await.context("checking the database")?.location;
    let sim = match options.sim {
        true => Some(
            Simulator::start_local(SimConfig::default())
                .await
                .context("starting the simulator")?,
        ),
        false => None,
    };
    let (models, providers) = providers::build(&config, sim.as_ref())?;
    let keys: Vec<&String> = providers
        .iter()
        .filter(|(_, p)| p.has_credentials())
        .map(|(n, _)| n)
        .collect();
    tracing::info!(version = exai_core::VERSION, transport, %database, simulator = options.sim, ?keys, "exai starting");
    log_roots(&config.files);
    let tools = Registry::select(&config.tools, options.fixtures);
    // The dashboard's trends survive a restart: the window starts from the newest recorded calls.
    let earlier = match store.recent_executions(exai_core::observe::RECENT_CAP as u32).await {
        Ok(calls) => calls,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read earlier tool calls; the dashboard starts empty");
            Vec::new()
        }
    };
    let app = App::with_providers(config, store, tools, models, providers, fleet);
    app.observe.preload(earlier);
    Ok(Started {
        app,
        exporter,
        _sim: sim,
    })
}

/// Says at start-up which directories file tools may read, and how they were chosen.
fn log_roots(files: &exai_core::config::FilesConfig) {
    if files.allowed_roots.is_empty() {
        tracing::warn!(allowed_roots = %files.roots_origin, "file access: no allowed roots");
    } else {
        let roots: Vec<String> = files.allowed_roots.iter().map(|r| r.display().to_string()).collect();
        tracing::info!(allowed_roots = %roots.join(", "), from = %files.roots_origin, "file access");
    }
}

/// A token cancelled on Ctrl-C or SIGTERM, so every front-end drains the same way.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

//! `exai serve`: the daemon. Prints `exai listening on http://ADDR` and then `exai websocket on ws://ADDR` on
//! stdout once both listeners are bound, so scripts and tests that asked for port 0 learn the ports; with
//! `MONITORING_DASHBOARD_PORT` set, a third line `exai dashboard on http://ADDR/dashboard` for that listener.
//! It refuses to listen off loopback without the tokens (`Config::unauthenticated_listeners`) unless
//! `EXAI_INSECURE_NO_AUTH` / `--insecure-no-auth`, refuses a data directory other users can write to
//! (`exai_core::private::check_dir`), and creates the WebSocket token file when `EXAI_WS_TOKEN` is unset.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use exai_core::config::{Config, Source};

/// The keys that decide who can reach the daemon: an `exai.toml` found in the working directory (a cloned
/// repository's) may not set them, or starting the daemon there (as `exai shim --start-daemon` does from an
/// assistant's project) would let the repository open it to every web page (`http.allowed_origins = "*"` and a
/// `ws.token` it knows) or to the network.
const EXPOSURE_KEYS: [&str; 7] = [
    "http.host",
    "ws.host",
    "http.token",
    "ws.token",
    "http.allowed_hosts",
    "http.allowed_origins",
    "insecure_no_auth",
];

/// `Err` naming the keys when `found` (an `exai.toml` read from the working directory, not named by `--config` or
/// `EXAI_CONFIG`) set any of [`EXPOSURE_KEYS`].
pub fn check_found_file(config: &Config, found: &std::path::Path) -> anyhow::Result<()> {
    let set: Vec<&str> = EXPOSURE_KEYS
        .into_iter()
        .filter(|key| config.settings.get(key).is_some_and(|v| v.source == Source::File))
        .collect();
    if !set.is_empty() {
        let shown = std::fs::canonicalize(found).unwrap_or_else(|_| found.to_owned());
        bail!(
            "refusing to start: {} (found in the working directory) sets {}, which decide who can reach the \
             daemon; only a file named with --config or EXAI_CONFIG, or the environment, may set them",
            shown.display(),
            set.join(", ")
        );
    }
    Ok(())
}

pub async fn run(config: Config, options: super::Options) -> anyhow::Result<()> {
    let exposed = config.unauthenticated_listeners();
    if !exposed.is_empty() && !config.insecure_no_auth {
        bail!(
            "refusing to start: {} would let anyone who can reach the address drive exai. Set the token named \
             (or bind EXAI_HTTP_HOST / EXAI_WS_HOST to 127.0.0.1), or pass --insecure-no-auth \
             (EXAI_INSECURE_NO_AUTH=true) to start anyway",
            exposed.join(", and ")
        );
    }
    // Another user who can write to the data directory could swap the database or the token file for their own.
    exai_core::private::check_dir(&config.data_dir).map_err(anyhow::Error::msg)?;
    // Before anything listens, so a client that can connect can also read the token (`exai shim --start-daemon`).
    let ws_token = match &config.ws.token {
        Some(token) => token.clone(),
        None => exai_core::ws_token::load_or_create(&config.data_dir)?,
    };
    let ws_token_file = config
        .ws
        .token
        .is_none()
        .then(|| exai_core::ws_token::path(&config.data_dir));
    let addr = SocketAddr::new(config.http.host, config.http.port);
    let ws_addr = SocketAddr::new(config.ws.host, config.ws.port);
    let dashboard_addr = config
        .http
        .dashboard_port
        .map(|port| SocketAddr::new(config.http.host, port));
    let started = super::start(config, options, "http").await?;
    let app = started.app.clone();
    for listener in &exposed {
        tracing::warn!(
            "serving {listener} (EXAI_INSECURE_NO_AUTH / --insecure-no-auth): anyone who can reach it can use it"
        );
    }
    if let Some(file) = &ws_token_file {
        tracing::info!(file = %file.display(), "WebSocket clients present the token in this file (EXAI_WS_TOKEN is unset)");
    }
    let (listener, local) = exai_server::http::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let (ws_listener, ws_local) = exai_server::http::bind(ws_addr)
        .await
        .with_context(|| format!("cannot listen for WebSocket clients on {ws_addr} (EXAI_WS_HOST / EXAI_WS_PORT)"))?;
    let dashboard = match dashboard_addr {
        Some(addr) => Some(
            exai_server::http::bind(addr)
                .await
                .with_context(|| format!("cannot listen for the dashboard on {addr} (MONITORING_DASHBOARD_PORT)"))?,
        ),
        None => None,
    };
    let mut out = std::io::stdout();
    writeln!(
        out,
        "exai listening on http://{local} (MCP endpoint http://{local}/mcp, dashboard http://{local}/dashboard)"
    )?;
    writeln!(out, "exai websocket on ws://{ws_local}")?;
    if let Some((_, dashboard_local)) = &dashboard {
        writeln!(out, "exai dashboard on http://{dashboard_local}/dashboard")?;
    }
    out.flush()?;
    tracing::info!(%local, %ws_local, "daemon listening");
    let shutdown = super::shutdown_on_signal();
    // Alert rules and the AI auditor, when enabled; tracked by `app.background`, so waited for below.
    exai_core::observe::start(app.clone(), shutdown.clone());
    let http = exai_server::http::serve(listener, app.clone(), started.exporter.clone(), shutdown.clone());
    let ws = exai_server::ws::serve(ws_listener, app.clone(), ws_token, shutdown.clone());
    let monitoring = async {
        match dashboard {
            Some((listener, _)) => {
                exai_server::http::serve_monitoring(listener, app.clone(), started.exporter.clone(), shutdown.clone())
                    .await
            }
            None => Ok(()),
        }
    };
    let outcome = tokio::try_join!(http, ws, monitoring);
    shutdown.cancel();
    // Calls still being recorded finish first.
    app.background.close();
    app.background.wait().await;
    outcome?;
    tracing::info!("daemon stopped");
    Ok(())
}

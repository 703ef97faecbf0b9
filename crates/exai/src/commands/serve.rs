//! `exai serve`: the daemon. Prints `exai listening on http://ADDR` and then `exai websocket on ws://ADDR` on
//! stdout once both listeners are bound, so scripts and tests that asked for port 0 learn the ports; with
//! `MONITORING_DASHBOARD_PORT` set, a third line `exai dashboard on http://ADDR/dashboard` for that listener.
//! It refuses to listen off loopback without the tokens (`Config::unauthenticated_listeners`) unless
//! `EXAI_INSECURE_NO_AUTH` / `--insecure-no-auth`, refuses a data directory other users can write to
//! (`exai_core::private::check_dir`), and creates the WebSocket token file when `EXAI_WS_TOKEN` is unset.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use exai_core::config::Config;

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
        if listener.starts_with("HTTP") {
            tracing::warn!(
                "serving {listener} (EXAI_INSECURE_NO_AUTH / --insecure-no-auth): anyone who can reach it can use it"
            );
        } else {
            // The WebSocket port still wants the token file's token, which remote clients cannot read.
            tracing::warn!(
                "serving {listener} (EXAI_INSECURE_NO_AUTH / --insecure-no-auth): it still wants the token in the \
                 data directory's `ws-token` file, which remote clients cannot read; set EXAI_WS_TOKEN to share one"
            );
        }
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

//! `exai serve`: the daemon. Prints `exai listening on http://ADDR` and then `exai websocket on ws://ADDR` on
//! stdout once both listeners are bound, so scripts and tests that asked for port 0 learn the ports.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use exai_core::config::Config;

pub async fn run(config: Config, options: super::Options) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.http.host, config.http.port);
    let ws_addr = SocketAddr::new(config.ws.host, config.ws.port);
    let started = super::start(config, options, "http").await?;
    let app = started.app.clone();
    let (listener, local) = exai_server::http::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let (ws_listener, ws_local) = exai_server::http::bind(ws_addr)
        .await
        .with_context(|| format!("cannot listen for WebSocket clients on {ws_addr} (EXAI_WS_HOST / EXAI_WS_PORT)"))?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "exai listening on http://{local} (MCP endpoint http://{local}/mcp)"
    )?;
    writeln!(out, "exai websocket on ws://{ws_local}")?;
    out.flush()?;
    tracing::info!(%local, %ws_local, "daemon listening");
    let shutdown = super::shutdown_on_signal();
    let http = exai_server::http::serve(listener, app.clone(), started.exporter.clone(), shutdown.clone());
    let ws = exai_server::ws::serve(ws_listener, app.clone(), shutdown.clone());
    let outcome = tokio::try_join!(http, ws);
    shutdown.cancel();
    // Calls still being recorded finish first.
    app.background.close();
    app.background.wait().await;
    outcome?;
    tracing::info!("daemon stopped");
    Ok(())
}

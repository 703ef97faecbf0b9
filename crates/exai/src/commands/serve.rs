//! `exai serve`: the daemon. Prints `exai listening on http://ADDR` on stdout once bound, so scripts
//! and tests that asked for port 0 learn the port.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use exai_core::config::Config;

pub async fn run(config: Config, options: super::Options) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.http.host, config.http.port);
    let started = super::start(config, options, "http").await?;
    let app = started.app.clone();
    let (listener, local) = exai_server::http::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "exai listening on http://{local} (MCP endpoint http://{local}/mcp)"
    )?;
    out.flush()?;
    tracing::info!(%local, "daemon listening");
    exai_server::http::serve(listener, app, super::shutdown_on_signal()).await?;
    tracing::info!("daemon stopped");
    Ok(())
}

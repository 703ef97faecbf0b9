//! `exai shim`: MCP over stdin/stdout for one assistant, bridged to the shared daemon's WebSocket (default
//! `ws://EXAI_WS_HOST:EXAI_WS_PORT`); with `--start-daemon` it starts `exai serve` when none answers. It says
//! `hello` with `EXAI_WS_TOKEN`, else with the daemon's token file in the data directory (`<data_dir>/ws-token`).

use std::path::PathBuf;
use std::time::Duration;

use exai_core::config::Config;
use tokio_util::sync::CancellationToken;

use crate::shim::{Daemon, DaemonStarter, Settings, ShimHandler, TokenSource, host_port};

/// Above the daemon's longest deadline, so the shim never gives up on a call before the daemon does.
const WATCHDOG_MARGIN: Duration = Duration::from_secs(60);

pub struct ShimOptions {
    pub url: Option<String>,
    pub start_daemon: bool,
    /// `--config` / `--data-dir` as given, passed on to a daemon the shim starts.
    pub global_args: Vec<String>,
}

pub async fn run(config: Config, options: ShimOptions) -> anyhow::Result<()> {
    crate::logging::init(&config.log);
    let url = options.url.unwrap_or_else(|| match config.ws.host {
        std::net::IpAddr::V6(host) => format!("ws://[{host}]:{}", config.ws.port),
        host => format!("ws://{host}:{}", config.ws.port),
    });
    let starter = match options.start_daemon {
        true => {
            let (ws_host, ws_port) = host_port(&url);
            Some(DaemonStarter {
                exe: std::env::current_exe()?,
                args: options.global_args,
                ws_host,
                ws_port,
                log: config.data_dir.join("daemon.log"),
            })
        }
        false => None,
    };
    let connect_wait = match starter {
        Some(_) => Duration::from_secs(30),
        None => Duration::from_secs(15),
    };
    let t = &config.timeouts;
    let longest = [t.tier1, t.simple_tool, t.files_tool, t.workflow_tool]
        .into_iter()
        .max()
        .unwrap_or_default();
    let stop = CancellationToken::new();
    let (daemon, connection) = Daemon::start(
        Settings {
            url: url.clone(),
            token: match &config.ws.token {
                Some(token) => TokenSource::Set(token.expose().to_owned()),
                // The token file opens this machine's daemon: it is never sent to another host.
                None if is_loopback(host_port(&url).0.as_deref()) => TokenSource::File(config.data_dir.clone()),
                None => TokenSource::Missing(format!(
                    "no WebSocket token for {url}: set EXAI_WS_TOKEN to that daemon's token (the token file in the \
                     data directory is only sent to a daemon on this machine's loopback address)"
                )),
            },
            starter,
            connect_wait,
        },
        stop.clone(),
    );
    tracing::info!(%url, "exai shim starting");
    let handler = ShimHandler::new(daemon, longest + WATCHDOG_MARGIN);
    let max = config.limits.max_request_bytes;
    let result = exai_server::stdio::serve_handler_on(
        handler,
        max,
        tokio::io::stdin(),
        tokio::io::stdout(),
        super::shutdown_on_signal(),
    )
    .await;
    stop.cancel();
    // Let the connection cancel the calls still running for this assistant and close cleanly.
    let _ = tokio::time::timeout(Duration::from_secs(3), connection).await;
    result?;
    Ok(())
}

/// The global flags a started daemon should share with the shim.
pub fn global_args(config: Option<&PathBuf>, data_dir: Option<&PathBuf>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(path) = config {
        args.extend(["--config".to_owned(), path.display().to_string()]);
    }
    if let Some(dir) = data_dir {
        args.extend(["--data-dir".to_owned(), dir.display().to_string()]);
    }
    args
}

/// Whether `host` (from a `ws://` URL, IPv6 without brackets) names this machine's loopback interface.
fn is_loopback(host: Option<&str>) -> bool {
    match host {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback()),
        None => false,
    }
}

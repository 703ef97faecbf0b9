//! Logging set-up: tracing to stderr only (stdout belongs to the MCP stdio transport), text or JSON
//! per `log.format`, filtered by `log.level`. Secrets never reach a log: config holds them as `Secret`.

use exai_core::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|e| {
        eprintln!(
            "exai: EXAI_LOG_LEVEL {:?} is not a valid filter ({e}); using `info`",
            log.level
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

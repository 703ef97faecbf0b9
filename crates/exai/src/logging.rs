//! Logging set-up: tracing to stderr only (stdout belongs to the MCP stdio transport), text or JSON
//! per `log.format`, filtered by `log.level`. Secrets never reach a log: config holds them as `Secret`, and the
//! WebSocket library's frame dumps stay off even at `trace` ([`FRAME_LOGGERS`]).

use exai_core::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// tungstenite logs every WebSocket frame, payload and all, at `trace`: `hello`'s token, session ids, prompts and
/// file contents. Its crates stay at `debug` at most when the filter asks for `trace` without naming them.
const FRAME_LOGGERS: [&str; 2] = ["tungstenite=debug", "tokio_tungstenite=debug"];

pub fn init(log: &LogConfig) {
    let mut filter = EnvFilter::try_new(&log.level).unwrap_or_else(|e| {
        eprintln!(
            "exai: EXAI_LOG_LEVEL {:?} is not a valid filter ({e}); using `info`",
            log.level
        );
        EnvFilter::new("info")
    });
    let traces = filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE);
    if traces && !log.level.contains("tungstenite") {
        for directive in FRAME_LOGGERS {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

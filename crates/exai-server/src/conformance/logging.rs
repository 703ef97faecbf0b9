//! Logging fixtures: tools that send `notifications/message` during a call, at or above the level the
//! client chose (`logging/setLevel` in a 2025 session, `_meta…/logLevel` per request in 2026; none without it).

use std::time::Duration;

use rmcp::model::{CallToolResponse, LoggingLevel, LoggingMessageNotificationParam, Tool};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::{Conformance, no_args, stateless, text_result, tool};

const STEPS: [&str; 3] = [
    "Tool execution started",
    "Tool processing data",
    "Tool execution completed",
];

pub fn tools() -> Vec<Tool> {
    vec![
        tool(
            "test_tool_with_logging",
            "Conformance fixture: logs three info messages while it runs.",
            no_args(),
        ),
        tool(
            "test_logging_tool",
            "Conformance fixture: logs only when the request asks for a log level.",
            no_args(),
        ),
    ]
}

pub async fn call(
    fixtures: &Conformance,
    name: &str,
    context: &RequestContext<RoleServer>,
) -> Option<Result<CallToolResponse, ErrorData>> {
    if !matches!(name, "test_tool_with_logging" | "test_logging_tool") {
        return None;
    }
    let threshold = if stateless(context) {
        context.meta.log_level()
    } else {
        Some(fixtures.log_level())
    };
    let emit = threshold.is_some_and(|t| enabled(LoggingLevel::Info, t));
    for (i, step) in STEPS.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if emit {
            let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, step.into()).with_logger("exai");
            if let Err(e) = context.peer.notify_logging_message(param).await {
                tracing::debug!(error = %e, "log notification not delivered");
            }
        }
    }
    Some(text_result("Tool with logging executed successfully"))
}

/// Whether a message at `level` passes a client threshold (levels are declared least severe first).
fn enabled(level: LoggingLevel, threshold: LoggingLevel) -> bool {
    level as u8 >= threshold as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_filters_less_severe_messages() {
        assert!(enabled(LoggingLevel::Info, LoggingLevel::Debug));
        assert!(enabled(LoggingLevel::Info, LoggingLevel::Info));
        assert!(!enabled(LoggingLevel::Info, LoggingLevel::Warning));
        assert!(enabled(LoggingLevel::Emergency, LoggingLevel::Error));
    }
}

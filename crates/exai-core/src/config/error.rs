//! Configuration problems: each names the setting, the offending value and what is allowed.
//! Loading collects every problem before failing, so a user fixes them all in one go.

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting, e.g. `EXAI_HTTP_PORT (http.port, from env)`.
    pub setting: String,
    /// The offending value (masked for secrets); empty when not applicable.
    pub value: String,
    /// What is wrong or what is allowed.
    pub message: String,
}

impl Problem {
    pub fn new(setting: impl Into<String>, value: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            value: value.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.setting, self.message)
        } else {
            write!(f, "{} = {:?}: {}", self.setting, self.value, self.message)
        }
    }
}

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
pub struct ConfigError(pub Vec<Problem>);

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

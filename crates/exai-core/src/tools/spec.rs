//! A tool's identity and hints: what `tools/list` shows, which timeout tier it runs in, and the
//! smallest tool profile (`EXAI_TOOL_PROFILE`) that includes it.

use std::str::FromStr;
use std::sync::Arc;

use super::JsonObject;

/// Timeout tier; the deadline for each comes from `timeouts.*` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// version, status, health, listmodels: answer in well under 100 ms.
    Tier1,
    /// chat, challenge: one model call.
    Simple,
    /// Tools that move files to or through a provider (none yet; the tier and its deadline are ready).
    Files,
    /// multi-step workflow tools.
    Workflow,
}

/// Tool profiles, smallest first. A tool is offered when its profile is at or below the configured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    Lean,
    Standard,
    Full,
}

impl FromStr for Profile {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "lean" => Ok(Profile::Lean),
            "standard" => Ok(Profile::Standard),
            "full" => Ok(Profile::Full),
            _ => Err(()),
        }
    }
}

/// MCP tool annotations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// The tool reaches outside exai (calls a model).
    pub open_world: bool,
}

impl Hints {
    /// A local, read-only, repeatable query (the tier-1 tools).
    pub const LOCAL_QUERY: Hints = Hints {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    };
}

#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    /// Terse, written for the model that reads it on every turn.
    pub description: &'static str,
    pub tier: Tier,
    pub profile: Profile,
    pub hints: Hints,
    pub input_schema: Arc<JsonObject>,
    pub output_schema: Option<Arc<JsonObject>>,
}

//! `version`: exai's name, version, build and the MCP protocol revisions it serves.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::protocol;

pub struct Version;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub name: &'static str,
    pub version: &'static str,
    /// `debug` or `release`.
    pub build_profile: &'static str,
    /// Operating system and CPU architecture, e.g. `linux-x86_64`.
    pub target: String,
    /// MCP protocol revisions served, newest first.
    pub protocol_versions: Vec<&'static str>,
    pub mcp_sdk: &'static str,
}

impl TypedTool for Version {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "version";
    const TITLE: &'static str = "Server version";
    const DESCRIPTION: &'static str = "exai version, build and supported MCP protocol versions.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Standard;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(_ctx: ToolContext, _input: Input) -> Result<Output, ToolError> {
        Ok(Output {
            name: "exai",
            version: crate::VERSION,
            build_profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            target: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            protocol_versions: protocol::SUPPORTED_VERSIONS.to_vec(),
            mcp_sdk: protocol::SDK,
        })
    }
}

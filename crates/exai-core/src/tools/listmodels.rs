//! `listmodels`: the model registry and which providers have keys. The registry is filled by the
//! providers work; until then the list is empty and says so.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;

pub struct ListModels;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub models: Vec<Model>,
    pub providers: Vec<Provider>,
    /// Why the list is what it is, when that needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Model {
    pub name: String,
    pub provider: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Provider {
    pub name: &'static str,
    pub has_key: bool,
}

impl TypedTool for ListModels {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "listmodels";
    const TITLE: &'static str = "List models";
    const DESCRIPTION: &'static str = "Models exai can route to, by provider, and which providers have API keys.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Lean;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(ctx: ToolContext, _input: Input) -> Result<Output, ToolError> {
        let p = &ctx.app.config.providers;
        Ok(Output {
            models: Vec::new(),
            providers: vec![
                Provider {
                    name: "glm",
                    has_key: p.glm.api_key.is_some(),
                },
                Provider {
                    name: "kimi",
                    has_key: p.kimi.api_key.is_some(),
                },
            ],
            note: Some("no model registry in this build yet: provider support is not implemented"),
        })
    }
}

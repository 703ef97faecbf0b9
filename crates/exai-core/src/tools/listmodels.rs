//! `listmodels`: every model exai can route to, with aliases and capabilities, and whether its provider
//! is usable (has its API key, or needs none).

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::models::Model;

pub struct ListModels;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub models: Vec<Listed>,
    pub providers: Vec<Provider>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Listed {
    #[serde(flatten)]
    pub model: Model,
    /// Its provider can be called now.
    pub available: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Provider {
    pub name: String,
    /// Has its API key (or needs none).
    pub has_key: bool,
}

impl TypedTool for ListModels {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "listmodels";
    const TITLE: &'static str = "List models";
    const DESCRIPTION: &'static str = "Models exai can route to (names, aliases, capabilities) and which \
providers have API keys.";
    const TIER: Tier = Tier::Tier1;
    const PROFILE: Profile = Profile::Lean;
    const HINTS: Hints = Hints::LOCAL_QUERY;

    async fn call(ctx: ToolContext, _input: Input) -> Result<Output, ToolError> {
        let app = &ctx.app;
        let models = app
            .models
            .iter()
            .map(|m| Listed {
                available: app.providers.usable(&m.provider),
                model: m.clone(),
            })
            .collect();
        let mut providers: Vec<Provider> = Vec::new();
        for m in app.models.iter() {
            if !providers.iter().any(|p| p.name == m.provider) {
                providers.push(Provider {
                    name: m.provider.clone(),
                    has_key: app.providers.usable(&m.provider),
                });
            }
        }
        Ok(Output { models, providers })
    }

    fn text(o: &Output) -> String {
        let mut lines = Vec::new();
        for p in &o.providers {
            lines.push(format!("{} ({})", p.name, if p.has_key { "key set" } else { "no key" }));
            for l in o.models.iter().filter(|l| l.model.provider == p.name) {
                let m = &l.model;
                let aliases = if m.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", m.aliases.join(", "))
                };
                let mut caps = vec![format!("{}k context", m.context_window / 1000)];
                if m.thinking != crate::models::Thinking::None {
                    caps.push("thinking".into());
                }
                if m.web_search {
                    caps.push("web search".into());
                }
                if m.vision {
                    caps.push("vision".into());
                }
                lines.push(format!("  {}{aliases}: {}", m.name, caps.join(", ")));
            }
        }
        lines.join("\n")
    }
}

//! The GLM (Zhipu / Z.ai) profile: `thinking` field, the `web_search` tool, usage sent unasked.
//! Docs: docs.z.ai chat-completion API; mainland endpoint at open.bigmodel.cn.

use exai_core::config::{ProviderConfig, Secret};

use crate::profile::{Profile, Quirks, ThinkingStyle, WebSearchStyle};

pub const NAME: &str = "glm";
/// The international endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.z.ai/api/paas/v4";
/// Mainland China.
pub const MAINLAND_BASE_URL: &str = "https://open.bigmodel.cn/api/paas/v4";
pub const KEY_ENV: &str = "GLM_API_KEY";

pub const QUIRKS: Quirks = Quirks {
    thinking: ThinkingStyle::GlmField,
    web_search: WebSearchStyle::GlmTool,
    stream_usage_option: false,
    max_search_rounds: 0,
};

/// The GLM profile for a key and base URL.
pub fn profile(api_key: Option<Secret>, base_url: &str) -> Profile {
    Profile::builtin(NAME, KEY_ENV, QUIRKS, api_key, base_url)
}

/// The GLM profile from `[providers.glm]`.
pub fn from_config(config: &ProviderConfig) -> Profile {
    profile(config.api_key.clone(), config.base_url.as_str())
}

//! The Kimi (Moonshot) profile: the `$web_search` builtin round trip, usage inside `choices[0]`.
//! Docs: platform.moonshot.ai (guide/use-web-search, api/errors); mainland endpoint at api.moonshot.cn.

use exai_core::config::{ProviderConfig, Secret};

use crate::profile::{Profile, Quirks, ThinkingStyle, WebSearchStyle};

pub const NAME: &str = "kimi";
/// The international endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.moonshot.ai/v1";
/// Mainland China.
pub const MAINLAND_BASE_URL: &str = "https://api.moonshot.cn/v1";
pub const KEY_ENV: &str = "KIMI_API_KEY";

pub const QUIRKS: Quirks = Quirks {
    thinking: ThinkingStyle::KimiSearchDisables,
    web_search: WebSearchStyle::KimiBuiltin,
    stream_usage_option: false,
    max_search_rounds: 3,
};

/// The Kimi profile for a key and base URL.
pub fn profile(api_key: Option<Secret>, base_url: &str) -> Profile {
    Profile::builtin(NAME, KEY_ENV, QUIRKS, api_key, base_url)
}

/// The Kimi profile from `[providers.kimi]`.
pub fn from_config(config: &ProviderConfig) -> Profile {
    profile(config.api_key.clone(), config.base_url.as_str())
}

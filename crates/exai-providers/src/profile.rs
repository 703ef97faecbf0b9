//! What differs between OpenAI-compatible providers: name, base URL, API key (and the variable that
//! supplies it), and the wire quirks for thinking, web search and streamed usage.

use exai_core::config::Secret;
use exai_core::provider::ProviderError;

/// How a provider is asked for its reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingStyle {
    /// Nothing to send: the model decides (Kimi thinking models always think; plain endpoints).
    Implicit,
    /// GLM: `"thinking": {"type": "enabled" | "disabled"}`.
    GlmField,
    /// Kimi: nothing normally (thinking models always think), but `"thinking": {"type": "disabled"}` with
    /// `$web_search`, which the K2.5+ models refuse to combine with thinking.
    KimiSearchDisables,
}

/// How a provider is asked to search the web.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebSearchStyle {
    /// Not offered: `web_search` requests are sent without a search tool.
    Unsupported,
    /// GLM: `tools: [{"type":"web_search","web_search":{"enable":true,...}}]`; the provider searches inside one call.
    GlmTool,
    /// Kimi: `tools: [{"type":"builtin_function","function":{"name":"$web_search"}}]`; the model asks for the
    /// search with `finish_reason: "tool_calls"` and we echo the arguments back in a `tool` message.
    KimiBuiltin,
}

/// The per-provider differences on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    pub thinking: ThinkingStyle,
    pub web_search: WebSearchStyle,
    /// Send `stream_options: {include_usage: true}` (GLM rejects it; GLM and Kimi send usage unasked).
    pub stream_usage_option: bool,
    /// Most `$web_search` round trips in one chat before giving up and reporting `tool_calls`.
    pub max_search_rounds: u8,
}

impl Quirks {
    /// A plain OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, OpenAI itself).
    pub const PLAIN: Quirks = Quirks {
        thinking: ThinkingStyle::Implicit,
        web_search: WebSearchStyle::Unsupported,
        stream_usage_option: true,
        max_search_rounds: 0,
    };
}

/// One provider as the client sees it.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The name users see (`glm`, `kimi`, or a custom endpoint's name).
    pub name: String,
    /// Base URL without `/chat/completions`, e.g. `https://api.z.ai/api/paas/v4`.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// The variable to mention when the key is missing; `None` for keyless endpoints (local servers).
    pub key_env: Option<String>,
    /// Model ids the endpoint serves, when known (informational; requests name their model).
    pub models: Vec<String>,
    pub quirks: Quirks,
}

impl Profile {
    /// A built-in provider's profile (GLM, Kimi): its name, key variable and quirks, for a key and base URL.
    pub fn builtin(name: &str, key_env: &str, quirks: Quirks, api_key: Option<Secret>, base_url: &str) -> Self {
        Self {
            name: name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            key_env: Some(key_env.to_string()),
            models: vec![],
            quirks,
        }
    }

    /// `{base}/chat/completions`.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    /// The key to send, `Ok(None)` for a keyless endpoint, or [`ProviderError::MissingKey`].
    pub fn key(&self) -> Result<Option<&str>, ProviderError> {
        let key = self
            .api_key
            .as_ref()
            .map(Secret::expose)
            .filter(|k| !k.trim().is_empty());
        match (key, &self.key_env) {
            (Some(k), _) => Ok(Some(k)),
            (None, None) => Ok(None),
            (None, Some(env)) => Err(ProviderError::MissingKey {
                provider: self.name.clone(),
                env: env.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(key: Option<&str>, env: Option<&str>) -> Profile {
        Profile {
            name: "p".into(),
            base_url: "http://h/v1/".into(),
            api_key: key.map(Secret::new),
            key_env: env.map(str::to_string),
            models: vec![],
            quirks: Quirks::PLAIN,
        }
    }

    #[test]
    fn endpoint_joins_without_double_slash() {
        assert_eq!(profile(None, None).endpoint(), "http://h/v1/chat/completions");
    }

    #[test]
    fn key_rules() {
        assert_eq!(profile(Some("k"), Some("K")).key(), Ok(Some("k")));
        assert_eq!(profile(None, None).key(), Ok(None));
        let missing = profile(Some("  "), Some("GLM_API_KEY")).key().unwrap_err();
        assert!(missing.to_string().starts_with("GLM_API_KEY is not set"), "{missing}");
    }
}

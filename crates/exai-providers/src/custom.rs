//! Custom OpenAI-compatible endpoints (vLLM, Ollama, llama.cpp, gateways): a name, a base URL, an
//! optional key variable (keyless local servers work), and the models they serve.

use exai_core::config::{CustomProviderConfig, Env, Secret};

use crate::profile::{Profile, Quirks};

/// A custom endpoint as configured.
#[derive(Debug, Clone)]
pub struct CustomEndpoint {
    pub name: String,
    pub base_url: String,
    /// The variable holding the key; `None` for a keyless server.
    pub key_env: Option<String>,
    pub models: Vec<String>,
    /// Ask for usage in streams (`stream_options.include_usage`); turn off for servers that reject it.
    pub stream_usage_option: bool,
}

impl CustomEndpoint {
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into(),
            key_env: None,
            models: vec![],
            stream_usage_option: true,
        }
    }

    /// The profile, reading the key (if any) from `env`.
    pub fn profile(&self, env: &dyn Env) -> Profile {
        let api_key = self.key_env.as_deref().and_then(|v| env.var(v)).map(Secret::new);
        Profile {
            name: self.name.clone(),
            base_url: self.base_url.trim_end_matches('/').to_string(),
            api_key,
            key_env: self.key_env.clone(),
            models: self.models.clone(),
            quirks: Quirks {
                stream_usage_option: self.stream_usage_option,
                ..Quirks::PLAIN
            },
        }
    }
}

/// The profile for a validated `[providers.custom.<name>]` table (its key already read from `api_key_env`).
pub fn from_config(config: &CustomProviderConfig) -> Profile {
    Profile {
        name: config.name.clone(),
        base_url: config.base_url.as_str().trim_end_matches('/').to_string(),
        api_key: config.api_key.clone(),
        key_env: config.api_key_env.clone(),
        models: config.models.clone(),
        quirks: Quirks::PLAIN,
    }
}

#[cfg(test)]
mod tests {
    use exai_core::config::MapEnv;

    use super::*;

    #[test]
    fn keyless_and_keyed_endpoints() {
        let mut endpoint = CustomEndpoint::new("ollama", "http://localhost:11434/v1/");
        let keyless = endpoint.profile(&MapEnv::default());
        assert_eq!(keyless.endpoint(), "http://localhost:11434/v1/chat/completions");
        assert_eq!(keyless.key(), Ok(None));
        endpoint.key_env = Some("ROUTER_KEY".into());
        assert!(
            endpoint.profile(&MapEnv::default()).key().is_err(),
            "a named variable that is unset is missing"
        );
        let keyed = endpoint.profile(&MapEnv::new([("ROUTER_KEY", "rk")]));
        assert_eq!(keyed.key(), Ok(Some("rk")));
    }

    #[test]
    fn from_validated_config() {
        let config = CustomProviderConfig {
            name: "vllm".into(),
            base_url: "http://gpu-box:8000/v1".parse().unwrap(),
            models: vec!["qwen3-coder".into()],
            api_key_env: None,
            api_key: None,
            timeout: std::time::Duration::from_secs(60),
        };
        let profile = from_config(&config);
        assert_eq!(profile.name, "vllm");
        assert_eq!(profile.endpoint(), "http://gpu-box:8000/v1/chat/completions");
        assert_eq!(profile.models, vec!["qwen3-coder".to_string()]);
        assert_eq!(profile.key(), Ok(None));
    }
}

//! exai's chat-completions providers: one OpenAI-compatible client ([`OpenAiCompatProvider`]) with GLM,
//! Kimi and custom endpoints as [`Profile`]s, all sharing one pooled [`HttpClient`].
//!
//! - [`profile`]: what differs per provider (name, base URL, key and its variable, wire quirks).
//! - [`glm`], [`kimi`], [`custom`]: the profiles.
//! - [`openai_compat`]: `wire` (JSON types), `sse` (event-stream parser), `client` (the provider).
//! - [`http`]: the shared reqwest client (rustls + ring).
//!
//! ```no_run
//! # fn demo(config: &exai_core::config::ProvidersConfig) -> Result<(), exai_core::provider::ProviderError> {
//! let providers = exai_providers::Providers::from_config(config)?;
//! let _glm = providers.glm; // impl exai_core::provider::Provider
//! # Ok(()) }
//! ```

pub mod custom;
pub mod glm;
pub mod http;
pub mod kimi;
pub mod openai_compat;
pub mod profile;

use exai_core::config::{CustomProviderConfig, Env, ProvidersConfig};
use exai_core::provider::ProviderError;

pub use custom::CustomEndpoint;
pub use http::HttpClient;
pub use openai_compat::OpenAiCompatProvider;
pub use profile::{Profile, Quirks, ThinkingStyle, WebSearchStyle};

/// The configured providers, sharing one connection pool.
#[derive(Debug, Clone)]
pub struct Providers {
    pub http: HttpClient,
    pub glm: OpenAiCompatProvider,
    pub kimi: OpenAiCompatProvider,
}

impl Providers {
    /// GLM and Kimi from `[providers]`. A missing key is not an error here: each chat reports it.
    pub fn from_config(config: &ProvidersConfig) -> Result<Self, ProviderError> {
        let http = HttpClient::new()?;
        Ok(Self {
            glm: OpenAiCompatProvider::new(glm::from_config(&config.glm), http.clone()),
            kimi: OpenAiCompatProvider::new(kimi::from_config(&config.kimi), http.clone()),
            http,
        })
    }

    /// A custom endpoint on the same pool.
    pub fn custom(&self, endpoint: &CustomEndpoint, env: &dyn Env) -> OpenAiCompatProvider {
        OpenAiCompatProvider::new(endpoint.profile(env), self.http.clone())
    }

    /// A validated `[providers.custom.<name>]` endpoint on the same pool.
    pub fn custom_from_config(&self, config: &CustomProviderConfig) -> OpenAiCompatProvider {
        OpenAiCompatProvider::new(custom::from_config(config), self.http.clone())
    }
}

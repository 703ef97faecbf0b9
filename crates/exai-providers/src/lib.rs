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
//! let http = exai_providers::HttpClient::new()?;
//! let _glm = exai_providers::OpenAiCompatProvider::new(exai_providers::glm::from_config(&config.glm), http);
//! # Ok(()) }
//! ```

pub mod custom;
pub mod glm;
pub mod http;
pub mod kimi;
pub mod openai_compat;
pub mod profile;

pub use custom::CustomEndpoint;
pub use http::HttpClient;
pub use openai_compat::OpenAiCompatProvider;
pub use profile::{Profile, Quirks, ThinkingStyle, WebSearchStyle};

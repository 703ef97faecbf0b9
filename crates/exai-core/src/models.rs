//! The model registry: canonical names, aliases and capabilities of every model exai can route to, and the
//! rules for `model: "auto"`. Built-in GLM and Kimi models live in [`BUILTIN`]; custom endpoints add theirs.

use std::time::Duration;

use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;

/// How a model treats reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Thinking {
    /// No reasoning output.
    None,
    /// Reasoning when the request asks for it (GLM `thinking: {type: enabled}`).
    Optional,
    /// Always reasons (Kimi thinking models).
    Always,
}

/// What a model can do, as its provider documents it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Model {
    /// The id sent upstream.
    pub name: String,
    /// `glm`, `kimi`, or a custom endpoint's name.
    pub provider: String,
    pub aliases: Vec<String>,
    pub context_window: u32,
    pub max_output_tokens: u32,
    pub streaming: bool,
    pub thinking: Thinking,
    pub web_search: bool,
    pub vision: bool,
    /// Accepted temperature range, inclusive.
    pub temperature: (f32, f32),
    /// Longest one upstream request may take, when the model needs more than its provider's default.
    #[serde(skip)]
    pub timeout: Option<Duration>,
}

struct Builtin {
    name: &'static str,
    provider: &'static str,
    aliases: &'static [&'static str],
    context: u32,
    output: u32,
    thinking: Thinking,
    web_search: bool,
    vision: bool,
    timeout_secs: Option<u64>,
}

const fn glm(name: &'static str, aliases: &'static [&'static str], context: u32, output: u32, vision: bool) -> Builtin {
    Builtin {
        name,
        provider: "glm",
        aliases,
        context,
        output,
        thinking: Thinking::Optional,
        web_search: true,
        vision,
        timeout_secs: None,
    }
}

const fn kimi(name: &'static str, aliases: &'static [&'static str], context: u32, output: u32) -> Builtin {
    Builtin {
        name,
        provider: "kimi",
        aliases,
        context,
        output,
        thinking: Thinking::None,
        web_search: true,
        vision: false,
        timeout_secs: None,
    }
}

/// GLM (Z.ai / Zhipu) and Kimi (Moonshot) models, from the providers' model pages.
const BUILTIN: &[Builtin] = &[
    glm("glm-4.6", &["glm"], 200_000, 128_000, false),
    glm("glm-4.5", &[], 128_000, 96_000, false),
    glm("glm-4.5-flash", &["flash", "glm-flash"], 128_000, 96_000, false),
    glm("glm-4.5-air", &["glm-air", "air"], 128_000, 96_000, false),
    glm("glm-4.5v", &["glm-vision"], 64_000, 16_384, true),
    kimi("kimi-k2-0905-preview", &["kimi", "kimi-k2"], 262_144, 32_768),
    kimi("kimi-k2-turbo-preview", &["kimi-turbo", "turbo"], 262_144, 32_768),
    Builtin {
        thinking: Thinking::Always,
        web_search: false,
        timeout_secs: Some(360),
        ..kimi("kimi-thinking-preview", &["kimi-thinking"], 131_072, 32_768)
    },
    kimi("moonshot-v1-8k", &[], 8_192, 4_096),
    kimi("moonshot-v1-32k", &[], 32_768, 16_384),
    kimi("moonshot-v1-128k", &[], 131_072, 32_768),
];

/// Preferred models for `model: "auto"`, cheapest adequate first.
const AUTO_FAST: &[&str] = &["glm-4.5-flash", "kimi-k2-turbo-preview"];
const AUTO_DEEP: &[&str] = &["glm-4.6", "kimi-k2-0905-preview"];

/// A name that matches no model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown model `{asked}`; valid models: {valid}")]
pub struct UnknownModel {
    pub asked: String,
    pub valid: String,
}

#[derive(Debug, Clone)]
pub struct ModelRegistry {
    models: Vec<Model>,
}

impl Default for ModelRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ModelRegistry {
    /// The built-in GLM and Kimi models.
    pub fn builtin() -> Self {
        let models = BUILTIN
            .iter()
            .map(|b| Model {
                name: b.name.to_owned(),
                provider: b.provider.to_owned(),
                aliases: b.aliases.iter().map(|a| (*a).to_owned()).collect(),
                context_window: b.context,
                max_output_tokens: b.output,
                streaming: true,
                thinking: b.thinking,
                web_search: b.web_search,
                vision: b.vision,
                temperature: (0.0, 1.0),
                timeout: b.timeout_secs.map(Duration::from_secs),
            })
            .collect();
        Self { models }
    }

    /// Adds a custom endpoint's models (OpenAI-compatible: streaming, no special features assumed).
    pub fn add_custom(&mut self, provider: &str, names: &[String]) {
        for name in names {
            self.models.push(Model {
                name: name.clone(),
                provider: provider.to_owned(),
                aliases: Vec::new(),
                context_window: 32_768,
                max_output_tokens: 8_192,
                streaming: true,
                thinking: Thinking::None,
                web_search: false,
                vision: false,
                temperature: (0.0, 2.0),
                timeout: None,
            });
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Model> {
        self.models.iter()
    }

    /// The model named (canonical name or alias, case-insensitive).
    pub fn resolve(&self, name: &str) -> Result<&Model, UnknownModel> {
        let wanted = name.trim().to_ascii_lowercase();
        self.models
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(&wanted) || m.aliases.iter().any(|a| a.eq_ignore_ascii_case(&wanted)))
            .ok_or_else(|| UnknownModel {
                asked: name.to_owned(),
                valid: self
                    .models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The model for `model: "auto"` (or no model): the first preferred model whose provider is usable, else
    /// any usable model (a custom endpoint), else the first preferred model (whose call names the missing key).
    pub fn auto(&self, deep: bool, usable: impl Fn(&str) -> bool) -> &Model {
        let preferred = if deep { AUTO_DEEP } else { AUTO_FAST };
        let candidates: Vec<&Model> = preferred.iter().filter_map(|n| self.resolve(n).ok()).collect();
        candidates
            .iter()
            .copied()
            .find(|m| usable(&m.provider))
            .or_else(|| self.models.iter().find(|m| usable(&m.provider)))
            .unwrap_or(candidates[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve_case_insensitively_and_are_unique() {
        let r = ModelRegistry::builtin();
        assert_eq!(r.resolve("flash").unwrap().name, "glm-4.5-flash");
        assert_eq!(r.resolve("KIMI").unwrap().name, "kimi-k2-0905-preview");
        assert_eq!(r.resolve("glm-4.6").unwrap().context_window, 200_000);
        assert_eq!(r.resolve("kimi-thinking").unwrap().thinking, Thinking::Always);
        let mut all: Vec<String> = r
            .iter()
            .flat_map(|m| std::iter::once(m.name.clone()).chain(m.aliases.clone()))
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a name or alias is used twice");
    }

    #[test]
    fn unknown_model_lists_the_valid_names() {
        let err = ModelRegistry::builtin().resolve("gpt-9").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown model `gpt-9`; valid models: glm-4.6, "),
            "{err}"
        );
    }

    #[test]
    fn auto_prefers_a_model_whose_provider_has_a_key() {
        let r = ModelRegistry::builtin();
        assert_eq!(r.auto(false, |p| p == "glm").name, "glm-4.5-flash");
        assert_eq!(r.auto(false, |p| p == "kimi").name, "kimi-k2-turbo-preview");
        assert_eq!(r.auto(true, |p| p == "kimi").name, "kimi-k2-0905-preview");
        assert_eq!(
            r.auto(true, |_| false).name,
            "glm-4.6",
            "nothing usable: the first choice, which names its key"
        );
        let mut custom = ModelRegistry::builtin();
        custom.add_custom("ollama", &["llama3.1".to_owned()]);
        assert_eq!(custom.auto(false, |p| p == "ollama").name, "llama3.1");
    }
}

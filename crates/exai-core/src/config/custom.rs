//! `[providers.custom.<name>]` tables: OpenAI-compatible endpoints (Ollama, vLLM, llama.cpp, OpenRouter)
//! declared in `exai.toml` with a base URL, the models they serve and, optionally, the variable holding a key.

use std::collections::BTreeMap;
use std::time::Duration;

use super::sources::{CustomRaw, Env};
use super::{Problem, Secret};

/// Names the built-in providers use; a custom endpoint may not take them.
const RESERVED: &[&str] = &["glm", "kimi", "sim"];
const FIELDS: &[&str] = &["base_url", "models", "api_key_env", "timeout_secs"];

#[derive(Debug, Clone)]
pub struct CustomProviderConfig {
    pub name: String,
    pub base_url: url::Url,
    pub models: Vec<String>,
    /// The variable the key is read from; `None` for keyless local servers.
    pub api_key_env: Option<String>,
    pub api_key: Option<Secret>,
    pub timeout: Duration,
}

/// Validates every custom table, recording each problem with its `exai.toml` path.
pub(super) fn validate(raw: &CustomRaw, env: &dyn Env, problems: &mut Vec<Problem>) -> Vec<CustomProviderConfig> {
    raw.iter()
        .filter_map(|(name, fields)| one(name, fields, env, problems))
        .collect()
}

fn one(
    name: &str,
    fields: &BTreeMap<String, String>,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Option<CustomProviderConfig> {
    let at = |field: &str| format!("exai.toml providers.custom.{name}.{field}");
    let before = problems.len();
    if RESERVED.contains(&name) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(Problem::new(
            format!("exai.toml [providers.custom.{name}]"),
            "",
            "a custom provider needs its own name of letters, digits, - and _ (not glm, kimi or sim)",
        ));
    }
    for field in fields.keys().filter(|f| !FIELDS.contains(&f.as_str())) {
        problems.push(Problem::new(
            at(field),
            "",
            format!("unknown key; expected one of {}", FIELDS.join(", ")),
        ));
    }
    let base_url = match fields.get("base_url").map(|u| url::Url::parse(u)) {
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => Some(u),
        Some(_) => {
            problems.push(Problem::new(
                at("base_url"),
                &fields["base_url"],
                "expected an http:// or https:// URL",
            ));
            None
        }
        None => {
            problems.push(Problem::new(
                at("base_url"),
                "",
                "missing: the endpoint's base URL, e.g. http://localhost:11434/v1",
            ));
            None
        }
    };
    let models: Vec<String> = fields
        .get("models")
        .map(|m| {
            m.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if models.is_empty() {
        problems.push(Problem::new(
            at("models"),
            "",
            "missing: the model names this endpoint serves",
        ));
    }
    let api_key_env = fields.get("api_key_env").cloned();
    if let Some(var) = &api_key_env
        && !var
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        problems.push(Problem::new(
            at("api_key_env"),
            var,
            "expected an environment variable name like OPENROUTER_API_KEY",
        ));
    }
    let timeout = match fields.get("timeout_secs").map(|t| t.parse::<u64>()) {
        None => Some(Duration::from_secs(120)),
        Some(Ok(secs)) if secs > 0 => Some(Duration::from_secs(secs)),
        Some(_) => {
            problems.push(Problem::new(
                at("timeout_secs"),
                &fields["timeout_secs"],
                "expected a whole number of seconds, at least 1",
            ));
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    let api_key = api_key_env
        .as_deref()
        .and_then(|v| env.var(v))
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    Some(CustomProviderConfig {
        name: name.to_owned(),
        base_url: base_url?,
        models,
        api_key_env,
        api_key,
        timeout: timeout?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, MapEnv};

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exai.toml");
        std::fs::write(&file, toml).unwrap();
        Config::load(&MapEnv::new(env.iter().copied()), Some(&file), &[])
    }

    #[test]
    fn custom_endpoints_are_read_with_their_key_from_the_named_variable() {
        let c = load(
            "[providers.custom.ollama]\nbase_url = \"http://localhost:11434/v1\"\nmodels = [\"llama3.1\", \"qwen2.5\"]\n\
             [providers.custom.openrouter]\nbase_url = \"https://openrouter.ai/api/v1\"\nmodels = [\"x/y\"]\n\
             api_key_env = \"OPENROUTER_API_KEY\"\n",
            &[("OPENROUTER_API_KEY", "or-key")],
        )
        .unwrap();
        assert_eq!(c.custom_providers.len(), 2);
        let ollama = &c.custom_providers[0];
        assert_eq!(
            (ollama.name.as_str(), ollama.models.len(), ollama.api_key.is_none()),
            ("ollama", 2, true)
        );
        assert_eq!(c.custom_providers[1].api_key.as_ref().unwrap().expose(), "or-key");
    }

    #[test]
    fn a_custom_timeout_must_fit_the_simple_tool_deadline() {
        let toml = "[providers.custom.slow]\nbase_url = \"http://x/v1\"\nmodels = [\"m\"]\ntimeout_secs = 900\n";
        let err = load(toml, &[]).unwrap_err().to_string();
        assert!(
            err.contains("providers.custom.slow.timeout_secs = \"900\"") && err.contains("SIMPLE_TOOL_TIMEOUT_SECS"),
            "{err}"
        );
    }

    #[test]
    fn bad_custom_tables_name_the_key() {
        let err = load(
            "[providers.custom.glm]\nbase_url = \"ftp://x\"\nmodelz = [\"a\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[providers.custom.glm]") && err.contains("not glm, kimi or sim"),
            "{err}"
        );
        assert!(err.contains("providers.custom.glm.base_url = \"ftp://x\""), "{err}");
        assert!(
            err.contains("providers.custom.glm.modelz") && err.contains("providers.custom.glm.models"),
            "{err}"
        );
    }
}

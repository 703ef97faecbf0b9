//! Turns configuration into the app's providers and model registry: GLM and Kimi (keys from config),
//! custom endpoints, or with `--sim` GLM and Kimi pointed at the in-process simulator and named `sim`.

use std::sync::Arc;

use anyhow::Context;
use exai_core::config::{Config, Secret};
use exai_core::models::ModelRegistry;
use exai_core::provider::Providers;
use exai_providers::{HttpClient, OpenAiCompatProvider, Profile, custom, glm, kimi};
use exai_sim::SimHandle;

pub fn build(config: &Config, sim: Option<&SimHandle>) -> anyhow::Result<(ModelRegistry, Providers)> {
    let http = HttpClient::new().context("building the HTTP client")?;
    let provider = |profile: Profile| Arc::new(OpenAiCompatProvider::new(profile, http.clone()));
    let mut models = ModelRegistry::builtin();
    let mut providers = Providers::default();
    let (glm_profile, kimi_profile) = match sim {
        Some(sim) => {
            let key = || Some(Secret::new("simulator"));
            let simulated = |mut p: Profile| {
                p.name = "sim".to_owned();
                p
            };
            (
                simulated(glm::profile(key(), &sim.base_url_glm())),
                simulated(kimi::profile(key(), &sim.base_url_v1())),
            )
        }
        None => (
            glm::from_config(&config.providers.glm),
            kimi::from_config(&config.providers.kimi),
        ),
    };
    providers.insert("glm", provider(glm_profile));
    providers.insert("kimi", provider(kimi_profile));
    for c in &config.custom_providers {
        models.add_custom(&c.name, &c.models);
        providers.insert(c.name.clone(), provider(custom::from_config(c)));
    }
    Ok((models, providers))
}

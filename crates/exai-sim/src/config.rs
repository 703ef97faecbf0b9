//! What the simulator serves: the model list, each model's provider family and default script, and the
//! latency profile. `SimConfig::default()` lists the GLM and Kimi models exai knows, with zero latency.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::script::Script;

/// Which real provider a model imitates. Picks the error-body shape, where streaming usage goes, the
/// realistic latency range and `owned_by` in `/models`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Zhipu / Z.ai GLM (`glm-*`), served at `…/api/paas/v4/chat/completions` in reality.
    Glm,
    /// Moonshot Kimi (`kimi-*`, `moonshot-*`), served at `…/v1/chat/completions` in reality.
    Kimi,
    /// Plain OpenAI shapes (any other model name, e.g. `sim-echo`).
    #[serde(rename = "openai")]
    OpenAi,
}

impl Family {
    /// The family a model name implies: `glm-` → GLM, `kimi-`/`moonshot-` → Kimi, else OpenAI.
    pub fn of(model: &str) -> Family {
        let m = model.to_ascii_lowercase();
        if m.starts_with("glm-") {
            Family::Glm
        } else if m.starts_with("kimi-") || m.starts_with("moonshot-") {
            Family::Kimi
        } else {
            Family::OpenAi
        }
    }

    /// The `owned_by` value `/models` reports.
    pub fn owned_by(self) -> &'static str {
        match self {
            Family::Glm => "z-ai",
            Family::Kimi => "moonshot",
            Family::OpenAi => "exai-sim",
        }
    }
}

/// How long answers take when a script does not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyProfile {
    /// No delay at all (the default; unit and integration tests).
    #[default]
    Zero,
    /// Total answer time drawn per request: GLM 1–5 s, Kimi 2–10 s, others 0.5–2 s; 20–40 % of it before
    /// the first token, the rest spread evenly over the chunks.
    Realistic,
}

impl LatencyProfile {
    /// The `[min, max]` total answer time in milliseconds for a family, or `None` for no delay.
    pub fn total_ms(self, family: Family) -> Option<(u64, u64)> {
        match self {
            LatencyProfile::Zero => None,
            LatencyProfile::Realistic => Some(match family {
                Family::Glm => (1_000, 5_000),
                Family::Kimi => (2_000, 10_000),
                Family::OpenAi => (500, 2_000),
            }),
        }
    }
}

impl FromStr for LatencyProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "zero" => Ok(LatencyProfile::Zero),
            "realistic" => Ok(LatencyProfile::Realistic),
            other => Err(format!(
                "unknown latency profile {other:?} (expected `zero` or `realistic`)"
            )),
        }
    }
}

impl fmt::Display for LatencyProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LatencyProfile::Zero => "zero",
            LatencyProfile::Realistic => "realistic",
        })
    }
}

/// One served model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub id: String,
    pub family: Family,
    /// Streams `reasoning_content` before the answer unless the request sends `thinking: {"type": "disabled"}`
    /// (GLM-4.5/4.6 think by default; so does `kimi-thinking-preview`).
    pub thinks: bool,
    /// The model's default script (used when no queued or header script applies).
    pub script: Option<Script>,
}

impl ModelSpec {
    /// A model whose family follows from its name, not thinking, with no script.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        ModelSpec {
            family: Family::of(&id),
            id,
            thinks: false,
            script: None,
        }
    }

    /// Marks the model as thinking by default.
    pub fn thinking(mut self) -> Self {
        self.thinks = true;
        self
    }

    /// Sets the model's default script.
    pub fn with_script(mut self, script: Script) -> Self {
        self.script = Some(script);
        self
    }
}

/// Everything a simulator instance serves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub models: Vec<ModelSpec>,
    pub latency: LatencyProfile,
    /// Serve any model name (family from its prefix) instead of answering unknown models with the provider's
    /// "model not found" error.
    pub accept_unknown_models: bool,
    /// Seed for the delay sampler and ids.
    pub seed: u64,
    /// Requests kept in the log; the oldest are dropped beyond this (keeps long load tests bounded).
    pub max_recorded: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            models: default_models(),
            latency: LatencyProfile::Zero,
            accept_unknown_models: false,
            seed: 0x5EED_0E4A_1517_0001,
            max_recorded: 10_000,
        }
    }
}

impl SimConfig {
    pub fn with_latency(mut self, latency: LatencyProfile) -> Self {
        self.latency = latency;
        self
    }

    /// Adds a model, replacing any model with the same id.
    pub fn with_model(mut self, spec: ModelSpec) -> Self {
        self.models.retain(|m| m.id != spec.id);
        self.models.push(spec);
        self
    }

    /// Sets one model's default script, adding the model if it is not listed yet.
    pub fn with_model_script(mut self, model: &str, script: Script) -> Self {
        match self.models.iter_mut().find(|m| m.id == model) {
            Some(m) => m.script = Some(script),
            None => self.models.push(ModelSpec::new(model).with_script(script)),
        }
        self
    }

    pub fn accepting_unknown_models(mut self) -> Self {
        self.accept_unknown_models = true;
        self
    }

    pub fn model(&self, id: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.id == id)
    }
}

/// The models exai knows about: GLM (thinking by default from 4.5 on), Kimi, Moonshot v1, and `sim-echo`.
pub fn default_models() -> Vec<ModelSpec> {
    let mut models: Vec<ModelSpec> = ["glm-4.6", "glm-4.5", "glm-4.5-flash", "glm-4.5-air", "glm-4.5v"]
        .into_iter()
        .map(|id| ModelSpec::new(id).thinking())
        .collect();
    models.extend(
        [
            "kimi-k2-0905-preview",
            "kimi-k2-turbo-preview",
            "moonshot-v1-8k",
            "moonshot-v1-32k",
            "moonshot-v1-128k",
            "sim-echo",
        ]
        .into_iter()
        .map(ModelSpec::new),
    );
    models.push(ModelSpec::new("kimi-thinking-preview").thinking());
    models
}

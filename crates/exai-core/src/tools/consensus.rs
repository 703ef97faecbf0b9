//! `consensus`: several models, each with a stance, consulted at once on a question's final step (a failure is
//! reported, not dropped); the expert's synthesis names every position. A [`Definition`] plus engine hooks.
//!
//! [`Definition`]: crate::workflow::Definition

use std::collections::BTreeMap;
use std::sync::Mutex;

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model_call::{self, CallSpec};
use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::provider::{Message, Role};
use crate::workflow::{self, Brief, Confidence, Definition, Hooks, Input, Material, Output};

pub struct Consensus;

const DEF: Definition = Definition {
    name: "consensus",
    subject: "consensus question",
    first_step: "state the proposal or question precisely, with its context and constraints; list the relevant_files the models should read.",
    next_step: "gather what the models need to judge it: the evidence, the alternatives, the costs; on the final step send models (each with a stance).",
    wants_hypothesis: false,
    expert_role: "You are a moderator synthesising the positions of several expert models on one question.",
    expert_task: "Synthesise the positions above: name each model with its stance and its position in a sentence or two (say which failed to answer), then the points of agreement, the disagreements and which side the evidence supports, and a final recommendation with its risks.",
    next_actions: &[
        "Weigh the synthesis with the individual positions; check the claims they disagree on.",
        "Present the recommendation with each model's position and the main risks.",
    ],
};

const MODEL_ROLE: &str = "You are one of several expert models asked for an independent position on a proposal or \
question that another AI assistant has investigated. Base your position on the evidence; be concrete.";

const MODEL_TASK: &str = "\n\n# Your task\nGive your position: a one-line verdict first, then your reasoning, the \
main risks, and what would change your mind.";

/// The stance a model is asked to take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stance {
    For,
    Against,
    #[default]
    Neutral,
}

impl Stance {
    fn word(self) -> &'static str {
        match self {
            Stance::For => "for",
            Stance::Against => "against",
            Stance::Neutral => "neutral",
        }
    }

    fn instruction(self) -> &'static str {
        match self {
            Stance::For => {
                "Argue for the proposal: make the strongest honest case in its favour, but say plainly if it is fundamentally unsound."
            }
            Stance::Against => {
                "Argue against the proposal: find its weaknesses, risks and better alternatives, but acknowledge what is genuinely strong."
            }
            Stance::Neutral => {
                "Weigh the proposal impartially: its benefits and its risks, as far as the evidence supports them."
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelStance {
    /// Model name or alias (see `listmodels`).
    pub model: String,
    /// `for`, `against` or `neutral` (default).
    #[serde(default)]
    pub stance: Stance,
    /// Extra instructions for this model only.
    #[serde(default)]
    pub stance_prompt: Option<String>,
}

/// Most models one consensus run consults (each is a model call).
const MAX_MODELS: usize = 16;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConsensusInput {
    #[serde(flatten)]
    pub base: Input,
    /// The models to consult, at least two, each with a stance; required on the final step (checked whenever
    /// given). The same model may appear twice with different stances. At most 16.
    #[serde(default)]
    #[schemars(length(max = MAX_MODELS))]
    pub models: Vec<ModelStance>,
    /// Fields neither the engine nor this tool knows (refused by name).
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PositionStatus {
    Answered,
    Failed,
}

/// One consulted model's position, or its failure.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Position {
    /// The model as asked for.
    pub model: String,
    pub stance: Stance,
    pub status: PositionStatus,
    /// Who answered (`sim` for the simulator) and as which model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Why the model gave no position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ConsensusOutput {
    #[serde(flatten)]
    pub workflow: Output,
    /// Each consulted model's position or failure, in the order given (final step only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<Position>,
}

/// The models to consult, and what they answered.
struct Panel {
    models: Vec<ModelStance>,
    positions: Mutex<Vec<Position>>,
}

impl Panel {
    fn label(m: &ModelStance) -> String {
        format!("{} (stance: {})", m.model, m.stance.word())
    }
}

impl Hooks for Panel {
    async fn check(&self, ctx: &ToolContext, input: &Input) -> Result<(), ToolError> {
        crate::files::lists::check_len("models", self.models.len(), MAX_MODELS).map_err(|message| {
            ToolError::InvalidArguments {
                tool: DEF.name.to_owned(),
                message,
            }
        })?;
        for m in &self.models {
            model_call::resolve(&ctx.app, Some(&m.model), true, DEF.name)?;
        }
        let consults =
            !input.next_step_required && input.use_assistant_model && input.confidence != Some(Confidence::Certain);
        if consults && self.models.len() < 2 {
            return Err(ToolError::InvalidArguments {
                tool: DEF.name.to_owned(),
                message: format!(
                    "models must list at least two models on the final step (got {}), e.g. [{{\"model\": \"glm-4.6\", \
                     \"stance\": \"for\"}}, {{\"model\": \"kimi-k2-0905-preview\", \"stance\": \"against\"}}]",
                    self.models.len()
                ),
            });
        }
        Ok(())
    }

    async fn consult(&self, ctx: &ToolContext, brief: &Brief<'_>) -> Result<Option<Material>, ToolError> {
        if self.models.is_empty() {
            return Ok(Some(Material {
                text: String::new(),
                notes: vec!["no models were given, so none was consulted".into()],
            }));
        }
        let calls = self.models.iter().map(|m| async move {
            let model = model_call::resolve(&ctx.app, Some(&m.model), true, DEF.name)?;
            let call_ctx = ToolContext {
                progress: ctx.progress.tagged(&Self::label(m)),
                ..ctx.clone()
            };
            let extra = m.stance_prompt.as_deref().map_or(String::new(), |p| format!("\n\n{p}"));
            let system = format!("{MODEL_ROLE}\n\n{}{extra}", m.stance.instruction());
            let spec = CallSpec {
                model: &model,
                messages: vec![
                    Message::text(Role::System, system),
                    Message::text(Role::User, format!("{}{MODEL_TASK}", brief.text)),
                ],
                temperature: None,
                thinking: brief.thinking,
                web_search: brief.web_search,
                cache: ctx.app.cache.enabled_for(DEF.name),
            };
            model_call::run(&call_ctx, spec).await
        });
        let results = futures::future::join_all(calls).await;

        let mut text = String::from("\n# Positions of the consulted models\n");
        let mut notes = Vec::new();
        let mut positions = Vec::new();
        for (m, result) in self.models.iter().zip(results) {
            let label = Self::label(m);
            let mut p = Position {
                model: m.model.clone(),
                stance: m.stance,
                status: PositionStatus::Answered,
                provider: None,
                answered_by: None,
                content: None,
                error: None,
            };
            match result {
                Ok(a) => {
                    text.push_str(&format!("\n## {label}\n{}\n", a.content));
                    (p.provider, p.answered_by, p.content) = (Some(a.provider), Some(a.model), Some(a.content));
                }
                Err(e) => {
                    text.push_str(&format!("\n## {label}\nFAILED, no position: {e}\n"));
                    notes.push(format!("{label} failed: {e}"));
                    (p.status, p.error) = (PositionStatus::Failed, Some(e.to_string()));
                }
            }
            positions.push(p);
        }
        if positions.iter().all(|p| p.status == PositionStatus::Failed) {
            return Err(ToolError::Unavailable(format!(
                "consensus: every consulted model failed: {}; send the final step again later or with other models",
                notes.join("; ")
            )));
        }
        *self.positions.lock().unwrap_or_else(|e| e.into_inner()) = positions;
        Ok(Some(Material { text, notes }))
    }
}

impl TypedTool for Consensus {
    type Input = ConsensusInput;
    type Output = ConsensusOutput;
    const NAME: &'static str = "consensus";
    const TITLE: &'static str = "Consensus of several models";
    const DESCRIPTION: &'static str = "Ask several models at once, each with a stance (for/against/neutral), about a proposal or decision, then \
get a synthesis of their positions. Steps frame the question; the final step (with models) consults them. Pass continuation_id.";
    const TIER: Tier = Tier::Workflow;
    const PROFILE: Profile = Profile::Full;
    const HINTS: Hints = workflow::HINTS;

    async fn call(ctx: ToolContext, input: ConsensusInput) -> Result<ConsensusOutput, ToolError> {
        if let Some(field) = input.unknown.keys().next() {
            return Err(ToolError::InvalidArguments {
                tool: DEF.name.to_owned(),
                message: format!("unknown field `{field}`"),
            });
        }
        let panel = Panel {
            models: input.models,
            positions: Mutex::default(),
        };
        let workflow = workflow::run_with(&DEF, ctx, input.base, &panel).await?;
        let positions = panel.positions.into_inner().unwrap_or_else(|e| e.into_inner());
        Ok(ConsensusOutput { workflow, positions })
    }

    fn text(o: &ConsensusOutput) -> String {
        let mut out = workflow::render(&o.workflow);
        if !o.positions.is_empty() {
            out.push_str("\n\n## Positions");
            for p in &o.positions {
                let what = match (&p.content, &p.error) {
                    (_, Some(e)) => format!("FAILED: {e}"),
                    (Some(c), _) => c.lines().next().unwrap_or("").to_owned(),
                    _ => String::new(),
                };
                out.push_str(&format!("\n- {} ({}): {what}", p.model, p.stance.word()));
            }
        }
        out
    }
}

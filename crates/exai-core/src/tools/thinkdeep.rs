//! `thinkdeep`: extended reasoning about a hard problem, step by step, ending with an expert model that
//! challenges and extends the conclusions. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct ThinkDeep;

const DEF: Definition = Definition {
    name: "thinkdeep",
    subject: "deep-thinking session",
    first_step: "map the problem: state the question, constraints and what is known; list the options or explanations worth weighing.",
    next_step: "examine the weakest part of your current reasoning: look for counter-evidence, edge cases and assumptions you have not checked.",
    wants_hypothesis: true,
    expert_role: "You are a principal engineer asked for a second, independent line of reasoning on a hard problem.",
    expert_task: "Challenge the reasoning above: point out flawed assumptions and missed alternatives, then give your own conclusion with its trade-offs and the evidence that would settle what remains open.",
    next_actions: &[
        "Reconcile your conclusion with the expert's; where they differ, check the evidence that decides it.",
        "Present the final recommendation with its trade-offs and open risks.",
    ],
};

impl TypedTool for ThinkDeep {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "thinkdeep";
    const TITLE: &'static str = "Think deeper";
    const DESCRIPTION: &'static str = "Extended step-by-step reasoning on a hard problem (design choice, trade-off, puzzling behaviour); at the \
end a strong model challenges and extends your conclusions. Call once per step; pass continuation_id.";
    const TIER: Tier = Tier::Workflow;
    const PROFILE: Profile = Profile::Standard;
    const HINTS: Hints = workflow::HINTS;

    async fn call(ctx: ToolContext, input: Input) -> Result<Output, ToolError> {
        workflow::run(&DEF, ctx, input).await
    }

    fn text(o: &Output) -> String {
        workflow::render(o)
    }
}

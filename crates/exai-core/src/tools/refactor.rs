//! `refactor`: refactoring opportunities (smells, decomposition, modernisation), step by step; at the end an
//! expert model ranks them and proposes concrete changes. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct Refactor;

const DEF: Definition = Definition {
    name: "refactor",
    subject: "refactoring analysis",
    first_step: "read the code in scope: its structure, size, responsibilities and how it is used; note the most obvious smells.",
    next_step: "look for smells: long functions, duplication, tangled responsibilities, deep nesting, poor names, dead code, outdated idioms; report each in issues_found with a severity reflecting its cost.",
    wants_hypothesis: false,
    expert_role: "You are a senior engineer who specialises in refactoring safely.",
    expert_task: "Propose refactorings: confirm or reject each reported opportunity, add those that were missed, and rank them by value and risk, each with its location, the concrete change (before/after sketch) and how to do it safely in small steps.",
    next_actions: &[
        "Refactor in small, behaviour-preserving steps; run the tests after each.",
        "Present the refactorings ranked by value and risk.",
    ],
};

impl TypedTool for Refactor {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "refactor";
    const TITLE: &'static str = "Find refactoring opportunities";
    const DESCRIPTION: &'static str = "Find refactoring opportunities (code smells, decomposition, duplication, modernisation), step by step; an expert \
model ranks them and proposes concrete changes at the end. Use for improving working code, analyze for a broader \
assessment. Call once per step; pass continuation_id.";
    const TIER: Tier = Tier::Workflow;
    const PROFILE: Profile = Profile::Full;
    const HINTS: Hints = workflow::HINTS;

    async fn call(ctx: ToolContext, input: Input) -> Result<Output, ToolError> {
        workflow::run(&DEF, ctx, input).await
    }

    fn text(o: &Output) -> String {
        workflow::render(o)
    }
}

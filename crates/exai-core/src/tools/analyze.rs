//! `analyze`: architecture and code-quality analysis, step by step, ending with an expert model's
//! assessment of the findings and the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct Analyze;

const DEF: Definition = Definition {
    name: "analyze",
    subject: "code analysis",
    first_step: "map the structure: entry points, modules and their responsibilities, data flow and dependencies.",
    next_step: "go deeper where the risk is: coupling, duplication, error handling, performance hot spots, tests; record issues with a severity.",
    wants_hypothesis: false,
    expert_role: "You are a software architect reviewing another engineer's analysis of a codebase.",
    expert_task: "Assess the architecture and code quality: confirm or correct the findings, rank the most important problems and strengths, and propose concrete, prioritised improvements.",
    next_actions: &[
        "Prioritise the improvements by impact and effort.",
        "Present the analysis with the evidence (files, functions) behind each point.",
    ],
};

impl TypedTool for Analyze {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "analyze";
    const TITLE: &'static str = "Analyze code and architecture";
    const DESCRIPTION: &'static str = "Step-by-step analysis of a codebase's architecture, code quality, performance or maintainability; at the \
end an expert model assesses your findings and the relevant files. Call once per step; pass continuation_id.";
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

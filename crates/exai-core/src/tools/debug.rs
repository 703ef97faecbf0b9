//! `debug`: root-cause investigation, step by step, with hypotheses and evidence; at the end an expert model
//! reviews the findings and the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct Debugger;

const DEF: Definition = Definition {
    name: "debug",
    subject: "debugging investigation",
    first_step: "reproduce or pin down the symptom, then read the code on its path: entry points, the failing function, recent changes; note every file you check.",
    next_step: "test your hypothesis against the code: trace the data and control flow that would produce the symptom, and look for evidence that contradicts it.",
    wants_hypothesis: true,
    expert_role: "You are an expert debugger reviewing another engineer's root-cause investigation.",
    expert_task: "Decide whether the hypothesis explains every symptom. Name the most likely root cause with file and line, the evidence for it, a minimal fix, and how to verify it; if the hypothesis is wrong, say what the evidence points to instead.",
    next_actions: &[
        "Confirm the root cause in the code (a failing test or a reproduction) before changing anything.",
        "Apply the minimal fix, then run the tests that cover it.",
    ],
};

impl TypedTool for Debugger {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "debug";
    const TITLE: &'static str = "Debug: root-cause investigation";
    const DESCRIPTION: &'static str = "Root-cause investigation of a bug, crash or wrong behaviour, step by step with evidence and a hypothesis; \
at the end an expert model reviews your findings and the relevant files. Call once per step; pass continuation_id.";
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

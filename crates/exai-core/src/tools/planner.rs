//! `planner`: builds a plan one step at a time, revising earlier steps with `backtrack_from_step`; at the end
//! an expert model reviews the plan. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct Planner;

const DEF: Definition = Definition {
    name: "planner",
    subject: "plan",
    first_step: "state the goal, the constraints and the scope; outline the main phases.",
    next_step: "refine the next part of the plan: concrete tasks, order, dependencies, risks; backtrack_from_step if an earlier step no longer holds.",
    wants_hypothesis: false,
    expert_role: "You are a seasoned technical lead reviewing a plan.",
    expert_task: "Review the plan: find missing steps, wrong ordering, hidden dependencies and risks, and return the improved plan as an ordered list of concrete steps.",
    next_actions: &[
        "Present the final plan as ordered, concrete steps with their dependencies.",
        "Start with the first step; revisit the plan when an assumption breaks.",
    ],
};

impl TypedTool for Planner {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "planner";
    const TITLE: &'static str = "Plan incrementally";
    const DESCRIPTION: &'static str = "Build a plan for a complex task one step at a time (each step = a part of the plan), revising earlier \
steps with backtrack_from_step; an expert model reviews the final plan. Call once per step; pass continuation_id.";
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

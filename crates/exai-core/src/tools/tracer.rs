//! `tracer`: call-flow and dependency tracing, step by step; at the end an expert model checks the trace
//! against the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct Tracer;

const DEF: Definition = Definition {
    name: "tracer",
    subject: "call-flow trace",
    first_step: "name the entry point (function, method, endpoint) and whether you trace its execution flow (what it calls) or its dependencies (what uses it and what it uses); find its definition.",
    next_step: "follow the calls one level further: record each call site with file and line, branches and conditions, and the side effects along the path.",
    wants_hypothesis: false,
    expert_role: "You are an expert in reading unfamiliar code and tracing how it executes.",
    expert_task: "Check the trace: correct wrong or missing calls, then give the call flow as an ordered tree (file:line for each call, conditions on branches) or the dependency map, and point out surprising paths and side effects.",
    next_actions: &[
        "Present the call flow or dependency map with file:line references.",
        "Note the risky paths (side effects, error handling) the trace revealed.",
    ],
};

impl TypedTool for Tracer {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "tracer";
    const TITLE: &'static str = "Trace call flow and dependencies";
    const DESCRIPTION: &'static str = "Trace how code executes (call flow from an entry point) or what depends on what, step by step; an expert model \
checks the trace at the end. Use to understand code before changing it. Call once per step; pass continuation_id.";
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

//! `codereview`: a code review, step by step, with severity-graded issues; at the end an expert model reviews
//! the findings and the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct CodeReview;

const DEF: Definition = Definition {
    name: "codereview",
    subject: "code review",
    first_step: "read the code under review and its context; note its purpose and the riskiest parts.",
    next_step: "check correctness, error handling, security and performance of each relevant file; report every issue in issues_found with a severity.",
    wants_hypothesis: false,
    expert_role: "You are a meticulous senior code reviewer checking another reviewer's work.",
    expert_task: "Review the code: confirm or reject each reported issue, add the issues that were missed, and grade every issue critical, high, medium or low with its location and a concrete fix.",
    next_actions: &[
        "Fix critical and high issues first; re-review the changed code.",
        "Report the review grouped by severity, with locations and fixes.",
    ],
};

impl TypedTool for CodeReview {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "codereview";
    const TITLE: &'static str = "Code review";
    const DESCRIPTION: &'static str = "Step-by-step code review (correctness, security, performance, maintainability) with severity-graded \
issues; at the end an expert model reviews your findings and the files. Call once per step; pass continuation_id.";
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

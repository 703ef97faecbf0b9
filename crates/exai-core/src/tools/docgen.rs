//! `docgen`: documentation generation, step by step through the code; at the end an expert model writes the
//! documentation from the findings and the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct DocGen;

const DEF: Definition = Definition {
    name: "docgen",
    subject: "documentation pass",
    first_step: "list what needs documenting: the files, public items and their current docs; note the project's documentation style.",
    next_step: "for each item, record what it does, its parameters, return values, errors, side effects and complexity worth stating; note docs that are missing or out of date.",
    wants_hypothesis: false,
    expert_role: "You are a technical writer who reads code closely and documents it precisely.",
    expert_task: "Write the documentation: doc comments for every item found lacking (purpose, parameters, returns, errors, examples where useful), in the project's style, and correct the docs that are wrong. Never describe behaviour the code does not have.",
    next_actions: &[
        "Insert the documentation, keeping the code unchanged.",
        "Check the docs build (e.g. rustdoc, javadoc) and that examples compile.",
    ],
};

impl TypedTool for DocGen {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "docgen";
    const TITLE: &'static str = "Generate documentation";
    const DESCRIPTION: &'static str = "Generate or fix code documentation (doc comments, API docs), step by step through the files; an expert model \
writes the docs at the end. Call once per step; pass continuation_id.";
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

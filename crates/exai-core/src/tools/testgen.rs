//! `testgen`: a test plan and tests for the code in question, step by step; at the end an expert model writes
//! the tests from the findings and the relevant files. A [`Definition`] on the shared workflow engine.
//!
//! [`Definition`]: crate::workflow::Definition

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::{self, Definition, Input, Output};

pub struct TestGen;

const DEF: Definition = Definition {
    name: "testgen",
    subject: "test-generation plan",
    first_step: "read the code to test: its public behaviour, inputs and outputs, dependencies to fake, and the test framework and conventions the project already uses.",
    next_step: "list the cases to cover: the main paths, boundaries, error handling, edge and concurrency cases; note in findings which already have tests.",
    wants_hypothesis: false,
    expert_role: "You are a senior test engineer writing tests for code another engineer has studied.",
    expert_task: "Write the test plan and the tests: the cases ranked by value (main behaviour, boundaries, errors, edge cases), then complete test code in the project's framework and conventions, each test named for the behaviour it checks.",
    next_actions: &[
        "Add the tests, run them, and fix or report any that fail.",
        "Say which cases remain untested and why.",
    ],
};

impl TypedTool for TestGen {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "testgen";
    const TITLE: &'static str = "Generate tests";
    const DESCRIPTION: &'static str = "Plan and generate tests for specific code (functions, modules, behaviours), step by step: analyse the code, list \
the cases and edge cases; an expert model writes the tests at the end. Call once per step; pass continuation_id.";
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

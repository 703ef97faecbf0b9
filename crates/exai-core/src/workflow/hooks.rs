//! What a tool may add to the shared engine: checks of its own arguments on every step (planner: its branch
//! fields against the recorded steps), fields of its own in the recorded step (planner: the branch), material for
//! the expert (precommit: the diff), and a consultation of its own before the expert answers (consensus: several
//! models).

use std::future::Future;

use super::input::Input;
use super::state::{Investigation, StepRecord};
use crate::error::ToolError;
use crate::tools::ToolContext;

/// Text for the expert's request, with notes for the result.
#[derive(Debug, Default)]
pub struct Material {
    /// Appended to the expert's request; start it with a `# Heading` line.
    pub text: String,
    pub notes: Vec<String>,
}

/// What the expert is about to be sent, for a tool that consults other models first.
#[derive(Debug)]
pub struct Brief<'a> {
    /// The consolidated findings, the tool's material and the relevant files.
    pub text: &'a str,
    pub thinking: bool,
    pub web_search: bool,
}

/// A tool's additions to the engine; every method has a no-op default.
pub trait Hooks: Sync {
    /// Checks the tool's own arguments, on every step before it is recorded.
    fn check(&self, _ctx: &ToolContext, _input: &Input) -> impl Future<Output = Result<(), ToolError>> + Send {
        async { Ok(()) }
    }

    /// Checks the tool's own arguments against the steps recorded so far (after the engine's own sequence rules),
    /// before the step is recorded; the message names the field and the rule.
    fn check_steps(&self, _input: &Input, _so_far: &Investigation) -> Result<(), String> {
        Ok(())
    }

    /// Adds the tool's own fields to the step's record before it is stored (and replayed after a restart).
    fn annotate(&self, _record: &mut StepRecord) {}

    /// Material for the expert, gathered on the final step; it counts against the expert's token budget.
    fn material(&self, _ctx: &ToolContext) -> impl Future<Output = Result<Option<Material>, ToolError>> + Send {
        async { Ok(None) }
    }

    /// Runs on the final step once the brief is ready, before the expert is asked; what it returns follows the
    /// brief in the expert's request.
    fn consult(
        &self,
        _ctx: &ToolContext,
        _brief: &Brief<'_>,
    ) -> impl Future<Output = Result<Option<Material>, ToolError>> + Send {
        async { Ok(None) }
    }
}

/// The hooks of a tool that adds nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

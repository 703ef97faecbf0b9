//! The workflow engine behind `debug`, `codereview`, `analyze`, `thinkdeep`, `planner`, ...: the calling assistant
//! investigates step by step, exai records and steers each step, and at the end consults an expert model.
//!
//! A tool is a [`Definition`] (its name, guidance and expert instructions) plus a one-line call of [`run`].
//!
//! - `input`: the shared arguments and their validation (errors name the field and the rule).
//! - `state`: steps stored as conversation turns, replayed into the [`state::Investigation`] so far.
//! - `guidance`: what to examine next while the investigation goes on.
//! - `hooks`: what a tool may add: its own checks, material for the expert, a consultation of its own.
//! - `expert`: the consolidated findings and relevant files, trimmed to the budget, sent to the expert model.
//! - `output`: the structured result and its text.
//! - `engine`: one call from arguments to result.

mod engine;
mod expert;
mod guidance;
mod hooks;
mod input;
mod output;
pub mod state;

pub use engine::{run, run_with};
pub use hooks::{Brief, Hooks, Material, NoHooks};
pub use input::{Confidence, Input, Issue, Severity};
pub use output::{Output, Status, branch_line, render};

use crate::tools::Hints;

/// Annotations every workflow tool shares: it reads files and calls a model, changes nothing.
pub const HINTS: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: false,
    open_world: true,
};

/// What makes one workflow tool different from another: its words, never its mechanics.
#[derive(Debug)]
pub struct Definition {
    /// The tool name (`debug`).
    pub name: &'static str,
    /// What the run is, for messages: "debugging investigation".
    pub subject: &'static str,
    /// Guidance after the first step: what to examine first.
    pub first_step: &'static str,
    /// Guidance after every later step.
    pub next_step: &'static str,
    /// Whether the tool expects a `hypothesis` (the guidance asks for one until it is given).
    pub wants_hypothesis: bool,
    /// The expert model's role (its system prompt).
    pub expert_role: &'static str,
    /// What the expert must deliver, appended to the consolidated findings.
    pub expert_task: &'static str,
    /// What the calling assistant should do once the run is complete.
    pub next_actions: &'static [&'static str],
}

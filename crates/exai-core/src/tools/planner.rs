//! `planner`: builds a plan one step at a time, revising earlier steps with `backtrack_from_step` and exploring
//! alternatives as named branches (`branch_from_step` + `branch_id`); at the end an expert model reviews the plan,
//! the main line and each branch presented separately. A [`Definition`] plus engine hooks.
//!
//! [`Definition`]: crate::workflow::Definition

use std::collections::BTreeMap;

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::Value;

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::workflow::state::{Investigation, MAIN_LINE, StepRecord};
use crate::workflow::{self, Definition, Hooks, Input, Output};

pub struct Planner;

const DEF: Definition = Definition {
    name: "planner",
    subject: "plan",
    first_step: "state the goal, the constraints and the scope; outline the main phases.",
    next_step: "refine the next part of the plan: concrete tasks, order, dependencies, risks; backtrack_from_step if an earlier step no longer holds, or branch_from_step with a branch_id to explore an alternative.",
    wants_hypothesis: false,
    expert_role: "You are a seasoned technical lead reviewing a plan.",
    expert_task: "Review the plan: find missing steps, wrong ordering, hidden dependencies and risks, and return the improved plan as an ordered list of concrete steps. If the plan has branches, compare the main line with each branch (strengths, risks, cost) and say which to follow and why.",
    next_actions: &[
        "Present the final plan as ordered, concrete steps with their dependencies.",
        "Start with the first step; revisit the plan when an assumption breaks.",
    ],
};

/// The longest `branch_id` accepted.
const MAX_BRANCH_ID: usize = 32;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PlannerInput {
    #[serde(flatten)]
    pub base: Input,
    /// Start an alternative branch at this step: the number of an earlier recorded step the alternative departs
    /// from (this step is the branch's first). Requires branch_id.
    #[serde(default)]
    pub branch_from_step: Option<u32>,
    /// A short name for the branch (letters, digits, `-`, `_`, `.`; e.g. "alt", "big-bang"). With
    /// branch_from_step it names a new branch; alone it continues that branch; omitted, the step is on the main line.
    #[serde(default)]
    pub branch_id: Option<String>,
    /// Fields neither the engine nor this tool knows (refused by name).
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, Value>,
}

/// The step's place among the branches.
struct Branching {
    from_step: Option<u32>,
    id: Option<String>,
}

impl Branching {
    /// Rules on the branch fields alone.
    fn check_shape(&self) -> Result<(), String> {
        if self.from_step.is_some() && self.id.is_none() {
            return Err("branch_id is required with branch_from_step: name the new branch (e.g. \"alt\")".into());
        }
        if let Some(id) = &self.id {
            if id == MAIN_LINE {
                return Err(format!(
                    "branch_id `{MAIN_LINE}` is reserved for the main line: leave branch_id out to plan on the main \
                     line, or pick another name"
                ));
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if id.is_empty() || id.len() > MAX_BRANCH_ID || !id.chars().all(ok) {
                return Err(format!(
                    "branch_id must be a short name of 1 to {MAX_BRANCH_ID} letters, digits, `-`, `_` or `.`; \
                     got `{id}`"
                ));
            }
        }
        Ok(())
    }
}

impl Hooks for Branching {
    fn check_steps(&self, input: &Input, so_far: &Investigation) -> Result<(), String> {
        let Some(id) = &self.id else { return Ok(()) };
        // The steps that still stand once this one is recorded (it replaces its own number and later ones).
        let keep = input.backtrack_from_step.unwrap_or(input.step_number);
        let standing = Investigation {
            steps: so_far.steps.iter().filter(|s| s.step_number < keep).cloned().collect(),
            calls: 0,
        };
        let existing = standing.branches().into_iter().find(|b| &b.branch_id == id);
        match (self.from_step, existing) {
            (Some(from), _) if standing.step(from).is_none() => {
                let list = |steps: &[StepRecord]| {
                    let v: Vec<String> = steps.iter().map(|s| s.step_number.to_string()).collect();
                    if v.is_empty() { "none".to_owned() } else { v.join(", ") }
                };
                if so_far.step(from).is_some() {
                    Err(format!(
                        "branch_from_step ({from}) names a step this step replaces (it discards steps {keep} on); \
                         branch from an earlier step (standing before this one: {})",
                        list(&standing.steps)
                    ))
                } else {
                    Err(format!(
                        "branch_from_step ({from}) names no recorded step (recorded steps: {})",
                        list(&so_far.steps)
                    ))
                }
            }
            (Some(_), Some(b)) => Err(format!(
                "branch_id `{id}` is already a branch ({}); send branch_id alone to continue it, or pick another \
                 name for a new branch",
                workflow::branch_line(&b)
            )),
            (None, None) => {
                let names: Vec<String> = standing
                    .branches()
                    .into_iter()
                    .filter(|b| b.branch_id != MAIN_LINE)
                    .map(|b| b.branch_id)
                    .collect();
                Err(format!(
                    "branch_id `{id}` names no branch (branches: {}); to start one, send branch_from_step with it",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))
            }
            _ => Ok(()),
        }
    }

    fn annotate(&self, record: &mut StepRecord) {
        record.branch_id = self.id.clone();
        record.branch_from_step = self.from_step;
    }
}

impl TypedTool for Planner {
    type Input = PlannerInput;
    type Output = Output;
    const NAME: &'static str = "planner";
    const TITLE: &'static str = "Plan incrementally";
    const DESCRIPTION: &'static str = "Build a plan for a complex task one step at a time (each step = a part of the plan), revising earlier \
steps with backtrack_from_step and exploring alternatives as branches (branch_from_step + branch_id); an expert model \
reviews the final plan, comparing the branches. Call once per step; pass continuation_id.";
    const TIER: Tier = Tier::Workflow;
    const PROFILE: Profile = Profile::Full;
    const HINTS: Hints = workflow::HINTS;

    async fn call(ctx: ToolContext, input: PlannerInput) -> Result<Output, ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: DEF.name.to_owned(),
            message,
        };
        if let Some(field) = input.unknown.keys().next() {
            return Err(invalid(format!("unknown field `{field}`")));
        }
        let branching = Branching {
            from_step: input.branch_from_step,
            id: input.branch_id,
        };
        branching.check_shape().map_err(invalid)?;
        workflow::run_with(&DEF, ctx, input.base, &branching).await
    }

    fn text(o: &Output) -> String {
        workflow::render(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branching(from_step: Option<u32>, id: Option<&str>) -> Branching {
        Branching {
            from_step,
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn branch_fields_parse_with_the_engine_fields_and_their_shape_is_checked() {
        let v = serde_json::json!({"step": "s", "step_number": 3, "total_steps": 3, "next_step_required": true,
            "findings": "f", "continuation_id": "c", "branch_from_step": 1, "branch_id": "alt", "bogus": 1});
        let i: PlannerInput = serde_json::from_value(v).unwrap();
        assert_eq!(
            (i.base.step_number, i.branch_from_step, i.branch_id.as_deref()),
            (3, Some(1), Some("alt"))
        );
        assert_eq!(i.unknown.keys().collect::<Vec<_>>(), ["bogus"]);

        assert!(branching(Some(1), Some("alt")).check_shape().is_ok());
        assert!(branching(None, None).check_shape().is_ok());
        let err = |b: Branching| b.check_shape().unwrap_err();
        assert!(err(branching(Some(1), None)).starts_with("branch_id is required with branch_from_step"));
        assert!(err(branching(Some(1), Some("main"))).starts_with("branch_id `main` is reserved"));
        assert!(err(branching(Some(1), Some("two words"))).starts_with("branch_id must be a short name"));
        assert!(err(branching(Some(1), Some(""))).starts_with("branch_id must be a short name"));
    }
}

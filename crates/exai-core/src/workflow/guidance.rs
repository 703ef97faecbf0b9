//! What the calling assistant should do next while an investigation goes on: the tool's own guidance, a nudge
//! for its confidence, and the evidence still missing (no relevant files, no hypothesis).

use super::Definition;
use super::input::{Confidence, Input};
use super::state::Investigation;

/// Guidance for the step after `input`.
pub fn next(def: &Definition, inv: &Investigation, input: &Input, continuation_id: &str) -> String {
    let next = input.step_number + 1;
    let mut lines = vec![format!(
        "Before calling {} again, do the work of step {next} (of about {}): {}",
        def.name,
        input.total_steps.max(next),
        if inv.steps.len() <= 1 {
            def.first_step
        } else {
            def.next_step
        }
    )];
    lines.push(
        match inv.confidence() {
            None | Some(Confidence::Exploring) | Some(Confidence::Low) => {
                "Confidence is low: gather evidence before concluding; read the code involved and record what you \
                 checked in files_checked."
            }
            Some(Confidence::Medium) => {
                "Test the leading theory against the evidence and look for what would disprove it."
            }
            Some(_) => {
                "Close the remaining gaps; then call with next_step_required false (the expert model reviews \
                 everything) or confidence certain when no review is needed."
            }
        }
        .to_owned(),
    );
    if inv.relevant_files().is_empty() {
        lines.push(
            "No relevant_files yet: list the files that matter; their contents go to the expert at the end.".into(),
        );
    }
    if let Some(id) = inv.steps.last().and_then(|s| s.branch_id.as_deref()) {
        lines.push(format!(
            "Step {} is on branch `{id}`: send branch_id \"{id}\" again to continue it, or leave branch_id out to \
             go on with the main line.",
            input.step_number
        ));
    }
    if def.wants_hypothesis && inv.hypothesis().is_none() {
        lines.push("No hypothesis yet: state one, even a tentative one.".into());
    }
    lines.push(format!(
        "Then call {} with step_number {next}, your findings, and continuation_id {continuation_id}.",
        def.name
    ));
    lines.join("\n")
}

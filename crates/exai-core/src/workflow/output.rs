//! What a workflow call returns: while in progress, the step recorded, the status so far and guidance; at the
//! end, the findings, issues by severity, the expert analysis and next actions. `render` is its text form.

use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;

use super::input::{Confidence, Issue, Severity};
use super::state::Branch;
use crate::tools::model_call::Answer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The step is recorded; do the next one.
    InProgress,
    /// The run has ended.
    Complete,
    /// The safety cap (`workflow.max_steps`) ended the run.
    StepCapReached,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepFindings {
    pub step_number: u32,
    pub step: String,
    pub findings: String,
    /// The branch the step belongs to (omitted: the main line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Output {
    pub tool: String,
    pub status: Status,
    pub step_number: u32,
    pub total_steps: u32,
    pub next_step_required: bool,
    pub steps_recorded: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hypothesis: Option<String>,
    /// Every standing step's findings (on completion only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<StepFindings>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues_by_severity: Vec<Issue>,
    pub files_checked: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relevant_files: Vec<String>,
    /// Once a step branches off (planner): the main line (`main`) and each branch with its standing steps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<Branch>,
    /// What to do next (while in progress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expert_analysis: Option<Answer>,
    /// Why no expert model was consulted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expert_skipped: Option<String>,
    /// Files whose contents went to the expert model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_sent: Vec<String>,
    /// Files left out, largest first to fit the budget, or unreadable now; each with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_omitted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_actions: Vec<String>,
    /// Backtracking, the safety cap, images not sent, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub continuation_id: String,
}

/// `main: steps 1, 2` or `alt (from step 1): step 3`.
pub fn branch_line(b: &Branch) -> String {
    let from = b
        .branch_from_step
        .map_or(String::new(), |n| format!(" (from step {n})"));
    let steps = b.steps.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let plural = if b.steps.len() == 1 { "" } else { "s" };
    format!("{}{from}: step{plural} {steps}", b.branch_id)
}

/// The text content: a short report a model can read without `structuredContent`.
pub fn render(o: &Output) -> String {
    let mut out = match o.status {
        Status::InProgress => format!(
            "{} step {}/{} recorded ({} standing, confidence {}).",
            o.tool,
            o.step_number,
            o.total_steps,
            o.steps_recorded,
            o.confidence
                .map_or("not stated".to_owned(), |c| format!("{c:?}").to_lowercase())
        ),
        Status::Complete => format!("{} complete after {} step(s).", o.tool, o.steps_recorded),
        Status::StepCapReached => format!(
            "{} stopped by the safety cap after {} step(s).",
            o.tool, o.steps_recorded
        ),
    };
    for note in &o.notes {
        out.push_str(&format!("\nNote: {note}"));
    }
    if let Some(h) = &o.hypothesis {
        out.push_str(&format!("\nHypothesis: {h}"));
    }
    if !o.branches.is_empty() {
        let lines: Vec<String> = o.branches.iter().map(branch_line).collect();
        out.push_str(&format!("\nBranches: {}", lines.join("; ")));
    }
    if !o.findings.is_empty() {
        out.push_str("\n\n## Findings");
        for f in &o.findings {
            let on = f.branch_id.as_ref().map_or(String::new(), |b| format!(" [branch {b}]"));
            out.push_str(&format!("\n{}.{on} {} — {}", f.step_number, f.step, f.findings));
        }
    }
    if !o.issues_by_severity.is_empty() {
        out.push_str("\n\n## Issues");
        for i in &o.issues_by_severity {
            let sev = match i.severity {
                Severity::Critical => "critical",
                Severity::High => "high",
                Severity::Medium => "medium",
                Severity::Low => "low",
            };
            let at = i.location.as_ref().map_or(String::new(), |l| format!(" ({l})"));
            out.push_str(&format!("\n- [{sev}] {}{at}", i.description));
        }
    }
    if let Some(g) = &o.guidance {
        out.push_str(&format!("\n\n{g}"));
    }
    if let Some(a) = &o.expert_analysis {
        out.push_str(&format!(
            "\n\n## Expert analysis ({} via {})\n{}",
            a.model, a.provider, a.content
        ));
        if let Some(why) = &a.fallback_reason {
            out.push_str(&format!("\n(FALLBACK: {} was asked for: {why})", a.model_requested));
        }
    }
    if let Some(why) = &o.expert_skipped {
        out.push_str(&format!("\n\nNo expert analysis: {why}."));
    }
    if !o.files_omitted.is_empty() {
        out.push_str(&format!(
            "\nFiles not sent to the expert: {}",
            o.files_omitted.join("; ")
        ));
    }
    if !o.next_actions.is_empty() {
        out.push_str("\n\n## Next actions");
        for a in &o.next_actions {
            out.push_str(&format!("\n- {a}"));
        }
    }
    out.push_str(&format!("\n\n---\ncontinuation_id: {}", o.continuation_id));
    out
}

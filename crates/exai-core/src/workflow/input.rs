//! The arguments every workflow tool takes, and their validation: shape rules first, then rules against the
//! investigation recorded so far. Every error names the field and the rule it broke.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::state::Investigation;
use crate::config::MAX_IMAGES_CEILING;
use crate::files::lists::{MAX_ITEMS, MAX_PATHS, check_len};
pub use crate::tools::chat::ThinkingMode;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What you did or will do in this step.
    pub step: String,
    /// This step's number, from 1.
    pub step_number: u32,
    /// Your estimate of the steps needed; revise it as you go.
    pub total_steps: u32,
    /// true while more investigation is needed; false ends the run (the expert model then reviews it).
    pub next_step_required: bool,
    /// What this step found: evidence, conclusions, dead ends.
    pub findings: String,
    /// Absolute paths of the files examined so far (at most 1000 per step).
    #[serde(default)]
    #[schemars(length(max = MAX_PATHS))]
    pub files_checked: Vec<String>,
    /// Absolute paths of the files that matter; their contents go to the expert model at the end (at most 1000
    /// per step).
    #[serde(default)]
    #[schemars(length(max = MAX_PATHS))]
    pub relevant_files: Vec<String>,
    /// Functions, types or components that matter (e.g. `parser.rs:parse_header`; at most 1000 per step).
    #[serde(default)]
    #[schemars(length(max = MAX_ITEMS))]
    pub relevant_context: Vec<String>,
    /// Issues found so far, each with a severity (at most 1000 per step).
    #[serde(default)]
    #[schemars(length(max = MAX_ITEMS))]
    pub issues_found: Vec<Issue>,
    /// Your current theory (for debug: the suspected root cause).
    #[serde(default)]
    pub hypothesis: Option<String>,
    /// How sure you are; `certain` ends the run without the expert model.
    #[serde(default)]
    pub confidence: Option<Confidence>,
    /// Discard recorded steps from this number on (earlier findings were wrong) and continue from here.
    #[serde(default)]
    pub backtrack_from_step: Option<u32>,
    /// Absolute image paths or data URLs, sent to the expert model when it has vision (at most 8 in the whole
    /// run by default, EXAI_MAX_IMAGES).
    #[serde(default)]
    #[schemars(length(max = MAX_IMAGES_CEILING))]
    pub images: Vec<String>,
    /// Expert model name or alias (see `listmodels`); `auto` or omitted picks a strong default.
    #[serde(default)]
    pub model: Option<String>,
    /// Expert model temperature, within its range.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// `minimal` … `max` for the expert model; default `medium` (reasoning on where supported).
    #[serde(default)]
    pub thinking_mode: Option<ThinkingMode>,
    /// Let the expert model search the web.
    #[serde(default)]
    pub use_websearch: bool,
    /// Consult the expert model at the end (default true).
    #[serde(default = "yes")]
    pub use_assistant_model: bool,
    /// Returned by step 1; pass it with every later step.
    #[serde(default)]
    pub continuation_id: Option<String>,
}

fn yes() -> bool {
    true
}

/// How sure the assistant is of its conclusions, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Exploring,
    Low,
    Medium,
    High,
    VeryHigh,
    AlmostCertain,
    Certain,
}

/// An issue's severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Issue {
    pub severity: Severity,
    pub description: String,
    /// Where: `file.rs:42`, a function, a component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Input {
    /// Rules on the arguments alone.
    pub fn check_shape(&self) -> Result<(), String> {
        if self.step.trim().is_empty() {
            return Err("step must not be empty: say what this step did or will do".into());
        }
        if self.step_number < 1 {
            return Err("step_number must be ≥ 1".into());
        }
        if self.total_steps < 1 {
            return Err("total_steps must be ≥ 1".into());
        }
        if self.total_steps < self.step_number {
            return Err(format!(
                "total_steps ({}) is smaller than step_number ({}); raise total_steps to at least {}",
                self.total_steps, self.step_number, self.step_number
            ));
        }
        if let Some(b) = self.backtrack_from_step {
            if b < 1 {
                return Err("backtrack_from_step must be ≥ 1".into());
            }
            if b > self.step_number {
                return Err(format!(
                    "backtrack_from_step ({b}) is after step_number ({}); it must name this or an earlier step",
                    self.step_number
                ));
            }
        }
        if let Some(t) = self.temperature
            && !t.is_finite()
        {
            return Err("temperature must be a finite number".into());
        }
        check_len("files_checked", self.files_checked.len(), MAX_PATHS)?;
        check_len("relevant_files", self.relevant_files.len(), MAX_PATHS)?;
        check_len("relevant_context", self.relevant_context.len(), MAX_ITEMS)?;
        check_len("issues_found", self.issues_found.len(), MAX_ITEMS)?;
        check_len("images", self.images.len(), MAX_IMAGES_CEILING)?;
        for (field, paths) in [
            ("files_checked", &self.files_checked),
            ("relevant_files", &self.relevant_files),
        ] {
            if let Some(p) = paths.iter().find(|p| !std::path::Path::new(p).is_absolute()) {
                return Err(format!("{field} must hold absolute paths; `{p}` is relative"));
            }
        }
        if let Some(i) = self.issues_found.iter().position(|i| i.description.trim().is_empty()) {
            return Err(format!("issues_found[{i}].description must not be empty"));
        }
        if self.step_number > 1 && self.continuation_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return Err(format!(
                "continuation_id is required from step 2 on (step_number is {}); pass the continuation_id step 1 \
                 returned, or start again at step_number 1",
                self.step_number
            ));
        }
        Ok(())
    }

    /// Rules against the steps recorded so far under `continuation_id`.
    pub fn check_sequence(&self, tool: &str, so_far: &Investigation) -> Result<(), String> {
        let last = so_far.last_step_number();
        if let Some(b) = self.backtrack_from_step
            && !so_far.steps.iter().any(|s| s.step_number >= b)
        {
            let recorded = so_far
                .steps
                .iter()
                .map(|s| s.step_number.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(format!(
                "backtrack_from_step ({b}) names no recorded step (recorded steps: {})",
                if recorded.is_empty() { "none" } else { &recorded }
            ));
        }
        if self.backtrack_from_step.is_none() && self.step_number > 1 {
            match last {
                None => {
                    return Err(format!(
                        "step_number is {} but no {tool} steps are recorded under this continuation_id; start at \
                         step_number 1",
                        self.step_number
                    ));
                }
                Some(last) if self.step_number > last + 1 => {
                    return Err(format!(
                        "step_number ({}) skips ahead: the last recorded step is {last}; send step {}",
                        self.step_number,
                        last + 1
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(step_number: u32, total_steps: u32) -> Input {
        serde_json::from_value(serde_json::json!({
            "step": "look", "step_number": step_number, "total_steps": total_steps,
            "next_step_required": true, "findings": "", "continuation_id": "c"
        }))
        .unwrap()
    }

    #[test]
    fn shape_errors_name_the_field_and_the_rule() {
        assert_eq!(input(0, 3).check_shape().unwrap_err(), "step_number must be ≥ 1");
        assert!(
            input(3, 2)
                .check_shape()
                .unwrap_err()
                .starts_with("total_steps (2) is smaller than step_number (3)")
        );
        let mut i = input(2, 3);
        i.backtrack_from_step = Some(3);
        assert!(
            i.check_shape()
                .unwrap_err()
                .starts_with("backtrack_from_step (3) is after step_number (2)")
        );
        let mut i = input(2, 3);
        i.relevant_files = vec!["src/a.rs".into()];
        assert!(
            i.check_shape()
                .unwrap_err()
                .starts_with("relevant_files must hold absolute paths")
        );
        let mut i = input(2, 3);
        i.continuation_id = None;
        assert!(i.check_shape().unwrap_err().starts_with("continuation_id is required"));
        assert!(input(1, 1).check_shape().is_ok());
    }

    #[test]
    fn confidence_orders_and_parses_snake_case() {
        let c: Confidence = serde_json::from_str("\"very_high\"").unwrap();
        assert!(c > Confidence::High && c < Confidence::Certain);
    }
}

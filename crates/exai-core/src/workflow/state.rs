//! Investigation state: each step is stored as a user turn (the step as JSON, tagged with the tool) in the
//! conversation under `continuation_id`; replaying a thread's turns rebuilds the investigation after a restart.
//! A step may belong to a named branch (the planner's alternatives); steps without one form the main line.

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

use super::input::{Confidence, Input, Issue};
use crate::provider::Role;
use crate::store::Turn;

/// One recorded step, as stored in the turn's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The tool that recorded the step; marks the turn as a workflow step.
    pub workflow: String,
    pub step_number: u32,
    pub total_steps: u32,
    pub next_step_required: bool,
    pub step: String,
    pub findings: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_checked: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relevant_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relevant_context: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues_found: Vec<Issue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtrack_from_step: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// The branch this step belongs to; `None`: the main line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<String>,
    /// On the first step of a branch: the step it branches from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_from_step: Option<u32>,
}

/// A line of the plan: the main line or one branch, with its standing steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Branch {
    /// `main` for the main line, else the branch's name.
    pub branch_id: String,
    /// The step the branch starts from (none for the main line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_from_step: Option<u32>,
    /// The standing steps on this line, in order.
    pub steps: Vec<u32>,
}

/// The name the main line goes by among the branches.
pub const MAIN_LINE: &str = "main";

impl StepRecord {
    pub fn new(tool: &str, i: &Input) -> Self {
        Self {
            workflow: tool.to_owned(),
            step_number: i.step_number,
            total_steps: i.total_steps,
            next_step_required: i.next_step_required,
            step: i.step.clone(),
            findings: i.findings.clone(),
            files_checked: i.files_checked.clone(),
            relevant_files: i.relevant_files.clone(),
            relevant_context: i.relevant_context.clone(),
            issues_found: i.issues_found.clone(),
            hypothesis: i.hypothesis.clone().filter(|h| !h.trim().is_empty()),
            confidence: i.confidence,
            backtrack_from_step: i.backtrack_from_step,
            images: i.images.clone(),
            branch_id: None,
            branch_from_step: None,
        }
    }

    /// The step as a conversation turn (its relevant files recorded, so `chat` re-reads them when it continues).
    pub fn to_turn(&self, created_at_ms: i64) -> Turn {
        Turn {
            role: Role::User,
            content: serde_json::to_string(self).expect("a step record always serializes"),
            files: self.relevant_files.clone(),
            tool: self.workflow.clone(),
            provider: None,
            model: None,
            created_at_ms,
        }
    }

    /// The step a turn recorded, if it is one of `tool`'s steps.
    pub fn from_turn(tool: &str, turn: &Turn) -> Option<Self> {
        if turn.role != Role::User || turn.tool != tool {
            return None;
        }
        serde_json::from_str::<Self>(&turn.content)
            .ok()
            .filter(|r| r.workflow == tool)
    }
}

/// The investigation so far: the steps that still stand, oldest first, and how many calls it has taken.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Investigation {
    pub steps: Vec<StepRecord>,
    /// Step calls since the investigation began, backtracked ones included (what the safety cap counts).
    pub calls: u32,
}

impl Investigation {
    /// Rebuilds `tool`'s current investigation from a thread's turns.
    pub fn replay(tool: &str, turns: &[Turn]) -> Self {
        let mut inv = Self::default();
        for record in turns.iter().filter_map(|t| StepRecord::from_turn(tool, t)) {
            inv.apply(record);
        }
        inv
    }

    /// Adds a step. Step 1 (without backtracking) begins a new investigation; any step replaces recorded steps
    /// from its own number (or `backtrack_from_step`) on. Returns the numbers of the steps it dropped.
    pub fn apply(&mut self, record: StepRecord) -> Vec<u32> {
        if record.step_number == 1 && record.backtrack_from_step.is_none() {
            self.calls = 0;
        }
        let from = record.backtrack_from_step.unwrap_or(record.step_number);
        let dropped = self
            .steps
            .iter()
            .filter(|s| s.step_number >= from)
            .map(|s| s.step_number)
            .collect();
        self.steps.retain(|s| s.step_number < from);
        self.steps.push(record);
        self.calls += 1;
        dropped
    }

    pub fn last_step_number(&self) -> Option<u32> {
        self.steps.last().map(|s| s.step_number)
    }

    fn collect(&self, field: impl Fn(&StepRecord) -> &Vec<String>) -> Vec<String> {
        crate::files::lists::unique(self.steps.iter().flat_map(field))
    }

    pub fn files_checked(&self) -> Vec<String> {
        self.collect(|s| &s.files_checked)
    }

    pub fn relevant_files(&self) -> Vec<String> {
        self.collect(|s| &s.relevant_files)
    }

    pub fn relevant_context(&self) -> Vec<String> {
        self.collect(|s| &s.relevant_context)
    }

    pub fn images(&self) -> Vec<String> {
        self.collect(|s| &s.images)
    }

    /// Every distinct issue reported, most severe first (first report first within a severity).
    pub fn issues(&self) -> Vec<Issue> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<Issue> = self
            .steps
            .iter()
            .flat_map(|s| &s.issues_found)
            .filter(|i| seen.insert((i.severity, i.description.trim())))
            .cloned()
            .collect();
        out.sort_by_key(|i| i.severity);
        out
    }

    /// The latest hypothesis stated.
    pub fn hypothesis(&self) -> Option<&str> {
        self.steps.iter().rev().find_map(|s| s.hypothesis.as_deref())
    }

    /// The main line and every branch with their standing steps, the main line first and the branches in the
    /// order they began; empty while there is no branch.
    pub fn branches(&self) -> Vec<Branch> {
        if self.steps.iter().all(|s| s.branch_id.is_none()) {
            return Vec::new();
        }
        let mut out = vec![Branch {
            branch_id: MAIN_LINE.to_owned(),
            branch_from_step: None,
            steps: Vec::new(),
        }];
        for s in &self.steps {
            let id = s.branch_id.as_deref().unwrap_or(MAIN_LINE);
            match out.iter_mut().find(|b| b.branch_id == id) {
                Some(b) => b.steps.push(s.step_number),
                None => out.push(Branch {
                    branch_id: id.to_owned(),
                    branch_from_step: s.branch_from_step,
                    steps: vec![s.step_number],
                }),
            }
        }
        out
    }

    /// The standing step numbered `n`.
    pub fn step(&self, n: u32) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.step_number == n)
    }

    /// The latest confidence stated.
    pub fn confidence(&self) -> Option<Confidence> {
        self.steps.iter().rev().find_map(|s| s.confidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Severity;

    fn step(n: u32, back: Option<u32>, file: &str) -> StepRecord {
        StepRecord {
            workflow: "debug".into(),
            step_number: n,
            total_steps: 5,
            next_step_required: true,
            step: format!("step {n}"),
            findings: format!("found {n}"),
            files_checked: vec![],
            relevant_files: vec![file.into()],
            relevant_context: vec![],
            issues_found: vec![Issue {
                severity: if n == 1 { Severity::Low } else { Severity::High },
                description: "d".into(),
                location: None,
            }],
            hypothesis: Some(format!("h{n}")),
            confidence: None,
            backtrack_from_step: back,
            images: vec![],
            branch_id: None,
            branch_from_step: None,
        }
    }

    #[test]
    fn replay_rebuilds_backtracking_and_restarts() {
        let turns: Vec<Turn> = [
            step(1, None, "/a"),
            step(2, None, "/b"),
            step(3, None, "/c"),
            step(2, Some(2), "/d"),
        ]
        .iter()
        .map(|s| s.to_turn(0))
        .collect();
        let inv = Investigation::replay("debug", &turns);
        assert_eq!(inv.steps.iter().map(|s| s.step_number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(inv.calls, 4, "backtracked calls still count towards the cap");
        assert_eq!(inv.relevant_files(), ["/a", "/d"]);
        assert_eq!(inv.hypothesis(), Some("h2"));
        assert_eq!(
            inv.issues().iter().map(|i| i.severity).collect::<Vec<_>>(),
            [Severity::High, Severity::Low]
        );
        assert!(
            Investigation::replay("codereview", &turns).steps.is_empty(),
            "another tool's steps are not ours"
        );

        let mut again = inv.clone();
        assert_eq!(again.apply(step(1, None, "/z")), [1, 2]);
        assert_eq!(
            (again.steps.len(), again.calls),
            (1, 1),
            "step 1 begins a new investigation"
        );
    }

    #[test]
    fn branches_group_the_standing_steps_and_survive_a_replay() {
        let mut alt = step(3, None, "/c");
        (alt.branch_id, alt.branch_from_step) = (Some("alt".into()), Some(1));
        let mut alt2 = step(4, None, "/d");
        alt2.branch_id = Some("alt".into());
        let turns: Vec<Turn> = [step(1, None, "/a"), step(2, None, "/b"), alt, alt2, step(5, None, "/e")]
            .iter()
            .map(|s| s.to_turn(0))
            .collect();
        assert!(turns[2].content.contains(r#""branch_id":"alt","branch_from_step":1"#));
        let inv = Investigation::replay("debug", &turns);
        let branches = inv.branches();
        assert_eq!(
            branches
                .iter()
                .map(|b| (b.branch_id.as_str(), b.branch_from_step, b.steps.clone()))
                .collect::<Vec<_>>(),
            [("main", None, vec![1, 2, 5]), ("alt", Some(1), vec![3, 4])]
        );
        let mut back = inv.clone();
        back.apply(step(3, Some(3), "/f"));
        assert!(back.branches().is_empty(), "backtracking past the branch removes it");
        assert!(Investigation::replay("debug", &turns[..2]).branches().is_empty());
    }
}

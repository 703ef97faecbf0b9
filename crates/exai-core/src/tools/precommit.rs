//! `precommit`: a review of a repository's pending git changes, step by step; on the final step the diff (staged,
//! unstaged, or against a ref) goes to the expert with the findings. A [`Definition`] plus engine hooks.
//!
//! [`Definition`]: crate::workflow::Definition

use std::collections::BTreeMap;

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::Value;

use super::{Hints, Profile, Tier, ToolContext, TypedTool};
use crate::error::ToolError;
use crate::files::FilePolicy;
use crate::git::{self, Changes, Repository};
use crate::workflow::{self, Definition, Hooks, Input, Material, Output};

pub struct Precommit;

const DEF: Definition = Definition {
    name: "precommit",
    subject: "pre-commit review",
    first_step: "list the pending changes (git status, git diff) and say what they are meant to do; read the changed files in full.",
    next_step: "check each change for bugs, missing pieces (tests, docs, migrations, config), security problems and accidental edits; report each in issues_found with a severity.",
    wants_hypothesis: false,
    expert_role: "You are a senior engineer reviewing a change set before it is committed.",
    expert_task: "Review the pending changes (the diff above) with the findings: confirm or reject each reported issue, add the ones missed (bugs, regressions, security, missing tests or docs, debris such as debug prints), grade each critical, high, medium or low with its file and line, and say whether the change is ready to commit.",
    next_actions: &[
        "Fix critical and high issues before committing; re-run the tests.",
        "Report whether the changes are ready to commit, with the issues by severity.",
    ],
};

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PrecommitInput {
    #[serde(flatten)]
    pub base: Input,
    /// Absolute path of the git repository (or a directory in it) whose pending changes are reviewed; send it
    /// with every step.
    pub path: String,
    /// A branch, tag or commit to diff the working tree against; omitted: the staged and unstaged changes.
    #[serde(default)]
    pub compare_to: Option<String>,
    /// Review the staged changes (default true; ignored with compare_to).
    #[serde(default = "yes")]
    pub include_staged: bool,
    /// Review the unstaged changes (default true; ignored with compare_to).
    #[serde(default = "yes")]
    pub include_unstaged: bool,
    /// Fields neither the engine nor this tool knows (refused by name).
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: BTreeMap<String, Value>,
}

/// The repository and which of its changes to review.
struct Repo {
    path: String,
    changes: Vec<Changes>,
}

impl Repo {
    /// The repository at `path`: inside the allowed roots, its whole work tree and git directory too (a diff shows
    /// every file of the one, read from the other), and with no program named in its git configuration.
    async fn open(&self, ctx: &ToolContext) -> Result<Repository, ToolError> {
        let policy = FilePolicy::new(&ctx.app.config.files);
        let dir = policy.check_dir(DEF.name, &self.path).await?;
        git::open(DEF.name, &dir, &policy).await
    }
}

impl Hooks for Repo {
    async fn check(&self, ctx: &ToolContext, _input: &Input) -> Result<(), ToolError> {
        self.open(ctx).await?;
        for c in &self.changes {
            if let Changes::Against(r) = c {
                git::check_ref(DEF.name, r)?;
            }
        }
        Ok(())
    }

    async fn material(&self, ctx: &ToolContext) -> Result<Option<Material>, ToolError> {
        let repo = self.open(ctx).await?;
        let max = ctx.app.config.files.max_file_bytes;
        let mut text = format!("\n# Pending changes (git diff of {})\n", self.path);
        let mut notes = Vec::new();
        let mut total = 0u64;
        for c in &self.changes {
            let diff = repo.diff(DEF.name, c, max.saturating_sub(total)).await?;
            total += diff.len() as u64;
            let label = c.label();
            if diff.trim().is_empty() {
                text.push_str(&format!("\n## {label}\n(none)\n"));
            } else {
                text.push_str(&format!("\n## {label}\n```diff\n{}\n```\n", diff.trim_end()));
            }
            notes.push(format!("diff sent: {label} ({} bytes)", diff.len()));
        }
        if total == 0 {
            notes.push("no pending changes found: the expert reviews the findings alone".into());
        }
        let untracked = repo.untracked(DEF.name, max).await?;
        if !untracked.is_empty() {
            let shown = untracked.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
            let more = untracked.len().saturating_sub(20);
            notes.push(format!(
                "untracked files are in no diff (list them in relevant_files to have them reviewed): {shown}{}",
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        Ok(Some(Material { text, notes }))
    }
}

impl TypedTool for Precommit {
    type Input = PrecommitInput;
    type Output = Output;
    const NAME: &'static str = "precommit";
    const TITLE: &'static str = "Review pending git changes";
    const DESCRIPTION: &'static str = "Review a repository's pending git changes (staged, unstaged, or against compare_to) before committing, \
step by step; at the end the diff and your findings go to an expert model. Call once per step with path; pass continuation_id.";
    const TIER: Tier = Tier::Workflow;
    const PROFILE: Profile = Profile::Full;
    const HINTS: Hints = workflow::HINTS;

    async fn call(ctx: ToolContext, input: PrecommitInput) -> Result<Output, ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments {
            tool: DEF.name.to_owned(),
            message,
        };
        if let Some(field) = input.unknown.keys().next() {
            return Err(invalid(format!("unknown field `{field}`")));
        }
        let changes = match input.compare_to {
            Some(r) => vec![Changes::Against(r)],
            None => {
                let mut c = Vec::new();
                if input.include_staged {
                    c.push(Changes::Staged);
                }
                if input.include_unstaged {
                    c.push(Changes::Unstaged);
                }
                c
            }
        };
        if changes.is_empty() {
            return Err(invalid(
                "include_staged and include_unstaged are both false: nothing to review; enable one, or set compare_to"
                    .into(),
            ));
        }
        let repo = Repo {
            path: input.path,
            changes,
        };
        workflow::run_with(&DEF, ctx, input.base, &repo).await
    }

    fn text(o: &Output) -> String {
        workflow::render(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_fields_and_ours_parse_together_and_unknown_ones_are_caught() {
        let v = serde_json::json!({"step": "s", "step_number": 1, "total_steps": 1, "next_step_required": false,
            "findings": "f", "path": "/r", "include_staged": false, "bogus": 1});
        let i: PrecommitInput = serde_json::from_value(v).unwrap();
        assert_eq!(
            (i.base.step_number, i.path.as_str(), i.include_staged),
            (1, "/r", false)
        );
        assert!(i.include_unstaged);
        assert_eq!(i.unknown.keys().collect::<Vec<_>>(), ["bogus"]);
        let missing = serde_json::from_value::<PrecommitInput>(serde_json::json!({"path": "/r"})).unwrap_err();
        assert!(missing.to_string().contains("missing field"), "{missing}");
    }
}

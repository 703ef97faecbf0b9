//! Pending changes of a git repository, read through the `git` binary: staged, unstaged, or against a ref; each
//! diff is capped at a byte limit, so an oversize diff is refused with its size and the limit, never cut silently.
//! - [`command`]: every git process, with a cleared environment and overrides, so no repository runs a program.
//! - [`config_guard`]: refuses a repository whose configuration still names one (filters, diff drivers).

mod command;
mod config_guard;

use std::path::{Path, PathBuf};

use crate::error::ToolError;

/// Which changes to diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// The index against `HEAD` (`git diff --cached`).
    Staged,
    /// The working tree against the index (`git diff`).
    Unstaged,
    /// The working tree against a ref (`git diff <ref>`).
    Against(String),
}

impl Changes {
    /// How the diff is named to the caller and the expert.
    pub fn label(&self) -> String {
        match self {
            Changes::Staged => "staged changes".into(),
            Changes::Unstaged => "unstaged changes".into(),
            Changes::Against(r) => format!("changes against {r}"),
        }
    }
}

fn invalid(tool: &str, message: String) -> ToolError {
    ToolError::InvalidArguments {
        tool: tool.to_owned(),
        message,
    }
}

/// Refuses a ref git would read as an option, or that is empty.
pub fn check_ref(tool: &str, r: &str) -> Result<(), ToolError> {
    if r.trim().is_empty() || r.starts_with('-') || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            tool,
            format!("compare_to `{r}` is not a git ref (a branch, tag or commit such as main, v1.2 or HEAD~1)"),
        ));
    }
    Ok(())
}

fn cannot_run(tool: &str, e: std::io::Error) -> ToolError {
    ToolError::Unavailable(format!("{tool}: cannot run git: {e}; install git to review changes"))
}

/// At most this much of `git config --list`; a larger configuration is refused rather than half checked.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Runs git with `args` in `repo` and returns its stdout, or refuses it past `max` bytes.
async fn git(tool: &str, repo: &Path, args: &[&str], what: &str, max: u64) -> Result<String, ToolError> {
    let out = command::run(repo, args, max).await.map_err(|e| cannot_run(tool, e))?;
    if out.overflowed {
        return Err(invalid(
            tool,
            format!(
                "the diff of {what} in `{}` is over {max} bytes (files.max_file_bytes, EXAI_MAX_FILE_BYTES); review \
                 fewer changes at a time: set include_staged or include_unstaged to false, compare_to a nearer ref, \
                 or commit part of the work first",
                repo.display()
            ),
        ));
    }
    if !out.success {
        return Err(invalid(
            tool,
            format!("git failed on `{}` ({what}): {}", repo.display(), out.stderr_text()),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A git work tree whose configuration names no program git could run; only [`open`] makes one.
#[derive(Debug)]
pub struct Repository {
    /// The directory git runs in (as given, canonical).
    dir: PathBuf,
    /// The top of the work tree (`git rev-parse --show-toplevel`).
    pub toplevel: PathBuf,
}

/// Opens the work tree containing `dir`: refused when `dir` is in none (a bare repository found by discovery, such
/// as one committed inside a clone, counts as none: `safe.bareRepository=explicit`), or when the repository's
/// configuration names a program (see [`config_guard::program_keys`]), naming each key.
pub async fn open(tool: &str, dir: &Path) -> Result<Repository, ToolError> {
    let out = command::run(
        dir,
        &["rev-parse", "--is-inside-work-tree", "--show-toplevel"],
        64 * 1024,
    )
    .await
    .map_err(|e| cannot_run(tool, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    if !out.success || out.overflowed || lines.next() != Some("true") {
        let why = match out.stderr_text() {
            text if !out.success => format!("git rev-parse failed: {text}"),
            _ => "it is inside a git directory, not its work tree".to_owned(),
        };
        return Err(invalid(
            tool,
            format!("`{}` is not inside a git work tree ({why})", dir.display()),
        ));
    }
    let toplevel = PathBuf::from(lines.next().unwrap_or_default());
    let listing = command::run(dir, &["config", "--list", "-z", "--show-scope"], MAX_CONFIG_BYTES)
        .await
        .map_err(|e| cannot_run(tool, e))?;
    if !listing.success || listing.overflowed {
        return Err(invalid(
            tool,
            format!(
                "cannot read the git configuration of `{}` (at most {MAX_CONFIG_BYTES} bytes): {}",
                dir.display(),
                listing.stderr_text()
            ),
        ));
    }
    let found = config_guard::program_keys(&listing.stdout);
    if !found.is_empty() {
        let keys = found
            .iter()
            .map(|k| format!("`{}` ({} config)", k.key, k.scope))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid(
            tool,
            format!(
                "refusing the git repository at `{}`: its configuration names a program git would run: {keys}; \
                 exai never lets a repository run programs. Remove the setting (git config --unset <key>) to \
                 review this repository",
                dir.display()
            ),
        ));
    }
    Ok(Repository {
        dir: dir.to_owned(),
        toplevel,
    })
}

impl Repository {
    /// The diff of `changes`, at most `max` bytes; no external diff, no textconv, no recursion into submodules'
    /// work trees (a submodule's own configuration is never read), renames as git finds them by default.
    pub async fn diff(&self, tool: &str, changes: &Changes, max: u64) -> Result<String, ToolError> {
        let mut args = vec![
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=dirty",
        ];
        match changes {
            Changes::Staged => args.push("--cached"),
            Changes::Unstaged => {}
            Changes::Against(r) => {
                check_ref(tool, r)?;
                args.push(r);
            }
        }
        args.push("--");
        git(tool, &self.dir, &args, &changes.label(), max).await
    }

    /// Untracked files (not in any diff), relative to the directory given to [`open`].
    pub async fn untracked(&self, tool: &str, max: u64) -> Result<Vec<String>, ToolError> {
        let out = git(
            tool,
            &self.dir,
            &["ls-files", "--others", "--exclude-standard"],
            "the untracked files",
            max,
        )
        .await?;
        Ok(out.lines().map(str::to_owned).collect())
    }
}

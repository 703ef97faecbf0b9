//! Pending changes of a git repository, read through the `git` binary: staged, unstaged, or against a ref; each
//! diff is capped at a byte limit, so an oversize diff is refused with its size and the limit, never cut silently.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

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

/// Runs `git -C repo args…` and returns its output, or refuses it past `max` bytes.
async fn git(tool: &str, repo: &Path, args: &[&str], what: &str, max: u64) -> Result<String, ToolError> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ToolError::Unavailable(format!("{tool}: cannot run git: {e}; install git to review changes")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // Both pipes at once, so a chatty stderr cannot stall git while stdout is read.
    let (read, _) = tokio::join!(
        async {
            let read = match stdout {
                Some(s) => s.take(max + 1).read_to_end(&mut out).await,
                None => Ok(0),
            };
            if out.len() as u64 > max {
                // Too much: stop git now (it would block on the full pipe, and stderr never close).
                let _ = child.start_kill();
            }
            read
        },
        async {
            match stderr {
                Some(s) => s.take(64 * 1024).read_to_end(&mut err).await,
                None => Ok(0),
            }
        }
    );
    read.map_err(|e| ToolError::Internal(format!("{tool}: reading git's output: {e}")))?;
    if out.len() as u64 > max {
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
    let status = child
        .wait()
        .await
        .map_err(|e| ToolError::Internal(format!("{tool}: waiting for git: {e}")))?;
    if !status.success() {
        return Err(invalid(
            tool,
            format!(
                "git failed on `{}` ({what}): {}",
                repo.display(),
                String::from_utf8_lossy(&err).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Checks that `repo` is inside a git work tree.
pub async fn check_repo(tool: &str, repo: &Path) -> Result<(), ToolError> {
    git(
        tool,
        repo,
        &["rev-parse", "--is-inside-work-tree"],
        "the repository check",
        1024,
    )
    .await
    .map_err(|e| match e {
        ToolError::InvalidArguments { .. } => invalid(
            tool,
            format!(
                "`{}` is not inside a git repository (git rev-parse failed)",
                repo.display()
            ),
        ),
        other => other,
    })
    .map(drop)
}

/// The diff of `changes` in `repo`, at most `max` bytes.
pub async fn diff(tool: &str, repo: &Path, changes: &Changes, max: u64) -> Result<String, ToolError> {
    let mut args = vec!["diff", "--no-color", "--no-ext-diff"];
    match changes {
        Changes::Staged => args.push("--cached"),
        Changes::Unstaged => {}
        Changes::Against(r) => {
            check_ref(tool, r)?;
            args.push(r);
        }
    }
    args.push("--");
    git(tool, repo, &args, &changes.label(), max).await
}

/// Untracked files (not in any diff), relative to `repo`.
pub async fn untracked(tool: &str, repo: &Path, max: u64) -> Result<Vec<String>, ToolError> {
    let out = git(
        tool,
        repo,
        &["ls-files", "--others", "--exclude-standard"],
        "the untracked files",
        max,
    )
    .await?;
    Ok(out.lines().map(str::to_owned).collect())
}

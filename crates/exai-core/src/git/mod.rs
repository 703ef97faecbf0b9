//! Pending changes of a git repository, read through the `git` binary: staged, unstaged, or against a ref; each
//! diff is capped at a byte limit, so an oversize diff is refused with its size and the limit, never cut silently.
//! - [`command`]: every git process, with a cleared environment and overrides, so no repository runs a program.
//! - [`config_guard`]: refuses a repository whose configuration still names one (filters, diff drivers).

mod command;
mod config_guard;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::ToolError;
use crate::files::FilePolicy;

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
async fn git(
    tool: &str,
    repo: &Path,
    opened: Option<BorrowedFd<'_>>,
    args: &[&str],
    what: &str,
    max: u64,
) -> Result<String, ToolError> {
    let out = command::run(repo, opened, args, max)
        .await
        .map_err(|e| cannot_run(tool, e))?;
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
    /// That directory, opened when it was checked: git starts in it, whatever its path names by then.
    opened: Option<OwnedFd>,
    /// The top of the work tree (`git rev-parse --show-toplevel`).
    pub toplevel: PathBuf,
    /// The repository's git directory and common directory (a `.git` file, a linked work tree or `commondir` can
    /// put them anywhere: their index and objects are what a diff shows).
    pub git_dir: PathBuf,
    pub common_dir: PathBuf,
}

/// Opens the work tree containing `dir`: refused when `dir` is in none (a bare repository found by discovery, such
/// as one committed inside a clone, counts as none: `safe.bareRepository=explicit`), or when the repository's
/// configuration names a program (see [`config_guard::program_keys`]), naming each key.
pub async fn open(tool: &str, dir: &Path, opened: Option<OwnedFd>) -> Result<Repository, ToolError> {
    let fd = opened.as_ref().map(AsFd::as_fd);
    let out = command::run(
        dir,
        fd,
        &[
            "rev-parse",
            "--is-inside-work-tree",
            "--show-toplevel",
            "--absolute-git-dir",
            "--git-common-dir",
        ],
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
    let git_dir = PathBuf::from(lines.next().unwrap_or_default());
    // Relative to the directory git ran in.
    let common_dir = dir.join(lines.next().unwrap_or_default());
    let listing = command::run(dir, fd, &["config", "--list", "-z", "--show-scope"], MAX_CONFIG_BYTES)
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
        opened,
        toplevel,
        git_dir,
        common_dir,
    })
}

impl Repository {
    /// Refuses the repository unless its work tree, git directory and common directory all lie beneath the
    /// allowed roots: a `.git` file (`gitdir: /elsewhere/.git`) inside a root would otherwise diff another
    /// repository's index, its files' contents included, against the root's directory. Never names the outside.
    pub async fn check_within(&self, tool: &str, policy: &FilePolicy, shown: &str) -> Result<(), ToolError> {
        if policy.check_dir(tool, &self.toplevel.to_string_lossy()).await.is_err() {
            return Err(invalid(
                tool,
                format!(
                    "the git work tree containing `{shown}` starts above the allowed roots (files.allowed_roots, \
                     EXAI_ALLOWED_ROOTS), so its diff would show files outside them; allow the repository's top \
                     directory, or point path at a repository inside the roots"
                ),
            ));
        }
        for dir in [&self.git_dir, &self.common_dir] {
            if policy.check_dir(tool, &dir.to_string_lossy()).await.is_err() {
                return Err(invalid(
                    tool,
                    format!(
                        "the git directory of the repository containing `{shown}` lies outside the allowed roots \
                         (files.allowed_roots, EXAI_ALLOWED_ROOTS), through a `.git` file, a linked work tree or \
                         `commondir`; its diff would show files outside them. Allow that directory too, or review a \
                         repository whose git directory is inside the roots"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.opened.as_ref().map(AsFd::as_fd)
    }

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
        git(tool, &self.dir, self.fd(), &args, &changes.label(), max).await
    }

    /// Untracked files (not in any diff), relative to the directory given to [`open`].
    pub async fn untracked(&self, tool: &str, max: u64) -> Result<Vec<String>, ToolError> {
        let out = git(
            tool,
            &self.dir,
            self.fd(),
            &["ls-files", "--others", "--exclude-standard"],
            "the untracked files",
            max,
        )
        .await?;
        Ok(out.lines().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository at `dir` with one committed file, changed in the work tree to `change`.
    fn repo(dir: &Path, change: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("f.txt"), "base\n").unwrap();
        git(&["add", "f.txt"]);
        git(&["commit", "-q", "-m", "base"]);
        std::fs::write(dir.join("f.txt"), format!("{change}\n")).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_checked_directory_swapped_for_a_link_keeps_git_in_the_checked_repository() {
        let base = tempfile::tempdir().unwrap();
        let (root, outside) = (base.path().join("root"), base.path().join("outside"));
        repo(&root.join("repo"), "INSIDE-CHANGE");
        repo(&outside.join("repo"), "OUTSIDE-CHANGE");
        let policy = FilePolicy {
            roots: vec![root.clone()],
            pinned: Vec::new(),
            max_file_bytes: 1 << 20,
            max_images: 1,
            max_image_total_bytes: 1,
        };
        let path = root.join("repo").to_str().unwrap().to_owned();
        let (dir, opened) = policy.open_dir("precommit", &path).await.unwrap();
        let repo = open("precommit", &dir, Some(opened)).await.unwrap();
        // Checked and opened; now the directory's name leads out of the root.
        std::fs::rename(root.join("repo"), root.join("moved")).unwrap();
        std::os::unix::fs::symlink(outside.join("repo"), root.join("repo")).unwrap();
        let diff = repo.diff("precommit", &Changes::Unstaged, 1 << 20).await.unwrap();
        assert!(
            diff.contains("INSIDE-CHANGE") && !diff.contains("OUTSIDE-CHANGE"),
            "{diff}"
        );
        let untracked = repo.untracked("precommit", 1 << 20).await.unwrap();
        assert!(untracked.is_empty(), "{untracked:?}");
    }

    #[tokio::test]
    async fn a_git_file_pointing_outside_the_roots_is_refused_without_naming_it() {
        let base = tempfile::tempdir().unwrap();
        let (root, outside) = (base.path().join("root"), base.path().join("outside"));
        repo(&outside.join("repo"), "OUTSIDE-CHANGE");
        std::fs::create_dir_all(root.join("proj")).unwrap();
        let gitdir = outside.join("repo/.git");
        std::fs::write(root.join("proj/.git"), format!("gitdir: {}\n", gitdir.display())).unwrap();
        repo(&root.join("inside"), "INSIDE-CHANGE");
        let policy = FilePolicy {
            roots: vec![root.clone()],
            pinned: Vec::new(),
            max_file_bytes: 1 << 20,
            max_images: 1,
            max_image_total_bytes: 1,
        };
        for (name, ok) in [("proj", false), ("inside", true)] {
            let shown = root.join(name).to_str().unwrap().to_owned();
            let (dir, opened) = policy.open_dir("precommit", &shown).await.unwrap();
            let repo = open("precommit", &dir, Some(opened)).await.unwrap();
            match repo.check_within("precommit", &policy, &shown).await {
                Ok(()) => assert!(ok, "{name}: a git directory outside the roots was accepted"),
                Err(e) => {
                    let e = e.to_string();
                    assert!(!ok, "{name}: {e}");
                    assert!(e.contains("git directory") && !e.contains("outside/repo"), "{e}");
                }
            }
        }
    }
}

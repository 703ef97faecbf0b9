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
}

/// Opens the work tree containing `dir`: refused when `dir` is in none (a bare repository found by discovery, such
/// as one committed inside a clone, counts as none: `safe.bareRepository=explicit`), when anything git reads to diff
/// it lies outside the allowed roots of `policy` (its work tree, git directory, common directory, borrowed object
/// stores, a symlink in them: see [`symlinks_inside`]; an index entry that is no plain relative path), or when the
/// repository's configuration names a program (see [`config_guard::program_keys`]), naming each key.
pub async fn open(
    tool: &str,
    dir: &Path,
    policy: &FilePolicy,
    opened: Option<OwnedFd>,
) -> Result<Repository, ToolError> {
    let fd = opened.as_ref().map(AsFd::as_fd);
    let out = command::run(
        dir,
        fd,
        &[
            "rev-parse",
            "--is-inside-work-tree",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-dir",
            "--git-common-dir",
        ],
        64 * 1024,
    )
    .await
    .map_err(|e| cannot_run(tool, e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Split on LF alone: `lines()` would also drop a CR ending a path, reading `/root\r` as `/root`.
    let mut lines = stdout.strip_suffix('\n').unwrap_or(&stdout).split('\n');
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
    // One path a line: a path with a line feed in it (or not UTF-8) would be read as another path, so refused.
    let paths: Vec<&str> = lines.collect();
    if paths.len() != 3 || std::str::from_utf8(&out.stdout).is_err() {
        return Err(invalid(
            tool,
            format!(
                "the git repository at `{}` has a path with a line feed in it, or one that is not UTF-8 (or git is \
                 older than 2.31, without rev-parse --path-format); exai cannot check where it lies",
                dir.display()
            ),
        ));
    }
    let (toplevel, git_dir, common_dir) = (
        PathBuf::from(paths[0]),
        PathBuf::from(paths[1]),
        PathBuf::from(paths[2]),
    );
    if !policy.contains(&toplevel).await {
        // Never name the outside path: say only that the work tree reaches out of the roots.
        return Err(invalid(
            tool,
            format!(
                "the git work tree containing `{}` starts above the allowed roots (files.allowed_roots, \
                 EXAI_ALLOWED_ROOTS), so its diff would show files outside them; allow the repository's top \
                 directory, or point path at a repository inside the roots",
                dir.display()
            ),
        ));
    }
    // Before the configuration is read: a configuration outside the roots is not quoted either.
    if !policy.contains(&git_dir).await {
        return Err(outside(tool, dir, "its git directory"));
    }
    if !policy.contains(&common_dir).await {
        return Err(outside(tool, dir, "the git directory it shares with other work trees"));
    }
    // Every object store git reads: `objects/info/alternates`, theirs in turn, as git resolves them.
    // `core.quotePath=false`: only a path with control characters, quotes or backslashes is quoted (then refused).
    let counted = listing(
        tool,
        (dir, fd),
        &["-c", "core.quotePath=false", "count-objects", "-v"],
        MAX_CONFIG_BYTES,
        "list the object stores",
    )
    .await?;
    let mut walk = vec![common_dir.clone()];
    if !git_dir.starts_with(&common_dir) {
        walk.push(git_dir.clone());
    }
    for line in String::from_utf8_lossy(&counted.stdout).split('\n') {
        if let Some(alternate) = line.strip_prefix("alternate: ") {
            // A quoted path (git quotes unusual characters) is refused rather than unquoted.
            if alternate.starts_with('"') || !policy.contains(Path::new(alternate)).await {
                return Err(outside(
                    tool,
                    dir,
                    "an object store it borrows (objects/info/alternates)",
                ));
            }
            walk.push(PathBuf::from(alternate));
        }
    }
    symlinks_inside(tool, dir, policy, walk).await?;
    let config = listing(
        tool,
        (dir, fd),
        &["config", "--list", "-z", "--show-scope"],
        MAX_CONFIG_BYTES,
        "read the configuration",
    )
    .await?;
    let found = config_guard::program_keys(&config.stdout);
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
    // git trusts the paths in its index: an entry named `/home/me/.ssh/id_rsa` (or `../..`) is read from the disk
    // and shown in the diff, so every entry must be a plain path inside the work tree. Listed from the top: from a
    // subdirectory, ls-files would list only the entries below it.
    let index = listing(
        tool,
        (&toplevel, None),
        &["ls-files", "-z", "--cached"],
        MAX_INDEX_BYTES,
        "list the index",
    )
    .await?;
    if let Some(bad) = index
        .stdout
        .split(|&b| b == 0)
        .find(|p| !p.is_empty() && !plain_path(p))
    {
        return Err(invalid(
            tool,
            format!(
                "refusing the git repository at `{}`: its index names `{}`, which is not a path inside the work tree \
                 (absolute, or with an empty, `.`, `..` or `.git` part); git would read it from the disk for the diff",
                dir.display(),
                String::from_utf8_lossy(bad)
            ),
        ));
    }
    Ok(Repository {
        dir: dir.to_owned(),
        opened,
        toplevel,
    })
}

/// git's complete output for `args`, run in `at` (a directory, and its opened descriptor when git should start in
/// that very directory); refused, saying exai cannot `what` of the repository, when git failed or wrote more than
/// `max` bytes (a listing half read would be half checked).
async fn listing(
    tool: &str,
    at: (&Path, Option<BorrowedFd<'_>>),
    args: &[&str],
    max: u64,
    what: &str,
) -> Result<command::Output, ToolError> {
    let (dir, fd) = at;
    let out = command::run(dir, fd, args, max)
        .await
        .map_err(|e| cannot_run(tool, e))?;
    if !out.success || out.overflowed {
        return Err(invalid(
            tool,
            format!(
                "cannot {what} of the git repository at `{}` (at most {max} bytes): {}",
                dir.display(),
                out.stderr_text()
            ),
        ));
    }
    Ok(out)
}

/// At most this much of `git ls-files -z`; a larger index is refused rather than half checked.
const MAX_INDEX_BYTES: u64 = 128 * 1024 * 1024;

/// Whether an index entry is a path git itself would accept (`verify_path`): relative, and no part of it empty,
/// `.`, `..` or `.git` (in any case).
fn plain_path(path: &[u8]) -> bool {
    !path.starts_with(b"/")
        && path
            .split(|&b| b == b'/')
            .all(|part| !part.is_empty() && part != b"." && part != b".." && !part.eq_ignore_ascii_case(b".git"))
}

/// Past this many entries in the git directory, a repository is refused rather than half checked.
const MAX_GIT_DIR_ENTRIES: usize = 1_000_000;

/// Refuses a repository when a symlink in what git reads (its git directory, common directory and borrowed object
/// stores, `walk`) resolves outside the allowed roots: an `objects`, `refs` or `index` linked to another
/// repository's would show that repository's files in the diff. A symlink to a directory inside the roots is
/// walked in turn (it could hold the link that leaves them). What cannot be walked whole is refused: git opens files
/// by name in a directory it cannot list.
async fn symlinks_inside(tool: &str, dir: &Path, policy: &FilePolicy, walk: Vec<PathBuf>) -> Result<(), ToolError> {
    let policy = policy.clone();
    let walked = tokio::task::spawn_blocking(move || {
        let roots = policy.current_roots();
        walk_git_dirs(walk, &roots, MAX_GIT_DIR_ENTRIES)
    })
    .await
    .map_err(|e| ToolError::Unavailable(format!("{tool}: cannot walk the git directory: {e}")))?;
    match walked {
        Ok(()) => Ok(()),
        Err(Walk::Outside) => Err(outside(tool, dir, "a symlink in its git directory")),
        Err(Walk::Unchecked(why)) => Err(invalid(
            tool,
            format!(
                "refusing the git repository at `{}`: its git directory cannot be checked whole ({why})",
                dir.display()
            ),
        )),
    }
}

/// Why a walk of git directories failed.
#[derive(Debug, PartialEq, Eq)]
enum Walk {
    /// A symlink resolves outside the roots, or nowhere.
    Outside,
    /// A directory could not be read, or the walk passed its cap on entries.
    Unchecked(String),
}

/// Walks `dirs` (symlinks resolved, never followed blindly): every symlink must resolve inside `roots` (canonical);
/// one to a directory is walked in turn, once.
fn walk_git_dirs(dirs: Vec<PathBuf>, roots: &[PathBuf], max: usize) -> Result<(), Walk> {
    let inside = |p: &Path| roots.iter().any(|r| p.starts_with(r));
    let mut seen = std::collections::HashSet::new();
    let mut stack = Vec::new();
    for d in dirs {
        let canonical = std::fs::canonicalize(&d).map_err(|_| Walk::Outside)?;
        if !inside(&canonical) {
            return Err(Walk::Outside);
        }
        if seen.insert(canonical.clone()) {
            stack.push(canonical);
        }
    }
    let mut entries_seen = 0usize;
    while let Some(dir) = stack.pop() {
        let unreadable = |e: std::io::Error| Walk::Unchecked(format!("`{}` cannot be read: {e}", dir.display()));
        for entry in std::fs::read_dir(&dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            entries_seen += 1;
            if entries_seen > max {
                return Err(Walk::Unchecked(format!("over {max} entries")));
            }
            let kind = entry.file_type().map_err(unreadable)?;
            if kind.is_symlink() {
                let target = std::fs::canonicalize(entry.path()).map_err(|_| Walk::Outside)?;
                if !inside(&target) {
                    return Err(Walk::Outside);
                }
                if target.is_dir() && seen.insert(target.clone()) {
                    stack.push(target);
                }
            } else if kind.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

fn outside(tool: &str, dir: &Path, what: &str) -> ToolError {
    // Never name the outside path.
    invalid(
        tool,
        format!(
            "refusing the git repository at `{}`: {what} lies outside the allowed roots (files.allowed_roots, \
             EXAI_ALLOWED_ROOTS), and its diff would show files from there; allow that directory too, or review a \
             repository wholly inside the roots",
            dir.display()
        ),
    )
}

impl Repository {
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
            // Not `diff.submodule=diff`: it runs `git diff` in the submodule, without these flags, under the
            // submodule's own (unchecked) configuration; `log` reads the submodule's objects.
            "--submodule=short",
        ];
        match changes {
            Changes::Staged => args.push("--cached"),
            Changes::Unstaged => {}
            Changes::Against(r) => {
                check_ref(tool, r)?;
            }
        }
        // `git diff <path outside the repository> --` switches to `--no-index`, comparing files on the disk (older
        // gits took the `--` as the second file): the ref is resolved to a commit first, and only its id is passed.
        let commit = match changes {
            Changes::Against(r) => Some(self.commit(tool, r).await?),
            _ => None,
        };
        if let Some(id) = &commit {
            args.push(id);
        }
        args.push("--");
        git(tool, &self.dir, self.fd(), &args, &changes.label(), max).await
    }

    /// The commit `r` names, as its full id.
    async fn commit(&self, tool: &str, r: &str) -> Result<String, ToolError> {
        let spec = format!("{r}^{{commit}}");
        let out = command::run(
            &self.dir,
            self.fd(),
            &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec],
            4096,
        )
        .await
        .map_err(|e| cannot_run(tool, e))?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.success || out.overflowed || id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                tool,
                format!(
                    "compare_to `{r}` names no commit in `{}` (a branch, tag or commit such as main, v1.2 or \
                     HEAD~1)",
                    self.dir.display()
                ),
            ));
        }
        Ok(id)
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

    #[test]
    fn index_entries_must_be_plain_paths_inside_the_work_tree() {
        for good in ["a.txt", "src/lib.rs", ".github/x", "a/.gitignore", "x..y", "..a"] {
            assert!(plain_path(good.as_bytes()), "{good}");
        }
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            ".git/config",
            "a/.GIT/x",
            "",
        ] {
            assert!(!plain_path(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn the_walk_follows_symlinks_inside_the_roots_and_refuses_what_it_cannot_read_whole() {
        let root = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(root.path()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let git = root.join("repo/.git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        let roots = [root.clone()];
        assert_eq!(walk_git_dirs(vec![git.clone()], &roots, 100), Ok(()));
        // `objects` links to a directory inside the roots, whose `pack` links out of them.
        let decoy = root.join("decoy");
        std::fs::create_dir(&decoy).unwrap();
        std::os::unix::fs::symlink(&decoy, git.join("objects")).unwrap();
        assert_eq!(walk_git_dirs(vec![git.clone()], &roots, 100), Ok(()));
        std::os::unix::fs::symlink(elsewhere.path(), decoy.join("pack")).unwrap();
        assert_eq!(walk_git_dirs(vec![git.clone()], &roots, 100), Err(Walk::Outside));
        std::fs::remove_file(decoy.join("pack")).unwrap();
        // A loop of links ends; a dangling link is refused.
        std::os::unix::fs::symlink(&git, decoy.join("back")).unwrap();
        assert_eq!(walk_git_dirs(vec![git.clone()], &roots, 100), Ok(()));
        std::os::unix::fs::symlink(root.join("nowhere"), git.join("index")).unwrap();
        assert_eq!(walk_git_dirs(vec![git.clone()], &roots, 100), Err(Walk::Outside));
        std::fs::remove_file(git.join("index")).unwrap();
        assert_eq!(
            walk_git_dirs(vec![git.clone()], &roots, 2),
            Err(Walk::Unchecked("over 2 entries".into()))
        );
        // A start that resolves nowhere is refused (running as root, no directory is unreadable to test with).
        assert_eq!(walk_git_dirs(vec![root.join("gone")], &roots, 100), Err(Walk::Outside));
    }

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
        let repo = open("precommit", &dir, &policy, Some(opened)).await.unwrap();
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
            match open("precommit", &dir, &policy, Some(opened)).await {
                Ok(_) => assert!(ok, "{name}: a git directory outside the roots was accepted"),
                Err(e) => {
                    let e = e.to_string();
                    assert!(!ok, "{name}: {e}");
                    assert!(e.contains("git directory") && !e.contains("outside/repo"), "{e}");
                }
            }
        }
    }
}

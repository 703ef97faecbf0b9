//! Every `git` process exai starts, hardened: a cleared environment with an allow-list, and `-c` overrides that
//! switch off each way a repository or the daemon's environment could make git run another program.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How much of git's stderr is kept for an error message; the rest is read and dropped, so git never blocks on a
/// full stderr pipe (1,500 files with `core.autocrlf` warnings write well past it).
pub const STDERR_KEPT: u64 = 64 * 1024;

/// The most of git's stderr an error message quotes.
pub const MESSAGE_CHARS: usize = 600;

/// The environment git runs with, and nothing else: no inherited `GIT_*` variable (`GIT_DIR`, `GIT_CONFIG_*`,
/// `GIT_EXTERNAL_DIFF`, `GIT_SSH`, ...), no global or system configuration, no prompts, no lazy fetches.
/// `HOME=/dev/null` leaves nothing under `~` to read (git ignores paths below a non-directory quietly).
const ENV: [(&str, &str); 12] = [
    ("HOME", "/dev/null"),
    ("LANG", "C"),
    ("LC_ALL", "C"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_CONFIG_SYSTEM", "/dev/null"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_ATTR_NOSYSTEM", "1"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_OPTIONAL_LOCKS", "0"),
    ("GIT_NO_LAZY_FETCH", "1"),
    ("GIT_PROTOCOL_FROM_USER", "0"),
    ("GIT_ADVICE", "0"),
];

/// Overrides on every invocation. Command-line configuration outranks the repository's own, so these win over
/// whatever `.git/config` says; what they cannot switch off (filters, diff drivers, `diff.external`: an empty
/// override of that one would make git try to run "") is refused by [`super::config_guard`].
pub const OVERRIDES: [(&str, &str); 18] = [
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    // A bare repository committed inside a clone (`core.worktree=..` plus fsmonitor) is never discovered.
    ("safe.bareRepository", "explicit"),
    ("core.untrackedCache", "false"),
    ("core.attributesFile", "/dev/null"),
    // Files a repository could name outside the allowed roots: which untracked files are listed, and the order of
    // the diff, would tell what they hold.
    ("core.excludesFile", "/dev/null"),
    ("diff.orderFile", "/dev/null"),
    ("core.pager", "cat"),
    ("submodule.recurse", "false"),
    // No transport at all: a partial clone's lazy fetch, an `ext::` remote or a configured upload-pack never run.
    ("protocol.allow", "never"),
    ("protocol.ext.allow", "never"),
    ("protocol.fd.allow", "never"),
    ("protocol.file.allow", "never"),
    ("protocol.git.allow", "never"),
    ("protocol.ssh.allow", "never"),
    ("protocol.http.allow", "never"),
    ("protocol.https.allow", "never"),
    ("credential.helper", ""),
];

/// What a finished git process left: its exit status, its stdout (whole, or cut just past the cap when
/// `overflowed`), and the first [`STDERR_KEPT`] bytes of its stderr.
pub struct Output {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub overflowed: bool,
    pub stderr: Vec<u8>,
}

impl Output {
    /// What git said went wrong, for an error message: its `fatal:` and `error:` lines, else its first lines (never
    /// pages of warnings), at most [`MESSAGE_CHARS`] characters.
    pub fn stderr_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("fatal:") || l.starts_with("error:"))
            .collect();
        let lines = if errors.is_empty() {
            text.lines().collect::<Vec<_>>()
        } else {
            errors
        };
        let joined = lines.join("; ");
        match joined.char_indices().nth(MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}…", &joined[..cut]),
            None => joined.trim().to_owned(),
        }
    }
}

/// `git -C repo <overrides> args…` with the hardened environment; stdout is read up to `max` bytes (past it git is
/// stopped and `overflowed` set), stderr to its end.
pub async fn run(repo: &Path, args: &[&str], max: u64) -> std::io::Result<Output> {
    let mut cmd = Command::new("git");
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(ENV).arg("--no-pager").arg("-C").arg(repo);
    for (key, value) in OVERRIDES {
        cmd.arg("-c").arg(format!("{key}={value}"));
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
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
            if let Some(mut s) = stderr {
                let _ = (&mut s).take(STDERR_KEPT).read_to_end(&mut err).await;
                // Keep reading past the cap: a full pipe would block git forever.
                let _ = tokio::io::copy(&mut s, &mut tokio::io::sink()).await;
            }
        }
    );
    read?;
    let status = child.wait().await?;
    let overflowed = out.len() as u64 > max;
    Ok(Output {
        success: status.success(),
        stdout: out,
        overflowed,
        stderr: err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(stderr: &str) -> Output {
        Output {
            success: false,
            stdout: Vec::new(),
            overflowed: false,
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn an_error_message_quotes_git_errors_not_its_warnings() {
        let warnings = "warning: in the working copy of 'f.txt', LF will be replaced by CRLF\n".repeat(2_000);
        let out = output(&format!("{warnings}fatal: bad revision 'nope'\n"));
        assert_eq!(out.stderr_text(), "fatal: bad revision 'nope'");
        let text = output(&warnings).stderr_text();
        assert!(
            text.chars().count() <= MESSAGE_CHARS + 1 && text.ends_with('…'),
            "{text}"
        );
    }
}

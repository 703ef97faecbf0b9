//! `precommit` never lets a repository or the daemon's environment run a program through git: each known vector
//! (fsmonitor, a textconv driver, a clean filter, a bare repository committed inside a clone, hostile `GIT_*`
//! variables and a global config) is driven to the final step, where the diff is taken, and no marker file appears.
//! Also: a stderr far past git's 64 KiB cap (autocrlf warnings) no longer stalls git.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::chat::{error_text, exai, sim, structured};
use crate::workflow::{git, last_text, step};

/// A committed repository in `dir` with one file `a.txt`, changed in the index and again in the work tree.
fn repo_with_changes(dir: &Path) {
    git(dir, &["init", "-q"]);
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "first"]);
    std::fs::write(dir.join("a.txt"), "one\nstaged line\n").unwrap();
    git(dir, &["add", "a.txt"]);
    std::fs::write(dir.join("a.txt"), "one\nstaged line\nunstaged line\n").unwrap();
}

/// A shell command that creates `marker` (what an attacker's command would do instead).
fn touch(marker: &Path) -> String {
    format!("touch '{}'; cat", marker.display())
}

/// One final `precommit` step on `path` (check and diff both run), with the daemon allowed `root` and given `env`.
async fn precommit(root: &Path, path: &Path, env: &[(&str, &str)]) -> (Value, Vec<exai_sim::Recorded>) {
    precommit_with(root, path, env, json!({})).await
}

/// [`precommit`] with `extra` arguments (such as `compare_to`).
async fn precommit_with(
    root: &Path,
    path: &Path,
    env: &[(&str, &str)],
    extra: Value,
) -> (Value, Vec<exai_sim::Recorded>) {
    let sim = sim().await;
    let root = root.to_str().unwrap();
    let mut all = vec![("EXAI_ALLOWED_ROOTS", root), ("EXAI_TOOL_PROFILE", "full")];
    all.extend_from_slice(env);
    let mut raw = exai(&sim, &all).await;
    let mut fields = json!({"path": path.to_str().unwrap()});
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    let args = step(1, 1, false, "reviewing", fields);
    let (_, reply) = raw.call(1, "precommit", args, false).await;
    drop(raw);
    (reply, sim.chat_requests())
}

/// The expert got the staged and unstaged diffs of [`repo_with_changes`].
fn diff_reached_the_expert(reply: &Value, sent: &[exai_sim::Recorded]) {
    assert_eq!(structured(reply)["status"], "complete", "{reply}");
    let text = last_text(&sent[0]);
    assert!(
        text.contains("+staged line") && text.contains("+unstaged line"),
        "{text}"
    );
}

fn assert_absent(marker: &Path) {
    assert!(
        !marker.exists(),
        "git ran a program named by the repository or the environment: {} was created",
        marker.display()
    );
}

struct Case {
    _dir: tempfile::TempDir,
    root: PathBuf,
    marker: PathBuf,
}

fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    let marker = dir.path().join("ran");
    Case {
        root,
        marker,
        _dir: dir,
    }
}

#[tokio::test]
async fn core_fsmonitor_in_the_repository_config_never_runs() {
    let c = case();
    repo_with_changes(&c.root);
    git(&c.root, &["config", "core.fsmonitor", &touch(&c.marker)]);
    let (reply, sent) = precommit(&c.root, &c.root, &[]).await;
    assert_absent(&c.marker);
    // Overridden on the command line, the setting is harmless: the review goes ahead.
    diff_reached_the_expert(&reply, &sent);
    // The same against a ref.
    let (reply, sent) = precommit_with(&c.root, &c.root, &[], json!({"compare_to": "HEAD"})).await;
    assert_absent(&c.marker);
    assert!(last_text(&sent[0]).contains("## changes against HEAD"), "{reply}");
    diff_reached_the_expert(&reply, &sent);
}

#[tokio::test]
async fn a_textconv_driver_selected_by_gitattributes_is_refused_by_name() {
    let c = case();
    repo_with_changes(&c.root);
    std::fs::write(c.root.join(".gitattributes"), "*.txt diff=evil\n").unwrap();
    git(&c.root, &["config", "diff.evil.textconv", &touch(&c.marker)]);
    let (reply, sent) = precommit(&c.root, &c.root, &[]).await;
    assert_absent(&c.marker);
    let text = error_text(&reply);
    assert!(
        text.contains("`diff.evil.textconv` (local config)") && text.contains("names a program"),
        "{text}"
    );
    assert!(sent.is_empty(), "a refused repository reaches no model");
}

#[tokio::test]
async fn a_clean_filter_is_refused_by_name() {
    let c = case();
    repo_with_changes(&c.root);
    std::fs::write(c.root.join(".gitattributes"), "*.txt filter=evil\n").unwrap();
    git(&c.root, &["config", "filter.evil.clean", &touch(&c.marker)]);
    let (reply, _) = precommit(&c.root, &c.root, &[]).await;
    assert_absent(&c.marker);
    let text = error_text(&reply);
    assert!(text.contains("`filter.evil.clean` (local config)"), "{text}");
}

#[tokio::test]
async fn a_bare_repository_committed_inside_a_clone_is_never_used() {
    let c = case();
    // The attacker's repository: a bare repository committed as ordinary files under `evil/`, its config pointing
    // the work tree at the clone and naming an fsmonitor command.
    let upstream = c.root.join("upstream");
    std::fs::create_dir(&upstream).unwrap();
    git(&upstream, &["init", "-q"]);
    std::fs::write(upstream.join("README"), "hello\n").unwrap();
    git(&upstream, &["init", "-q", "--bare", "evil"]);
    let evil = upstream.join("evil");
    std::fs::remove_dir_all(evil.join("hooks")).unwrap();
    for keep in ["refs/heads/.keep", "refs/tags/.keep", "objects/.keep"] {
        std::fs::write(evil.join(keep), "").unwrap();
    }
    let gitdir = format!("--git-dir={}", evil.display());
    git(&upstream, &[&gitdir, "config", "core.bare", "false"]);
    git(&upstream, &[&gitdir, "config", "core.worktree", ".."]);
    git(&upstream, &[&gitdir, "config", "core.fsmonitor", &touch(&c.marker)]);
    git(&upstream, &["add", "."]);
    git(&upstream, &["commit", "-q", "-m", "innocent"]);
    // The victim clones it and reviews the directory it came with.
    let clone = c.root.join("clone");
    git(
        &c.root,
        &["clone", "-q", upstream.to_str().unwrap(), clone.to_str().unwrap()],
    );
    assert!(
        clone.join("evil/config").exists(),
        "the bare repository came with the clone"
    );
    std::fs::write(clone.join("README"), "hello\nchanged\n").unwrap();

    let (reply, _) = precommit(&c.root, &clone.join("evil"), &[]).await;
    assert_absent(&c.marker);
    let text = error_text(&reply);
    assert!(
        text.contains("not inside a git work tree") && text.contains("safe.bareRepository"),
        "{text}"
    );
}

#[tokio::test]
async fn git_variables_and_a_global_config_in_the_daemons_environment_are_ignored() {
    let c = case();
    repo_with_changes(&c.root);
    std::fs::write(c.root.join(".gitattributes"), "*.txt filter=evil diff=evil\n").unwrap();
    git(&c.root, &["add", ".gitattributes"]);
    let dir = c.marker.parent().unwrap();
    let mark = |name: &str| dir.join(name);
    let global = dir.join("global.gitconfig");
    std::fs::write(
        &global,
        format!(
            "[core]\n\tfsmonitor = \"{}\"\n[filter \"evil\"]\n\tclean = \"{}\"\n[diff \"evil\"]\n\ttextconv = \"{}\"\n",
            touch(&mark("global-fsmonitor")),
            touch(&mark("global-filter")),
            touch(&mark("global-textconv")),
        ),
    )
    .unwrap();
    // A HOME whose ~/.gitconfig names programs too (read when GIT_CONFIG_GLOBAL is not set).
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(
        home.join(".gitconfig"),
        format!("[filter \"evil\"]\n\tclean = \"{}\"\n", touch(&mark("home-filter"))),
    )
    .unwrap();
    let ext = touch(&mark("external-diff"));
    let count_fsmonitor = touch(&mark("config-count-fsmonitor"));
    let (global, home) = (global.to_str().unwrap(), home.to_str().unwrap());
    for env in [
        vec![
            ("GIT_CONFIG_GLOBAL", global),
            ("GIT_EXTERNAL_DIFF", ext.as_str()),
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "core.fsmonitor"),
            ("GIT_CONFIG_VALUE_0", count_fsmonitor.as_str()),
        ],
        vec![("HOME", home)],
    ] {
        let (reply, sent) = precommit(&c.root, &c.root, &env).await;
        for name in [
            "global-fsmonitor",
            "global-filter",
            "global-textconv",
            "home-filter",
            "external-diff",
            "config-count-fsmonitor",
        ] {
            assert_absent(&mark(name));
        }
        // The daemon's own environment is not the repository's: ignored, not refused.
        diff_reached_the_expert(&reply, &sent);
    }
}

#[tokio::test]
async fn a_stderr_far_past_its_cap_does_not_stall_git() {
    let c = case();
    git(&c.root, &["init", "-q"]);
    for i in 0..1_500 {
        std::fs::write(c.root.join(format!("f{i}.txt")), format!("line {i}\n")).unwrap();
    }
    git(&c.root, &["add", "."]);
    git(&c.root, &["commit", "-q", "-m", "first"]);
    // Every changed LF file now draws a ~100-byte warning on stderr: about 150 KB, over twice the 64 KiB kept.
    git(&c.root, &["config", "core.autocrlf", "true"]);
    for i in 0..1_500 {
        std::fs::write(c.root.join(format!("f{i}.txt")), format!("line {i}\nmore\n")).unwrap();
    }
    let (reply, sent) = precommit(&c.root, &c.root, &[("EXAI_MAX_FILE_BYTES", "4000000")]).await;
    assert_eq!(structured(&reply)["status"], "complete", "{reply}");
    let text = last_text(&sent[0]);
    assert!(
        text.contains("+more") && text.contains("f1499.txt"),
        "the whole diff reached the expert"
    );
}

#[tokio::test]
async fn a_submodules_own_config_is_never_read() {
    let c = case();
    // A submodule whose own configuration names a clean filter for its files (git would run it to see whether
    // the submodule's work tree is dirty).
    let sub_src = c.marker.parent().unwrap().join("sub-src");
    std::fs::create_dir(&sub_src).unwrap();
    git(&sub_src, &["init", "-q"]);
    std::fs::write(sub_src.join(".gitattributes"), "*.txt filter=evil\n").unwrap();
    std::fs::write(sub_src.join("s.txt"), "sub\n").unwrap();
    git(&sub_src, &["add", "."]);
    git(&sub_src, &["commit", "-q", "-m", "sub"]);
    repo_with_changes(&c.root);
    let src = sub_src.to_str().unwrap();
    git(
        &c.root,
        &["-c", "protocol.file.allow=always", "submodule", "add", "-q", src, "sub"],
    );
    git(
        &c.root,
        &["commit", "-q", "-m", "with a submodule", "--", ".gitmodules", "sub"],
    );
    let sub = c.root.join("sub");
    git(&sub, &["config", "filter.evil.clean", &touch(&c.marker)]);
    // Same content, new mtime: git can only tell whether it changed by filtering it.
    let file = std::fs::File::options().write(true).open(sub.join("s.txt")).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);

    let (reply, sent) = precommit(&c.root, &c.root, &[]).await;
    assert_absent(&c.marker);
    diff_reached_the_expert(&reply, &sent);
}

#[tokio::test]
async fn a_work_tree_reaching_above_the_allowed_roots_is_refused() {
    let c = case();
    repo_with_changes(&c.root);
    let inner = c.root.join("inner");
    std::fs::create_dir(&inner).unwrap();
    // Allowed: only `inner`; git finds the repository above it, whose diff shows files outside the roots.
    let (reply, sent) = precommit(&inner, &inner, &[]).await;
    let text = error_text(&reply);
    assert!(
        text.contains("starts above the allowed roots") && text.contains("EXAI_ALLOWED_ROOTS"),
        "{text}"
    );
    assert!(sent.is_empty(), "no diff reached a model");
}

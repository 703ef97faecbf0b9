//! `precommit` never lets a repository or the daemon's environment run a program through git: each known vector
//! (fsmonitor, a textconv driver, a clean filter, a bare repository committed inside a clone, hostile `GIT_*`
//! variables and a global config) is driven to the final step, where the diff is taken, and no marker file appears.
//! Also: a stderr far past git's 64 KiB cap (autocrlf warnings) no longer stalls git, and a work tree inside the
//! roots whose git directory, object store or index comes from outside them is refused before any diff.

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

/// The case's repository (with changes) plus a committed submodule `sub`, cloned from a repository beside it that
/// `fill` writes and commits; returns the submodule's work tree.
fn with_submodule(c: &Case, fill: impl FnOnce(&Path)) -> PathBuf {
    let sub_src = c.marker.parent().unwrap().join("sub-src");
    std::fs::create_dir(&sub_src).unwrap();
    git(&sub_src, &["init", "-q"]);
    fill(&sub_src);
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
    c.root.join("sub")
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
    let sub = with_submodule(&c, |src| {
        std::fs::write(src.join(".gitattributes"), "*.txt filter=evil\n").unwrap();
        std::fs::write(src.join("s.txt"), "sub\n").unwrap();
        git(src, &["add", "."]);
        git(src, &["commit", "-q", "-m", "sub"]);
    });
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

#[tokio::test]
async fn a_submodule_diff_format_in_the_config_never_runs_the_submodules_external_diff() {
    let c = case();
    // A submodule with two commits; the top repository stages a move of its gitlink.
    let sub = with_submodule(&c, |src| {
        std::fs::write(src.join("s.txt"), "sub\n").unwrap();
        git(src, &["add", "."]);
        git(src, &["commit", "-q", "-m", "one"]);
        std::fs::write(src.join("s.txt"), "sub\ntwo\n").unwrap();
        git(src, &["commit", "-q", "-am", "two"]);
    });
    git(&sub, &["checkout", "-q", "HEAD~1"]);
    git(&c.root, &["add", "sub"]);
    // `diff.submodule=diff` makes git run `git diff` inside the submodule, without --no-ext-diff, where the
    // submodule's own configuration (never checked) names an external diff.
    git(&c.root, &["config", "diff.submodule", "diff"]);
    git(&sub, &["config", "diff.external", &touch(&c.marker)]);

    let (reply, sent) = precommit(&c.root, &c.root, &[]).await;
    assert_absent(&c.marker);
    diff_reached_the_expert(&reply, &sent);
    assert!(last_text(&sent[0]).contains("Subproject commit"), "{reply}");
}

#[tokio::test]
async fn a_filter_named_by_an_odd_whitespace_character_is_refused() {
    let c = case();
    repo_with_changes(&c.root);
    // A program named U+000B in the work tree: with an empty entry in PATH (the current directory, which is the
    // top of the work tree when git runs a filter), a filter whose command is that one character runs it.
    let program = c.root.join("\u{b}");
    std::fs::write(&program, format!("#!/bin/sh\n{}\n", touch(&c.marker))).unwrap();
    let mut perms = std::fs::metadata(&program).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&program, perms).unwrap();
    std::fs::write(c.root.join(".git/info/attributes"), "*.txt filter=evil\n").unwrap();
    let mut config = std::fs::read_to_string(c.root.join(".git/config")).unwrap();
    config.push_str("[filter \"evil\"]\n\tclean = \u{b}\n");
    std::fs::write(c.root.join(".git/config"), config).unwrap();
    let path = format!("{}:", std::env::var("PATH").unwrap_or_default());

    let (reply, sent) = precommit(&c.root, &c.root, &[("PATH", &path)]).await;
    assert_absent(&c.marker);
    let text = error_text(&reply);
    assert!(text.contains("`filter.evil.clean` (local config)"), "{text}");
    assert!(sent.is_empty(), "a refused repository reaches no model");
}

/// A repository outside the allowed roots (`dir/secret`) with one committed file; returns its commit.
fn secret_repo(dir: &Path) -> String {
    let secret = dir.join("secret");
    std::fs::create_dir(&secret).unwrap();
    git(&secret, &["init", "-q"]);
    std::fs::write(secret.join("creds.txt"), "TOPSECRET password=hunter2\n").unwrap();
    git(&secret, &["add", "."]);
    git(&secret, &["commit", "-q", "-m", "secret"]);
    git_out(&secret, &["rev-parse", "HEAD"])
}

/// What `git args` in `dir` prints, trimmed.
fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_git_directory_or_object_store_outside_the_roots_is_refused() {
    let c = case();
    let outside = c.marker.parent().unwrap();
    let head = secret_repo(outside);
    let secret_git = outside.join("secret/.git");
    // Each work tree is inside the roots; what git reads to diff it is not.
    let redirect = c.root.join("redirect");
    std::fs::create_dir(&redirect).unwrap();
    std::fs::write(redirect.join(".git"), format!("gitdir: {}\n", secret_git.display())).unwrap();
    let linked = c.root.join("linked");
    std::os::unix::fs::symlink(&secret_git, {
        std::fs::create_dir(&linked).unwrap();
        linked.join(".git")
    })
    .unwrap();
    let worktree = c.root.join("worktree");
    git(
        &outside.join("secret"),
        &["worktree", "add", "-q", worktree.to_str().unwrap()],
    );
    std::fs::remove_file(worktree.join("creds.txt")).unwrap();
    let common = c.root.join("common");
    std::fs::create_dir(&common).unwrap();
    git(&common, &["init", "-q"]);
    std::fs::write(common.join(".git/commondir"), format!("{}\n", secret_git.display())).unwrap();
    let alternates = c.root.join("alternates");
    std::fs::create_dir(&alternates).unwrap();
    git(&alternates, &["init", "-q"]);
    std::fs::write(
        alternates.join(".git/objects/info/alternates"),
        format!("{}\n", secret_git.join("objects").display()),
    )
    .unwrap();
    let objects = c.root.join("objects");
    std::fs::create_dir(&objects).unwrap();
    git(&objects, &["init", "-q"]);
    std::fs::remove_dir_all(objects.join(".git/objects")).unwrap();
    std::os::unix::fs::symlink(secret_git.join("objects"), objects.join(".git/objects")).unwrap();

    // A git directory next to the root, named like it plus a CR: `str::lines` would drop the CR and check the root
    // instead (the walk would still find the `.git` symlink such a layout needs, so the paths are read on LF).
    let beside = outside.join("repo\r");
    git(
        outside,
        &[
            "clone",
            "-q",
            "--bare",
            secret_git.to_str().unwrap(),
            beside.to_str().unwrap(),
        ],
    );
    git(
        outside,
        &[
            &format!("--git-dir={}", beside.display()),
            "config",
            "core.bare",
            "false",
        ],
    );
    let carriage = c.root.join("carriage");
    std::fs::create_dir(&carriage).unwrap();
    std::os::unix::fs::symlink(&beside, carriage.join(".git")).unwrap();
    // Hops through the roots: `objects` links to a directory inside them whose `pack` links out, and alternates
    // name a store inside them whose `pack` links out.
    git(&outside.join("secret"), &["gc", "-q"]);
    let decoy = c.root.join("decoy-objects");
    std::fs::create_dir_all(decoy.join("info")).unwrap();
    std::os::unix::fs::symlink(secret_git.join("objects/pack"), decoy.join("pack")).unwrap();
    let hop = c.root.join("hop");
    std::fs::create_dir(&hop).unwrap();
    git(&hop, &["init", "-q"]);
    std::fs::remove_dir_all(hop.join(".git/objects")).unwrap();
    std::os::unix::fs::symlink(&decoy, hop.join(".git/objects")).unwrap();
    let borrow = c.root.join("borrow");
    std::fs::create_dir(&borrow).unwrap();
    git(&borrow, &["init", "-q"]);
    std::fs::write(
        borrow.join(".git/objects/info/alternates"),
        format!("{}\n", decoy.display()),
    )
    .unwrap();
    let secret_path = outside.join("secret");
    let mut failures = Vec::new();
    for (how, repo) in [
        ("a .git file", &redirect),
        ("a .git symlink", &linked),
        ("a linked work tree", &worktree),
        ("a commondir file", &common),
        ("alternates", &alternates),
        ("a symlinked objects directory", &objects),
        ("a git directory beside the root, its name ending in CR", &carriage),
        ("objects linked into the roots, linking out", &hop),
        ("alternates into the roots, linking out", &borrow),
    ] {
        let (reply, sent) = precommit_with(&c.root, repo, &[], json!({"compare_to": head})).await;
        let leaked = sent.iter().any(|s| last_text(s).contains("TOPSECRET"));
        let text = reply["result"]["content"][0]["text"].as_str().unwrap_or_default();
        let refused = reply["result"]["isError"] == true
            && text.contains("outside the allowed roots")
            && !text.contains(secret_path.to_str().unwrap());
        if leaked || !refused || !sent.is_empty() {
            failures.push(format!("{how}: leaked {leaked}: {text}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn an_index_entry_naming_a_file_outside_the_work_tree_is_refused() {
    let c = case();
    let outside = c.marker.parent().unwrap();
    secret_repo(outside);
    let target = outside.join("secret/creds.txt");
    let target = target.to_str().unwrap();
    repo_with_changes(&c.root);
    // git refuses to add such a path, but reads one from an index written by hand: add a placeholder of the same
    // length, rename it in place, and zero the checksum (git skips checking a null one).
    let placeholder = "0".repeat(target.len());
    let blob = git_out(&c.root, &["rev-parse", "HEAD:a.txt"]);
    git(
        &c.root,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},{placeholder}"),
        ],
    );
    let index = c.root.join(".git/index");
    let mut bytes = std::fs::read(&index).unwrap();
    let at = bytes
        .windows(placeholder.len())
        .position(|w| w == placeholder.as_bytes())
        .unwrap();
    bytes[at..at + placeholder.len()].copy_from_slice(target.as_bytes());
    let len = bytes.len();
    bytes[len - 20..].fill(0);
    std::fs::write(&index, bytes).unwrap();
    assert!(git_out(&c.root, &["ls-files"]).contains(target), "git reads the entry");

    for extra in [json!({}), json!({"compare_to": "HEAD"})] {
        let (reply, sent) = precommit_with(&c.root, &c.root, &[], extra).await;
        assert!(
            sent.iter().all(|s| !last_text(s).contains("TOPSECRET")),
            "a file outside the roots reached the model"
        );
        let text = error_text(&reply);
        assert!(text.contains("its index names"), "{text}");
        assert!(sent.is_empty(), "no diff reached a model");
    }
}

#[tokio::test]
async fn an_ignore_or_order_file_outside_the_roots_is_never_read() {
    let c = case();
    repo_with_changes(&c.root);
    std::fs::write(c.root.join("z.txt"), "z\n").unwrap();
    git(&c.root, &["add", "z.txt"]);
    git(&c.root, &["commit", "-q", "-m", "z", "--", "z.txt"]);
    std::fs::write(c.root.join("z.txt"), "z\nchanged\n").unwrap();
    std::fs::write(c.root.join("secret-guess"), "").unwrap();
    // Outside the roots: whether `secret-guess` is listed, or z.txt comes first, would tell what these files hold.
    let dir = c.marker.parent().unwrap();
    let (excludes, order) = (dir.join("excludes"), dir.join("order"));
    std::fs::write(&excludes, "secret-*\n").unwrap();
    std::fs::write(&order, "z.txt\na.txt\n").unwrap();
    git(&c.root, &["config", "core.excludesFile", excludes.to_str().unwrap()]);
    git(&c.root, &["config", "diff.orderFile", order.to_str().unwrap()]);

    let (reply, sent) = precommit_with(&c.root, &c.root, &[], json!({"include_staged": false})).await;
    assert_eq!(structured(&reply)["status"], "complete", "{reply}");
    assert!(
        reply.to_string().contains("secret-guess"),
        "listed as untracked: {reply}"
    );
    let text = last_text(&sent[0]);
    let (a, z) = (
        text.find("diff --git a/a.txt").unwrap(),
        text.find("diff --git a/z.txt").unwrap(),
    );
    assert!(a < z, "git's own order, not the outside file's: {text}");
}

#[tokio::test]
async fn compare_to_is_resolved_to_a_commit_never_read_as_a_path() {
    let c = case();
    repo_with_changes(&c.root);
    let outside = c.marker.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "TOPSECRET\n").unwrap();
    // `git diff /outside --` switches to --no-index (an older git compared it with a file named `--`).
    std::fs::write(c.root.join("--"), "decoy\n").unwrap();
    for r in [outside.to_str().unwrap(), "../outside.txt", "HEAD..HEAD~1"] {
        let (reply, sent) = precommit_with(&c.root, &c.root, &[], json!({"compare_to": r})).await;
        assert!(sent.iter().all(|s| !last_text(s).contains("TOPSECRET")), "{r}");
        let text = error_text(&reply);
        assert!(text.contains("names no commit"), "{r}: {text}");
    }
    // A ref still works, and is named as given.
    let (reply, sent) = precommit_with(&c.root, &c.root, &[], json!({"compare_to": "HEAD~0"})).await;
    assert!(last_text(&sent[0]).contains("## changes against HEAD~0"), "{reply}");
    diff_reached_the_expert(&reply, &sent);
}

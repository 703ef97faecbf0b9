//! Workflow tools end to end over stdio, the expert model answered by the upstream simulator: a full `debug` run,
//! an early `certain` ending, the safety cap, backtracking, a run continued after a restart (and by `chat`),
//! file allow-list refusals (traversal, symlink escape, oversize), validation errors naming the field, `precommit`
//! on a temporary git repository, `consensus` with a failing model, `planner` branches, and a 2-step run of each
//! other workflow tool.

use std::path::Path;

use serde_json::{Value, json};

use crate::chat::{Raw, error_text, exai, sim, structured};

/// A step's arguments; `extra` is merged in.
pub(crate) fn step(n: u32, total: u32, next: bool, findings: &str, extra: Value) -> Value {
    let mut v = json!({
        "step": format!("step {n}"),
        "step_number": n,
        "total_steps": total,
        "next_step_required": next,
        "findings": findings,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// The text of the last message sent upstream in `req`.
pub(crate) fn last_text(req: &exai_sim::Recorded) -> String {
    match &req.messages().last().unwrap()["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        other => other.to_string(),
    }
}

fn id_of(reply: &Value) -> String {
    structured(reply)["continuation_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_three_step_debug_run_records_steps_then_asks_the_expert_with_findings_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache.rs");
    std::fs::write(&file, "fn evict() { /* never called */ }\n").unwrap();
    let path = file.to_str().unwrap();
    let root = dir.path().to_str().unwrap();
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_ALLOWED_ROOTS", root)]).await;

    let (_, r1) = raw
        .call(
            1,
            "debug",
            step(1, 3, true, "memory grows on every request", json!({})),
            false,
        )
        .await;
    let s1 = structured(&r1);
    assert_eq!(s1["status"], "in_progress", "{s1}");
    let guidance = s1["guidance"].as_str().unwrap();
    assert!(
        guidance.contains("step 2") && guidance.contains("No hypothesis yet"),
        "{guidance}"
    );
    let id = id_of(&r1);

    let extra = json!({"continuation_id": id, "relevant_files": [path], "hypothesis": "evict is never called",
        "confidence": "medium", "files_checked": [path]});
    let (_, r2) = raw
        .call(
            2,
            "debug",
            step(2, 3, true, "the cache has no eviction", extra.clone()),
            false,
        )
        .await;
    assert_eq!(structured(&r2)["steps_recorded"], 2);
    assert!(sim.chat_requests().is_empty(), "intermediate steps call no model");

    let mut last = extra;
    last["confidence"] = json!("high");
    last["issues_found"] = json!([{"severity": "high", "description": "unbounded cache", "location": "cache.rs:1"}]);
    let (progress, r3) = raw
        .call(3, "debug", step(3, 3, false, "evict() has no caller", last), true)
        .await;
    let s3 = structured(&r3);
    assert_eq!(s3["status"], "complete", "{s3}");
    assert_eq!(s3["continuation_id"], id.as_str());
    assert_eq!(s3["expert_analysis"]["provider"], "sim");
    assert_eq!(s3["findings"].as_array().unwrap().len(), 3);
    assert_eq!(s3["issues_by_severity"][0]["severity"], "high");
    assert_eq!(s3["files_sent"], json!([path]));
    assert!(!s3["next_actions"].as_array().unwrap().is_empty());
    assert!(!progress.is_empty(), "the expert's answer streams as progress");

    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 1, "exactly one expert call, on the last step");
    let sent = last_text(&reqs[0]);
    for needle in [
        "memory grows on every request",
        "the cache has no eviction",
        "evict() has no caller",
        "evict is never called",
        "[high] unbounded cache",
        "fn evict() { /* never called */ }",
        path,
    ] {
        assert!(sent.contains(needle), "expert request lacks {needle:?}:\n{sent}");
    }
    assert_eq!(s3["expert_analysis"]["content"], format!("sim: {sent}"));
}

#[tokio::test]
async fn certain_confidence_ends_the_run_without_an_expert_call() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[]).await;
    let (_, r1) = raw
        .call(1, "codereview", step(1, 4, true, "read it", json!({})), false)
        .await;
    let extra = json!({"continuation_id": id_of(&r1), "confidence": "certain",
        "issues_found": [{"severity": "low", "description": "typo in a comment"}]});
    let (_, r2) = raw
        .call(2, "codereview", step(2, 4, true, "only a typo", extra), false)
        .await;
    let s = structured(&r2);
    assert_eq!(
        (s["status"].as_str(), s["next_step_required"].as_bool()),
        (Some("complete"), Some(false))
    );
    assert_eq!(s["expert_skipped"], "confidence is certain");
    assert!(s.get("expert_analysis").is_none(), "{s}");
    assert!(sim.chat_requests().is_empty(), "no expert call when certain");
}

#[tokio::test]
async fn the_safety_cap_ends_a_runaway_loop_with_a_clear_message() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_WORKFLOW_MAX_STEPS", "3"), ("EXAI_TOOL_PROFILE", "full")]).await;
    let no_expert = json!({"use_assistant_model": false});
    let (_, r1) = raw
        .call(1, "analyze", step(1, 10, true, "a", no_expert.clone()), false)
        .await;
    let id = id_of(&r1);
    let mut extra = no_expert;
    extra["continuation_id"] = json!(id);
    let (_, r2) = raw
        .call(2, "analyze", step(2, 10, true, "b", extra.clone()), false)
        .await;
    assert_eq!(structured(&r2)["status"], "in_progress");
    let (_, r3) = raw.call(3, "analyze", step(3, 10, true, "c", extra), false).await;
    let s = structured(&r3);
    assert_eq!(s["status"], "step_cap_reached", "{s}");
    assert_eq!(s["next_step_required"], false);
    let note = s["notes"][0].as_str().unwrap();
    assert!(
        note.contains("safety cap reached") && note.contains("EXAI_WORKFLOW_MAX_STEPS = 3"),
        "{note}"
    );
    let text = r3["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("stopped by the safety cap"), "{text}");
    assert!(sim.chat_requests().is_empty());
}

#[tokio::test]
async fn backtracking_discards_later_steps_and_the_expert_never_sees_them() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[]).await;
    let (_, r1) = raw
        .call(1, "thinkdeep", step(1, 5, true, "kept finding", json!({})), false)
        .await;
    let id = id_of(&r1);
    let cont = json!({"continuation_id": id});
    raw.call(2, "thinkdeep", step(2, 5, true, "wrong turn A", cont.clone()), false)
        .await;
    raw.call(3, "thinkdeep", step(3, 5, true, "wrong turn B", cont.clone()), false)
        .await;
    let mut back = cont.clone();
    back["backtrack_from_step"] = json!(2);
    let (_, r4) = raw
        .call(4, "thinkdeep", step(2, 5, true, "better path", back), false)
        .await;
    let s = structured(&r4);
    assert_eq!(s["steps_recorded"], 2, "{s}");
    assert!(
        s["notes"][0].as_str().unwrap().contains("discarded step(s) 2, 3"),
        "{s}"
    );

    let mut bad = cont.clone();
    bad["backtrack_from_step"] = json!(3);
    let (_, err) = raw.call(5, "thinkdeep", step(3, 5, true, "x", bad), false).await;
    assert!(error_text(&err).contains("backtrack_from_step (3) names no recorded step (recorded steps: 1, 2)"));

    let (_, done) = raw
        .call(6, "thinkdeep", step(3, 3, false, "conclusion", cont), false)
        .await;
    assert_eq!(structured(&done)["status"], "complete");
    let sent = last_text(&sim.chat_requests()[0]);
    assert!(
        sent.contains("kept finding") && sent.contains("better path") && sent.contains("conclusion"),
        "{sent}"
    );
    assert!(
        !sent.contains("wrong turn"),
        "discarded steps must not reach the expert: {sent}"
    );
}

#[tokio::test]
async fn a_workflow_survives_a_restart_and_chat_can_continue_it() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let sim = sim().await;
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_TOOL_PROFILE", "full"),
    ];
    let mut first = Raw::start(&env, &["--data-dir", data_dir]).await;
    let (_, r1) = first
        .call(1, "planner", step(1, 3, true, "phase one: schema", json!({})), false)
        .await;
    let id = id_of(&r1);
    let cont = json!({"continuation_id": id});
    first
        .call(
            2,
            "planner",
            step(2, 3, true, "phase two: backfill", cont.clone()),
            false,
        )
        .await;
    first.child.kill().await.unwrap();
    drop(first);

    let mut second = Raw::start(&env, &["--data-dir", data_dir]).await;
    let (_, r3) = second
        .call(3, "planner", step(3, 3, false, "phase three: cut over", cont), false)
        .await;
    let s = structured(&r3);
    assert_eq!(
        (s["status"].as_str(), s["steps_recorded"].as_u64()),
        (Some("complete"), Some(3)),
        "{s}"
    );
    let sent = last_text(&sim.chat_requests()[0]);
    assert!(
        sent.contains("phase one: schema") && sent.contains("phase two: backfill"),
        "{sent}"
    );

    let (_, chat) = second
        .call(
            4,
            "chat",
            json!({"prompt": "Summarise the plan.", "continuation_id": id}),
            false,
        )
        .await;
    assert_eq!(structured(&chat)["continuation_id"], id.as_str());
    let reqs = sim.chat_requests();
    let history: String = reqs[1].messages().iter().map(|m| m["content"].to_string()).collect();
    assert!(
        history.contains("phase one: schema") && history.contains("phase three: cut over"),
        "chat sees the workflow's steps: {history}"
    );
}

#[tokio::test]
async fn paths_outside_the_allowed_roots_symlink_escapes_and_oversize_files_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "password=hunter2").unwrap();
    let link = root.path().join("innocent.txt");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let big = root.path().join("big.txt");
    std::fs::write(&big, "z".repeat(2_000)).unwrap();
    let traversal = format!(
        "{}/../{}/secret.txt",
        root.path().display(),
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let sim = sim().await;
    let mut raw = exai(
        &sim,
        &[
            ("EXAI_ALLOWED_ROOTS", root.path().to_str().unwrap()),
            ("EXAI_MAX_FILE_BYTES", "1024"),
        ],
    )
    .await;
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let cases = [
        (traversal.clone(), "is outside the allowed roots"),
        (p(&link), "is outside the allowed roots"),
        (p(&secret), "is outside the allowed roots"),
        (p(&big), "is 2000 bytes; files may be at most 1024 bytes"),
    ];
    for (i, (file, expected)) in cases.iter().enumerate() {
        let args = step(1, 2, true, "f", json!({"relevant_files": [file]}));
        let (_, reply) = raw.call(10 + i as i64, "debug", args, false).await;
        let text = error_text(&reply);
        assert!(
            text.contains(expected) && text.contains(file.as_str()),
            "case {i}: {text}"
        );
    }
    // chat gets the same protection, and no refusal says what lies outside the roots.
    let (_, reply) = raw
        .call(20, "chat", json!({"prompt": "q", "files": [p(&link)]}), false)
        .await;
    let text = error_text(&reply);
    assert!(text.contains("is outside the allowed roots"), "{text}");
    assert!(
        !text.contains(outside.path().to_str().unwrap()) && !text.contains("secret.txt"),
        "{text}"
    );
    assert!(sim.chat_requests().is_empty(), "nothing refused may reach a model");
}

#[tokio::test]
async fn validation_errors_name_the_field_and_the_rule() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[]).await;
    let cases = [
        (step(0, 2, true, "f", json!({})), "step_number must be ≥ 1"),
        (
            step(3, 2, true, "f", json!({"continuation_id": "x"})),
            "total_steps (2) is smaller than step_number (3)",
        ),
        (
            step(2, 2, true, "f", json!({})),
            "continuation_id is required from step 2 on",
        ),
        (
            step(1, 2, true, "f", json!({"files_checked": ["src/lib.rs"]})),
            "files_checked must hold absolute paths",
        ),
        (
            step(1, 2, true, "f", json!({"confidence": "sure"})),
            "unknown variant `sure`",
        ),
        (
            step(1, 2, true, "f", json!({"model": "gpt-9"})),
            "unknown model `gpt-9`",
        ),
        (
            json!({"step": "s", "step_number": 1, "total_steps": 1, "next_step_required": true}),
            "missing field `findings`",
        ),
    ];
    for (i, (args, expected)) in cases.into_iter().enumerate() {
        let (_, reply) = raw.call(30 + i as i64, "debug", args, false).await;
        let text = error_text(&reply);
        assert!(text.contains(expected), "case {i}: {text}");
    }
    let (_, r1) = raw.call(40, "debug", step(1, 4, true, "f", json!({})), false).await;
    let (_, skip) = raw
        .call(
            41,
            "debug",
            step(3, 4, true, "f", json!({"continuation_id": id_of(&r1)})),
            false,
        )
        .await;
    assert!(
        error_text(&skip).contains("step_number (3) skips ahead: the last recorded step is 1; send step 2"),
        "{skip}"
    );
    assert!(sim.chat_requests().is_empty());
}

/// Runs `git args` in `dir`, panicking on failure.
pub(crate) fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn precommit_sends_the_staged_and_unstaged_diffs_to_the_expert() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    std::fs::write(repo.join("app.rs"), "fn main() {}\n").unwrap();
    std::fs::write(repo.join("lib.rs"), "pub fn old() {}\n").unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", "first"]);
    std::fs::write(repo.join("app.rs"), "fn main() { staged_change(); }\n").unwrap();
    git(repo, &["add", "app.rs"]);
    std::fs::write(repo.join("lib.rs"), "pub fn unstaged_change() {}\n").unwrap();
    let root = repo.to_str().unwrap();
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_ALLOWED_ROOTS", root), ("EXAI_TOOL_PROFILE", "full")]).await;

    let (_, r1) = raw
        .call(
            1,
            "precommit",
            step(1, 2, true, "two files changed", json!({"path": root})),
            false,
        )
        .await;
    assert_eq!(structured(&r1)["status"], "in_progress");
    assert!(
        sim.chat_requests().is_empty(),
        "no diff or model call before the final step"
    );
    let extra = json!({"path": root, "continuation_id": id_of(&r1)});
    let (_, r2) = raw
        .call(2, "precommit", step(2, 2, false, "looks intentional", extra), false)
        .await;
    let s = structured(&r2);
    assert_eq!(s["status"], "complete", "{s}");
    let notes = s["notes"].to_string();
    assert!(
        notes.contains("diff sent: staged changes") && notes.contains("diff sent: unstaged changes"),
        "{notes}"
    );
    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 1);
    let sent = last_text(&reqs[0]);
    for needle in [
        "## staged changes",
        "+fn main() { staged_change(); }",
        "## unstaged changes",
        "+pub fn unstaged_change() {}",
        "-pub fn old() {}",
        "looks intentional",
    ] {
        assert!(sent.contains(needle), "expert request lacks {needle:?}:\n{sent}");
    }
    let staged = sent.find("## staged changes").unwrap();
    let unstaged = sent.find("## unstaged changes").unwrap();
    assert!(
        sent[staged..unstaged].contains("staged_change") && !sent[staged..unstaged].contains("unstaged_change"),
        "each diff under its own heading:\n{sent}"
    );

    // A path outside the allowed roots, and a diff over the size limit, are refused.
    let outside = tempfile::tempdir().unwrap();
    let (_, err) = raw
        .call(
            3,
            "precommit",
            step(1, 1, true, "f", json!({"path": outside.path().to_str().unwrap()})),
            false,
        )
        .await;
    assert!(error_text(&err).contains("outside the allowed roots"), "{err}");
    drop(raw);
    std::fs::write(repo.join("lib.rs"), "x".repeat(4_000)).unwrap();
    let mut small = exai(
        &sim,
        &[
            ("EXAI_ALLOWED_ROOTS", root),
            ("EXAI_TOOL_PROFILE", "full"),
            ("EXAI_MAX_FILE_BYTES", "1024"),
        ],
    )
    .await;
    let (_, big) = small
        .call(4, "precommit", step(1, 1, false, "f", json!({"path": root})), false)
        .await;
    let text = error_text(&big);
    assert!(
        text.contains("unstaged changes") && text.contains("over") && text.contains("EXAI_MAX_FILE_BYTES"),
        "{text}"
    );
    assert_eq!(sim.chat_requests().len(), 1, "a refused diff reaches no model");
}

#[tokio::test]
async fn consensus_reports_a_failed_model_and_the_synthesis_names_every_position() {
    let sim = sim().await;
    sim.push_script("glm-4.5-flash", exai_sim::Script::status(500));
    let mut raw = exai(&sim, &[("EXAI_TOOL_PROFILE", "full"), ("EXAI_RETRY_MAX_ATTEMPTS", "1")]).await;
    let (_, r1) = raw
        .call(
            1,
            "consensus",
            step(1, 2, true, "Should we adopt SQLite?", json!({})),
            false,
        )
        .await;
    assert!(sim.chat_requests().is_empty());
    let models = json!([
        {"model": "glm-4.6", "stance": "for"},
        {"model": "kimi-k2-turbo-preview", "stance": "against", "stance_prompt": "Focus on operations."},
        {"model": "glm-4.5-flash", "stance": "neutral"},
    ]);
    let (_, missing) = raw
        .call(
            2,
            "consensus",
            step(2, 2, false, "f", json!({"continuation_id": id_of(&r1)})),
            false,
        )
        .await;
    assert!(
        error_text(&missing).contains("models must list at least two models"),
        "{missing}"
    );
    let extra = json!({"continuation_id": id_of(&r1), "models": models});
    let (_, r2) = raw
        .call(
            3,
            "consensus",
            step(2, 2, false, "single writer, 50 jobs/s", extra),
            false,
        )
        .await;
    let s = structured(&r2);
    assert_eq!(s["status"], "complete", "{s}");
    let positions = s["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 3, "{s}");
    assert_eq!(
        positions
            .iter()
            .map(|p| p["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["answered", "answered", "failed"]
    );
    assert!(positions[2]["error"].as_str().unwrap().contains("500"), "{s}");
    assert!(
        positions[0]["content"].as_str().unwrap().contains("single writer"),
        "{s}"
    );
    assert!(
        s["notes"]
            .to_string()
            .contains("glm-4.5-flash (stance: neutral) failed"),
        "{s}"
    );

    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 4, "three consultations and one synthesis");
    let kimi = reqs
        .iter()
        .find(|r| r.body.as_ref().unwrap()["model"] == "kimi-k2-turbo-preview")
        .unwrap();
    let system = kimi.messages()[0]["content"].to_string();
    assert!(
        system.contains("Argue against") && system.contains("Focus on operations."),
        "{system}"
    );
    let synthesis = last_text(reqs.last().unwrap());
    for needle in [
        "## glm-4.6 (stance: for)",
        "## kimi-k2-turbo-preview (stance: against)",
        "## glm-4.5-flash (stance: neutral)\nFAILED",
        "Synthesise the positions",
    ] {
        assert!(
            synthesis.contains(needle),
            "synthesis request lacks {needle:?}:\n{synthesis}"
        );
    }
    assert_eq!(s["expert_analysis"]["content"], format!("sim: {synthesis}"));
}

#[tokio::test]
async fn secaudit_testgen_refactor_docgen_and_tracer_each_complete_a_two_step_run() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_TOOL_PROFILE", "full")]).await;
    for (i, tool) in ["secaudit", "testgen", "refactor", "docgen", "tracer"]
        .iter()
        .enumerate()
    {
        let id = 10 * i as i64;
        let (_, r1) = raw
            .call(id, tool, step(1, 2, true, "first look", json!({})), false)
            .await;
        let s1 = structured(&r1);
        assert_eq!(s1["status"], "in_progress", "{tool}: {s1}");
        assert!(s1["guidance"].as_str().unwrap().contains(tool), "{tool}: {s1}");
        let cont = json!({"continuation_id": id_of(&r1)});
        let finding = format!("{tool} finding");
        let (_, r2) = raw.call(id + 1, tool, step(2, 2, false, &finding, cont), false).await;
        let s2 = structured(&r2);
        assert_eq!(
            (s2["status"].as_str(), s2["tool"].as_str()),
            (Some("complete"), Some(*tool)),
            "{s2}"
        );
        assert_eq!(s2["expert_analysis"]["provider"], "sim", "{tool}");
        let reqs = sim.chat_requests();
        assert_eq!(reqs.len(), i + 1, "{tool}: one expert call, on the last step");
        assert!(last_text(reqs.last().unwrap()).contains(&finding), "{tool}");
    }
}

#[tokio::test]
async fn planner_branches_are_listed_while_planning_and_shown_apart_to_the_expert() {
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_TOOL_PROFILE", "full")]).await;
    let (_, r1) = raw
        .call(
            1,
            "planner",
            step(1, 3, true, "phase one: add the column", json!({})),
            false,
        )
        .await;
    let id = id_of(&r1);
    let cont = json!({"continuation_id": id});
    let (_, r2) = raw
        .call(
            2,
            "planner",
            step(2, 3, true, "phase two: backfill in batches", cont.clone()),
            false,
        )
        .await;
    assert!(
        structured(&r2).get("branches").is_none(),
        "no branches yet: {}",
        structured(&r2)
    );

    // Validation: the branch fields name the field and the rule.
    let cases = [
        (
            json!({"branch_from_step": 1}),
            "branch_id is required with branch_from_step",
        ),
        (
            json!({"branch_from_step": 7, "branch_id": "alt"}),
            "branch_from_step (7) names no recorded step (recorded steps: 1, 2)",
        ),
        (
            json!({"branch_from_step": 3, "branch_id": "alt"}),
            "branch_from_step (3) names no recorded step",
        ),
        (
            json!({"branch_id": "alt"}),
            "branch_id `alt` names no branch (branches: none)",
        ),
        (
            json!({"branch_from_step": 1, "branch_id": "main"}),
            "branch_id `main` is reserved for the main line",
        ),
        (
            json!({"branch_from_step": 1, "branch_id": "a b"}),
            "branch_id must be a short name",
        ),
        (json!({"branch": "alt"}), "unknown field `branch`"),
    ];
    for (i, (fields, expected)) in cases.into_iter().enumerate() {
        let mut extra = cont.clone();
        for (k, v) in fields.as_object().unwrap() {
            extra[k] = v.clone();
        }
        let (_, reply) = raw
            .call(10 + i as i64, "planner", step(3, 3, true, "x", extra), false)
            .await;
        let text = error_text(&reply);
        assert!(text.contains(expected), "case {i}: {text}");
    }

    let mut branch = cont.clone();
    branch["branch_from_step"] = json!(1);
    branch["branch_id"] = json!("alt");
    let (_, r3) = raw
        .call(
            3,
            "planner",
            step(3, 4, true, "alternative: dual-write then switch", branch.clone()),
            false,
        )
        .await;
    let s3 = structured(&r3);
    assert_eq!(s3["status"], "in_progress", "{s3}");
    assert_eq!(
        s3["branches"],
        json!([{"branch_id": "main", "steps": [1, 2]}, {"branch_id": "alt", "branch_from_step": 1, "steps": [3]}]),
        "{s3}"
    );
    assert!(s3["guidance"].as_str().unwrap().contains("on branch `alt`"), "{s3}");
    let text = r3["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("Branches: main: steps 1, 2; alt (from step 1): step 3"),
        "{text}"
    );
    let (_, dup) = raw.call(4, "planner", step(4, 4, true, "again", branch), false).await;
    assert!(
        error_text(&dup).contains("branch_id `alt` is already a branch (alt (from step 1): step 3)"),
        "{dup}"
    );

    let mut last = cont.clone();
    last["branch_id"] = json!("alt");
    let (_, r4) = raw
        .call(
            5,
            "planner",
            step(4, 4, false, "alternative: drop the old column", last),
            false,
        )
        .await;
    let s4 = structured(&r4);
    assert_eq!(s4["status"], "complete", "{s4}");
    assert_eq!(s4["branches"][1]["steps"], json!([3, 4]), "{s4}");
    assert_eq!(s4["findings"][2]["branch_id"], "alt", "{s4}");
    assert!(s4["findings"][0].get("branch_id").is_none(), "{s4}");

    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 1, "one expert call, on the last step");
    let sent = last_text(&reqs[0]);
    let main = sent
        .find("## Main line (steps 1, 2)")
        .unwrap_or_else(|| panic!("{sent}"));
    let alt = sent
        .find("## Branch `alt` (from step 1; steps 3, 4)")
        .unwrap_or_else(|| panic!("{sent}"));
    assert!(main < alt, "{sent}");
    let (main_part, alt_part) = sent.split_at(alt);
    for needle in ["phase one: add the column", "phase two: backfill in batches"] {
        assert!(
            main_part[main..].contains(needle),
            "main line lacks {needle:?}:\n{sent}"
        );
        assert!(!alt_part.contains(needle), "{sent}");
    }
    for needle in [
        "alternative: dual-write then switch",
        "alternative: drop the old column",
    ] {
        assert!(alt_part.contains(needle), "branch lacks {needle:?}:\n{sent}");
        assert!(!main_part.contains(needle), "{sent}");
    }
    assert!(sent.contains("compare the main line with each branch"), "{sent}");
}

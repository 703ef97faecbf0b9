//! The command line: `--version`, `config check`, `tools`, and start-up refusing bad configuration.

use crate::support::{STANDARD_TOOLS, std_command};

fn run(envs: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = std_command(envs).args(args).output().expect("run exai");
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn version_flag_prints_the_crate_version() {
    let (code, out, _) = run(&[], &["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("exai {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn config_check_prints_sources_masks_secrets_and_exits_zero_when_valid() {
    let (code, out, _) = run(
        &[("GLM_API_KEY", "sk-secret-value"), ("EXAI_HTTP_PORT", "9999")],
        &["config", "check"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration is valid"), "{out}");
    assert!(!out.contains("sk-secret-value"), "secret leaked: {out}");
    let port = out.lines().find(|l| l.starts_with("http.port")).unwrap();
    assert!(port.contains("9999") && port.contains("env EXAI_HTTP_PORT"), "{port}");
    let key = out.lines().find(|l| l.starts_with("providers.glm.api_key")).unwrap();
    assert!(key.contains("****"), "{key}");
}

#[test]
fn config_check_reports_every_problem_and_exits_two() {
    let envs = [
        ("EXAI_HTTP_PORT", "http"),
        ("EXAI_TOOL_PROFILE", "huge"),
        ("KIMI_API_KEY", "kimi-secret"),
    ];
    let (code, out, _) = run(&envs, &["config", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("invalid configuration (2 problems)"), "{out}");
    assert!(
        out.contains("EXAI_HTTP_PORT (http.port, from env EXAI_HTTP_PORT) = \"http\""),
        "{out}"
    );
    assert!(
        out.contains("EXAI_TOOL_PROFILE") && out.contains("`lean`, `standard` or `full`"),
        "{out}"
    );
    assert!(!out.contains("kimi-secret"), "{out}");
}

#[test]
fn config_check_refuses_durations_past_ten_years_by_name_instead_of_panicking() {
    let envs = [
        ("EXAI_REDIS_TIMEOUT_MS", "18446744073709551615"),
        ("EXAI_WS_IDLE_TIMEOUT_SECS", "18446744073709551615"),
    ];
    let (code, out, err) = run(&envs, &["config", "check"]);
    assert_eq!(code, 2, "{out}{err}");
    for key in ["EXAI_REDIS_TIMEOUT_MS", "EXAI_WS_IDLE_TIMEOUT_SECS"] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("  - {key} ")))
            .unwrap_or_default();
        assert!(line.contains("at most ten years"), "{key}: {out}{err}");
    }
}

#[test]
fn serving_refuses_unknown_tool_names_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, _, err) = run(
        &[("EXAI_DISABLED_TOOLS", "status,telepathy")],
        &["stdio", "--data-dir", data],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("EXAI_DISABLED_TOOLS") && err.contains("telepathy"),
        "{err}"
    );
    assert!(
        err.contains(
            "known tools: version, status, health, listmodels, chat, challenge, thinkdeep, debug, analyze, codereview, \
             planner, precommit, secaudit, testgen, refactor, docgen, tracer, consensus"
        ),
        "{err}"
    );
}

#[test]
fn unknown_key_in_config_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exai.toml");
    std::fs::write(&file, "[http]\nport = 8081\nhots = \"x\"\n").unwrap();
    let (code, out, _) = run(&[], &["--config", file.to_str().unwrap(), "config", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("http.hots") && out.contains("unknown key"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("http.port") && l.contains("8081") && l.contains("exai.toml")),
        "{out}"
    );
}

#[test]
fn tools_lists_schemas_and_profiles_change_the_token_estimate() {
    let (code, out, _) = run(&[], &["tools", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, STANDARD_TOOLS);
    assert!(
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["inputSchema"]["type"] == "object")
    );

    let total = |profile: &str| -> (usize, usize) {
        let (code, out, _) = run(&[("EXAI_TOOL_PROFILE", profile)], &["tools", "--tokens"]);
        assert_eq!(code, 0, "{out}");
        let line = out.lines().find(|l| l.starts_with("total")).unwrap();
        let tokens = line
            .split('~')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let tools = line
            .split(" for ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        (tokens, tools)
    };
    let (lean_tokens, lean_tools) = total("lean");
    let (std_tokens, std_tools) = total("standard");
    assert!(
        lean_tools < std_tools && lean_tokens < std_tokens,
        "lean {lean_tokens}/{lean_tools} std {std_tokens}/{std_tools}"
    );
    assert!(
        lean_tokens > 100,
        "an estimate of {lean_tokens} tokens is implausibly small"
    );
}

#[test]
fn stdio_keeps_stdout_for_protocol_and_logs_json_to_stderr() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std_command(&[
        ("EXAI_LOG_FORMAT", "json"),
        ("EXAI_LOG_LEVEL", "info"),
        ("GLM_API_KEY", "sk-hidden"),
    ])
    .args(["stdio", "--data-dir", dir.path().to_str().unwrap()])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    writeln!(child.stdin.as_mut().unwrap(), "{init}").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "stdout carries only protocol messages: {stdout}");
    assert_eq!(
        lines[0]["result"]["protocolVersion"], "2025-06-18",
        "2025-06-18 is still served"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(
        stderr.contains("exai starting") && !stderr.contains("sk-hidden"),
        "{stderr}"
    );
}

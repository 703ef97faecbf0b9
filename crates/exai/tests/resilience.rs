//! The resilience layer end to end, against the simulator over real HTTP: `Retry-After` honoured, a burst of
//! 5xx opening a circuit that then fails fast and closes after a successful probe, labelled fallbacks.

use std::time::{Duration, Instant};

use exai_sim::Script;
use serde_json::json;

use crate::chat::{error_text, exai, sim, structured};

#[tokio::test]
async fn retry_after_is_honoured_and_the_retry_succeeds() {
    let sim = sim().await;
    sim.push_script("glm-4.5-flash", Script::rate_limited(2));
    let mut raw = exai(&sim, &[]).await;
    let started = Instant::now();
    let (progress, reply) = raw
        .call(1, "chat", json!({"prompt": "q", "model": "flash"}), true)
        .await;
    assert_eq!(structured(&reply)["content"], "sim: q");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the retry waited for Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!(sim.chat_requests().len(), 2);
    assert!(
        progress
            .iter()
            .any(|m| m.contains("HTTP 429") && m.contains("retrying in")),
        "{progress:?}"
    );
}

#[tokio::test]
async fn a_burst_of_5xx_opens_the_circuit_which_fails_fast_then_closes_after_a_probe() {
    let sim = sim().await;
    let env = [
        ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
        ("EXAI_BREAKER_FAILURES", "3"),
        ("EXAI_BREAKER_COOLDOWN_SECS", "1"),
        ("EXAI_BREAKER_CLOSE_AFTER", "1"),
    ];
    let mut raw = exai(&sim, &env).await;
    for i in 0..3 {
        sim.push_script("glm-4.6", Script::status(503));
        let (_, reply) = raw.call(i, "chat", json!({"prompt": "q", "model": "glm"}), false).await;
        assert!(error_text(&reply).contains("HTTP 503"));
    }
    let started = Instant::now();
    let (_, reply) = raw
        .call(10, "chat", json!({"prompt": "q", "model": "glm"}), false)
        .await;
    let text = error_text(&reply);
    assert!(text.contains("circuit open for glm/glm-4.6"), "{text}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "an open circuit fails fast"
    );
    assert_eq!(
        sim.chat_requests().len(),
        3,
        "no request reached the upstream while open"
    );

    // Other models are unaffected.
    let (_, other) = raw
        .call(11, "chat", json!({"prompt": "q", "model": "flash"}), false)
        .await;
    assert_eq!(structured(&other)["model"], "glm-4.5-flash");

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, probe) = raw
        .call(12, "chat", json!({"prompt": "back?", "model": "glm"}), false)
        .await;
    assert_eq!(
        structured(&probe)["content"],
        "sim: back?",
        "the half-open probe goes through"
    );
    let (_, closed) = raw
        .call(13, "chat", json!({"prompt": "again", "model": "glm"}), false)
        .await;
    assert_eq!(structured(&closed)["content"], "sim: again");
}

#[tokio::test]
async fn a_fallback_answer_names_the_model_asked_for_and_why() {
    let sim = sim().await;
    let env = [
        ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
        ("EXAI_FALLBACK_CHAINS", "glm-4.5-flash>kimi-k2-turbo-preview"),
    ];
    let mut raw = exai(&sim, &env).await;
    sim.push_script("glm-4.5-flash", Script::status(500));
    let (_, reply) = raw
        .call(1, "chat", json!({"prompt": "q", "model": "flash"}), false)
        .await;
    let s = structured(&reply);
    assert_eq!(s["model"], "kimi-k2-turbo-preview");
    assert_eq!(s["model_requested"], "glm-4.5-flash");
    assert!(s["fallback_reason"].as_str().unwrap().contains("HTTP 500"), "{s}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("FALLBACK: glm-4.5-flash was asked for"), "{text}");
    let models: Vec<String> = sim
        .chat_requests()
        .iter()
        .map(|r| r.body.as_ref().unwrap()["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["glm-4.5-flash", "kimi-k2-turbo-preview"]);

    // Without a failure there is no fallback and no reason.
    let (_, plain) = raw
        .call(2, "chat", json!({"prompt": "q", "model": "flash"}), false)
        .await;
    assert!(structured(&plain).get("fallback_reason").is_none());
}

#[tokio::test]
async fn admin_reset_closes_open_circuits_and_needs_the_token() {
    let sim = sim().await;
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("EXAI_HTTP_TOKEN", "admin-secret"),
        ("EXAI_RETRY_MAX_ATTEMPTS", "1"),
        ("EXAI_BREAKER_FAILURES", "2"),
        ("EXAI_BREAKER_COOLDOWN_SECS", "600"),
    ];
    let daemon = crate::support::Daemon::start(&env, &[]).await;
    let call = |id: i64| {
        let args = json!({"prompt": "q", "model": "glm"});
        crate::support::stateless_call(&reqwest::Client::new(), &daemon.url("/mcp"), id, "chat", args, "t")
            .bearer_auth("admin-secret")
            .send()
    };
    for id in 0..2 {
        sim.push_script("glm-4.6", Script::status(503));
        call(id).await.unwrap();
    }
    let tripped = call(3).await.unwrap().text().await.unwrap();
    assert!(tripped.contains("circuit open for glm/glm-4.6"), "{tripped}");

    let unauthorized = reqwest::Client::new()
        .post(daemon.url("/admin/reset-circuits"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let out = crate::support::std_command(&[("EXAI_HTTP_TOKEN", "admin-secret")])
        .args(["admin", "reset-circuits", "--url", &daemon.url("")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["reset"], 1);
    assert_eq!(v["circuits"][0]["state"], "closed");

    let after = call(4).await.unwrap().text().await.unwrap();
    assert!(after.contains("sim: q"), "{after}");
}

//! Three `exai serve` replicas sharing the machine's PostgreSQL (`EXAI_TEST_DATABASE_URL`, confined to a schema
//! of this test's own, dropped at the end; in CI a missing database fails the run) and one upstream simulator:
//! a conversation started on replica 1 is continued on replica 2, and a workflow started on replica 2 finishes on
//! replica 3. Nothing but the database connects the replicas: each has its own data directory (its own SQLite
//! file, unused), its own process memory, and its own MCP client.

use exai_core::store::Store;
use exai_sim::SimHandle;
use rmcp::ClientLifecycleMode;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use serde_json::{Value, json};

use crate::chat::sim;
use crate::http::rmcp_client;
use crate::support::Daemon;

type Client = rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>;

/// The test database URL; `None` (skip) only outside CI.
pub(crate) fn database_url() -> Option<String> {
    match std::env::var("EXAI_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_DATABASE_URL must be set in CI"),
        Err(_) => {
            eprintln!("EXAI_TEST_DATABASE_URL not set: skipping the replicas test (scripts/test sets it)");
            None
        }
    }
}

/// Drops the test's schema when the test ends, passed or failed (on a thread of its own: a panicking test's
/// runtime cannot be used any more).
pub(crate) struct DropSchema {
    pub(crate) url: String,
    pub(crate) schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let store = exai_store::PgStore::connect_in_schema(&url, None).await?;
                store.drop_schema(&schema).await?;
                store.close().await;
                Ok::<_, exai_core::store::StoreError>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {}", self.schema);
        }
    }
}

/// A fresh PostgreSQL schema at `url` for one test (created and migrated now, dropped when the returned guard
/// drops): the URL that confines a replica to it, and the guard.
pub(crate) async fn fresh_schema(url: &str, tag: &str) -> (String, DropSchema) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("exai_{tag}_{}_{nanos}", std::process::id());
    let store = exai_store::PgStore::connect_in_schema(url, Some(&schema))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required: {e}"));
    store.close().await;
    let scoped = in_schema(url, &schema);
    let cleanup = DropSchema {
        url: url.to_owned(),
        schema,
    };
    (scoped, cleanup)
}

/// `url` confined to `schema` (its `search_path`).
pub(crate) fn in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A replica on `sim` whose store is `database_url`.
pub(crate) async fn replica(sim: &SimHandle, database_url: &str) -> Daemon {
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_DATABASE_URL", database_url),
    ];
    Daemon::start(&env, &[]).await
}

/// A stateless 2026-07-28 client of `daemon`.
async fn client(daemon: &Daemon) -> Client {
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    rmcp_client(daemon, ProtocolVersion::V_2026_07_28, lifecycle, None)
        .await
        .unwrap()
}

/// A 2025-11-25 client with a session on `daemon`.
async fn session_client(daemon: &Daemon) -> Client {
    rmcp_client(
        daemon,
        ProtocolVersion::V_2025_11_25,
        ClientLifecycleMode::Initialize,
        None,
    )
    .await
    .unwrap()
}

/// Calls `tool` and returns its structured result, failing with the tool's error text if it reported one.
async fn call(client: &Client, tool: &'static str, args: Value) -> Value {
    let args = args.as_object().cloned().unwrap();
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert_ne!(result.is_error, Some(true), "{tool} failed: {:?}", result.content);
    result.structured_content.expect("structured content")
}

/// Every message's text as sent upstream, joined.
fn sent_text(req: &exai_sim::Recorded) -> String {
    req.messages()
        .iter()
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_chat_started_on_one_replica_continues_on_another_and_a_workflow_finishes_on_a_third() {
    let Some(url) = database_url() else { return };
    let (scoped, _cleanup) = fresh_schema(&url, "replicas").await;
    let store = exai_store::PgStore::connect(&scoped)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required: {e}"));

    let sim = sim().await;
    let replicas = [
        replica(&sim, &scoped).await,
        replica(&sim, &scoped).await,
        replica(&sim, &scoped).await,
    ];
    assert!(
        replicas[0].addr != replicas[1].addr && replicas[1].addr != replicas[2].addr,
        "three separate processes"
    );

    // A conversation: turn 1 on replica 1 (a 2025-11-25 session there), turn 2 on replica 2 (stateless).
    let one = session_client(&replicas[0]).await;
    let first = call(
        &one,
        "chat",
        json!({"prompt": "Remember the lighthouse is painted teal.", "model": "glm"}),
    )
    .await;
    assert_eq!(first["content"], "sim: Remember the lighthouse is painted teal.");
    let thread = first["continuation_id"].as_str().unwrap().to_owned();

    let two = client(&replicas[1]).await;
    let second = call(
        &two,
        "chat",
        json!({"prompt": "What colour is the lighthouse?", "model": "kimi", "continuation_id": thread}),
    )
    .await;
    assert_eq!(second["continuation_id"], thread.as_str());
    assert_eq!(second["content"], "sim: What colour is the lighthouse?");
    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 2);
    let history = sent_text(&reqs[1]);
    for needle in [
        "Remember the lighthouse is painted teal.",
        "sim: Remember the lighthouse is painted teal.",
        "What colour is the lighthouse?",
    ] {
        assert!(
            history.contains(needle),
            "replica 2's upstream request lacks {needle:?} from replica 1's turn:\n{history}"
        );
    }
    let stored = store
        .conversation(&thread)
        .await
        .unwrap()
        .expect("the thread lives in PostgreSQL");
    assert_eq!(
        stored.turns.len(),
        4,
        "both replicas wrote their turns to the shared schema"
    );

    // A workflow: step 1 on replica 2 (no model call), the final step on replica 3 (the expert call).
    let step1 = call(
        &two,
        "debug",
        json!({"step": "step 1", "step_number": 1, "total_steps": 2, "next_step_required": true,
            "findings": "the pool leaks a connection on every timeout"}),
    )
    .await;
    assert_eq!(step1["status"], "in_progress", "{step1}");
    let run = step1["continuation_id"].as_str().unwrap().to_owned();
    assert_eq!(sim.chat_requests().len(), 2, "an intermediate step calls no model");

    let three = client(&replicas[2]).await;
    let step2 = call(
        &three,
        "debug",
        json!({"step": "step 2", "step_number": 2, "total_steps": 2, "next_step_required": false,
            "findings": "release() is skipped on the timeout path", "hypothesis": "timeouts skip release()",
            "confidence": "high", "continuation_id": run}),
    )
    .await;
    assert_eq!(step2["status"], "complete", "{step2}");
    assert_eq!(step2["continuation_id"], run.as_str());
    assert_eq!(step2["steps_recorded"], 2, "{step2}");
    assert_eq!(step2["expert_analysis"]["provider"], "sim", "{step2}");
    let reqs = sim.chat_requests();
    assert_eq!(reqs.len(), 3, "exactly one expert call, from replica 3");
    let expert = sent_text(&reqs[2]);
    for needle in [
        "the pool leaks a connection on every timeout",
        "release() is skipped on the timeout path",
        "timeouts skip release()",
    ] {
        assert!(
            expert.contains(needle),
            "replica 3's expert request lacks {needle:?} (step 1 was on replica 2):\n{expert}"
        );
    }

    for c in [one, two, three] {
        let _ = c.cancel().await;
    }
    store.close().await;
    drop(replicas);
}

/// A call's text, whether the tool reported an error (`isError`) or the request failed as a whole.
async fn outcome(client: &Client, tool: &'static str, args: Value) -> Result<Value, String> {
    let args = args.as_object().cloned().unwrap();
    match client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
    {
        Ok(result) if result.is_error != Some(true) => Ok(result.structured_content.unwrap_or_default()),
        Ok(result) => Err(format!("{:?}", result.content)),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn postgres_lost_mid_run_gives_clear_errors_in_time_and_the_replica_recovers_without_a_restart() {
    let Some(url) = database_url() else { return };
    let (_, cleanup) = fresh_schema(&url, "pg_outage").await;
    // The replica reaches PostgreSQL through a relay the test can cut, as a network partition or a database restart
    // would: connections drop and new ones are refused.
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    let target = parsed.port().unwrap_or(5432);
    let relay = crate::shim::Relay::start(target).await;
    parsed.set_host(Some("127.0.0.1")).unwrap();
    parsed.set_port(Some(relay.port)).unwrap();
    let scoped = in_schema(parsed.as_str(), &cleanup.schema);

    let sim = sim().await;
    let (glm, kimi) = (sim.base_url_glm(), sim.base_url_v1());
    let env = [
        ("GLM_BASE_URL", glm.as_str()),
        ("KIMI_BASE_URL", kimi.as_str()),
        ("GLM_API_KEY", "k"),
        ("KIMI_API_KEY", "k"),
        ("EXAI_DATABASE_URL", scoped.as_str()),
        ("EXAI_DB_TIMEOUT_SECS", "2"),
    ];
    let daemon = Daemon::start(&env, &[]).await;
    let replica = client(&daemon).await;
    let first = call(
        &replica,
        "chat",
        json!({"prompt": "The key is under the mat.", "model": "glm"}),
    )
    .await;
    let thread = first["continuation_id"].as_str().unwrap().to_owned();

    relay.cut();
    let started = std::time::Instant::now();
    let lost = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        outcome(
            &replica,
            "chat",
            json!({"prompt": "Where is the key?", "model": "glm", "continuation_id": thread}),
        ),
    )
    .await
    .expect("a call that needs the database ends within its deadline while the database is gone");
    let message = lost.expect_err("a continued thread cannot be read without the database");
    assert!(
        message.to_lowercase().contains("database"),
        "the error names the database: {message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the error came within a few database timeouts, long before the call's deadline ({:?})",
        started.elapsed()
    );
    // Tools that need no database keep answering.
    let version = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        outcome(&replica, "version", json!({})),
    )
    .await
    .expect("version answers during the outage");
    assert!(version.is_ok(), "{version:?}");

    relay.reopen();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let recovered = loop {
        let attempt = outcome(
            &replica,
            "chat",
            json!({"prompt": "Where is the key?", "model": "glm", "continuation_id": thread}),
        )
        .await;
        match attempt {
            Ok(value) => break value,
            Err(e) if std::time::Instant::now() > deadline => panic!("no recovery within 20 s: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    };
    assert_eq!(recovered["continuation_id"], thread.as_str());
    let history = sent_text(sim.chat_requests().last().unwrap());
    assert!(
        history.contains("The key is under the mat."),
        "the thread read after recovery carries turn 1:\n{history}"
    );
}

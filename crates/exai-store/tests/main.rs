//! The store contract, run against real SQLite in a temporary directory and the machine's real PostgreSQL
//! (`EXAI_TEST_DATABASE_URL`; in CI a missing or unreachable database fails the run instead of skipping).

use exai_core::provider::Role;
use exai_core::store::{AlertRecord, Execution, Observation, Store, ToolBaseline, Turn};
use exai_store::{PgStore, SqliteStore};

fn turn(role: Role, content: &str, at: i64) -> Turn {
    Turn {
        role,
        content: content.to_owned(),
        files: if role == Role::User {
            vec![format!("/src/{content}.rs")]
        } else {
            Vec::new()
        },
        tool: "chat".to_owned(),
        provider: (role == Role::Assistant).then(|| "glm".to_owned()),
        model: (role == Role::Assistant).then(|| "glm-4.6".to_owned()),
        created_at_ms: at,
    }
}

async fn contract(store: &dyn Store) {
    assert!(store.conversation("missing").await.unwrap().is_none());

    store
        .append_turns(
            "c1",
            &[turn(Role::User, "q1", 1_000), turn(Role::Assistant, "a1", 1_001)],
            50_000,
            10,
        )
        .await
        .unwrap();
    store
        .append_turns(
            "c1",
            &[turn(Role::User, "q2", 2_000), turn(Role::Assistant, "a2", 2_001)],
            60_000,
            10,
        )
        .await
        .unwrap();
    let c = store.conversation("c1").await.unwrap().unwrap();
    let contents: Vec<&str> = c.turns.iter().map(|t| t.content.as_str()).collect();
    assert_eq!(contents, ["q1", "a1", "q2", "a2"]);
    assert_eq!(
        (c.created_at_ms, c.updated_at_ms, c.expires_at_ms),
        (1_001, 2_001, 60_000)
    );
    assert_eq!(c.turns[0].files, ["/src/q1.rs"]);
    assert_eq!(c.turns[1].model.as_deref(), Some("glm-4.6"));
    assert_eq!(c.turns[1].role, Role::Assistant);

    // The turn cap drops the oldest turns.
    store
        .append_turns(
            "c1",
            &[turn(Role::User, "q3", 3_000), turn(Role::Assistant, "a3", 3_001)],
            70_000,
            3,
        )
        .await
        .unwrap();
    let c = store.conversation("c1").await.unwrap().unwrap();
    let contents: Vec<&str> = c.turns.iter().map(|t| t.content.as_str()).collect();
    assert_eq!(contents, ["a2", "q3", "a3"]);

    // Expiry purges whole threads and their turns.
    store
        .append_turns("c2", &[turn(Role::User, "x", 10)], 100, 10)
        .await
        .unwrap();
    assert_eq!(store.purge_expired(1_000).await.unwrap(), 1);
    assert!(store.conversation("c2").await.unwrap().is_none());
    assert!(store.conversation("c1").await.unwrap().is_some());

    // Tool executions: newest first, optional fields round-trip, old ones purged.
    let chat = Execution {
        at_ms: 5_000,
        tool: "chat".to_owned(),
        provider: Some("glm".to_owned()),
        model: Some("glm-4.6".to_owned()),
        latency_ms: 1_234,
        status: "ok".to_owned(),
        error_kind: None,
        tokens_in: Some(100),
        tokens_out: Some(20),
        session: Some("stdio".to_owned()),
    };
    let status = Execution {
        at_ms: 6_000,
        tool: "status".to_owned(),
        provider: None,
        model: None,
        latency_ms: 2,
        status: "timeout".to_owned(),
        error_kind: Some("timeout".to_owned()),
        tokens_in: None,
        tokens_out: None,
        session: None,
    };
    let old = Execution {
        at_ms: 10,
        ..status.clone()
    };
    store.record_executions(&[]).await.unwrap();
    store.record_executions(&[old.clone(), chat.clone()]).await.unwrap();
    store.record_executions(std::slice::from_ref(&status)).await.unwrap();
    assert_eq!(
        store.recent_executions(10).await.unwrap(),
        [status.clone(), chat.clone(), old]
    );
    assert_eq!(store.recent_executions(1).await.unwrap(), std::slice::from_ref(&status));
    assert_eq!(store.purge_executions(1_000).await.unwrap(), 1);
    assert_eq!(store.recent_executions(10).await.unwrap(), [status, chat]);

    // Tool baselines: history kept, the newest row per tool and transport read back.
    assert!(store.latest_tool_baselines().await.unwrap().is_empty());
    let baseline = |at_ms: i64, tool: &str, transport: &str, p50_ms: f64| ToolBaseline {
        at_ms,
        tool: tool.to_owned(),
        transport: transport.to_owned(),
        runs: 10,
        errors: 1,
        p50_ms,
        p95_ms: p50_ms * 2.0,
        mean_ms: p50_ms * 1.25,
    };
    store
        .record_tool_baselines(&[
            baseline(1_000, "chat", "http", 12.5),
            baseline(1_000, "version", "http", 0.25),
        ])
        .await
        .unwrap();
    store
        .record_tool_baselines(&[
            baseline(2_000, "chat", "http", 40.0),
            baseline(2_000, "chat", "ws", 7.0),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.latest_tool_baselines().await.unwrap(),
        [
            baseline(2_000, "chat", "http", 40.0),
            baseline(2_000, "chat", "ws", 7.0),
            baseline(1_000, "version", "http", 0.25)
        ]
    );

    alerts_and_observations(store).await;
    shared_records(store).await;

    store.record_start("0.0.0", "test").await.unwrap();
    assert_eq!(store.ping().await.unwrap().schema_version, 6);
}

/// Alert changes and auditor observations: newest first, ids assigned by the store, acknowledgement by id.
async fn alerts_and_observations(store: &dyn Store) {
    assert!(store.recent_alerts(10).await.unwrap().is_empty());
    let alert = |at_ms: i64, rule: &str, firing: bool| AlertRecord {
        id: 0,
        at_ms,
        rule: rule.to_owned(),
        severity: "warning".to_owned(),
        message: format!("{rule} at {at_ms}"),
        firing,
    };
    for a in [
        alert(1_000, "error_rate", true),
        alert(2_000, "cpu", true),
        alert(3_000, "error_rate", false),
    ] {
        store.record_alert(&a).await.unwrap();
    }
    let alerts = store.recent_alerts(2).await.unwrap();
    let without_id = |mut a: AlertRecord| {
        assert!(a.id > 0);
        a.id = 0;
        a
    };
    assert_eq!(
        alerts.into_iter().map(without_id).collect::<Vec<_>>(),
        [alert(3_000, "error_rate", false), alert(2_000, "cpu", true)]
    );

    assert!(store.observations(10).await.unwrap().is_empty());
    let observation = |at_ms: i64, message: &str| Observation {
        id: 0,
        at_ms,
        severity: "critical".to_owned(),
        category: "errors".to_owned(),
        message: message.to_owned(),
        evidence: "5 of 6 chat calls timed out".to_owned(),
        acknowledged: false,
        acknowledged_at_ms: None,
    };
    let first = store.record_observation(&observation(1_000, "first")).await.unwrap();
    let second = store.record_observation(&observation(2_000, "second")).await.unwrap();
    assert_ne!(first, second);
    assert!(store.acknowledge_observation(first, 5_000).await.unwrap());
    assert!(!store.acknowledge_observation(second + 1_000, 5_000).await.unwrap());
    assert_eq!(
        store.observations(10).await.unwrap(),
        [
            Observation {
                id: second,
                ..observation(2_000, "second")
            },
            Observation {
                id: first,
                acknowledged: true,
                acknowledged_at_ms: Some(5_000),
                ..observation(1_000, "first")
            },
        ]
    );
    assert_eq!(store.observations(1).await.unwrap().len(), 1);
}

/// Shared records: upsert, lapse at their expiry, refreshed only while live, taken once by scope in name order, deleted, purged.
async fn shared_records(store: &dyn Store) {
    store.put_shared("session", "s1", "{\"v\":1}", 10_000).await.unwrap();
    store.put_shared("session", "s1", "{\"v\":2}", 20_000).await.unwrap();
    let got = store.shared("session", "s1", 5_000).await.unwrap().unwrap();
    assert_eq!((got.body.as_str(), got.expires_at_ms), ("{\"v\":2}", 20_000));
    assert!(
        store.shared("session", "s1", 20_000).await.unwrap().is_none(),
        "lapsed at its expiry"
    );
    assert!(store.shared("other", "s1", 5_000).await.unwrap().is_none());
    assert!(store.touch_shared("session", "s1", 30_000, 5_000).await.unwrap());
    assert_eq!(
        store
            .shared("session", "s1", 25_000)
            .await
            .unwrap()
            .unwrap()
            .expires_at_ms,
        30_000
    );
    assert!(
        !store.touch_shared("session", "s1", 90_000, 30_000).await.unwrap(),
        "a lapsed record is not revived"
    );
    assert!(
        !store.touch_shared("session", "absent", 90_000, 5_000).await.unwrap(),
        "nothing is created"
    );
    assert!(store.shared("session", "absent", 5_000).await.unwrap().is_none());
    store.put_shared("session", "s1", "{\"v\":2}", 20_000).await.unwrap();

    for (name, expires) in [("b", 10_000), ("a", 10_000), ("c", 1_000)] {
        store.put_shared("pending:s1", name, name, expires).await.unwrap();
    }
    store.put_shared("pending:s2", "x", "x", 10_000).await.unwrap();
    let taken: Vec<String> = store
        .take_shared("pending:s1", 5_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(taken, ["a", "b"], "live records of the scope, in name order");
    assert!(
        store.take_shared("pending:s1", 5_000).await.unwrap().is_empty(),
        "taken once"
    );
    assert_eq!(store.take_shared("pending:s2", 5_000).await.unwrap().len(), 1);

    assert!(store.delete_shared("session", "s1").await.unwrap());
    assert!(!store.delete_shared("session", "s1").await.unwrap());
    store.put_shared("session", "old", "", 1_000).await.unwrap();
    store.put_shared("session", "new", "", 9_000).await.unwrap();
    // "pending:s1"/"c" (lapsed at 1 000) and "session"/"old" go.
    assert_eq!(store.purge_shared(5_000).await.unwrap(), 2);
    assert!(store.shared("session", "new", 5_000).await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&SqliteStore::open(dir.path()).await.unwrap()).await;
}

/// The test database URL; `None` (skip) only outside CI.
fn database_url() -> Option<String> {
    match std::env::var("EXAI_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_DATABASE_URL must be set in CI"),
        Err(_) => {
            eprintln!("EXAI_TEST_DATABASE_URL not set: skipping the PostgreSQL store test (scripts/test sets it)");
            None
        }
    }
}

#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let Some(url) = database_url() else { return };
    let schema = format!(
        "exai_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000
    );
    let store = PgStore::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required: {e}"));
    assert_eq!(store.ping().await.unwrap().backend, "postgres");
    contract(&store).await;
    // Migrating again is a no-op.
    let again = PgStore::connect_in_schema(&url, Some(&schema)).await.unwrap();
    assert_eq!(again.ping().await.unwrap().schema_version, 6);
    again.close().await;
    store.drop_schema(&schema).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn postgres_refuses_a_schema_name_that_is_not_an_identifier_before_any_sql() {
    let Some(url) = database_url() else { return };
    let hostile = "exai_x; DROP TABLE turns";
    let err = PgStore::connect_in_schema(&url, Some(hostile))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a plain identifier") && err.contains(hostile), "{err}");
    // A name that smuggles a second statement dropping another schema: refused, and the other schema survives.
    let victim = format!("exai_victim_{}", std::process::id());
    let store = PgStore::connect_in_schema(&url, Some(&victim)).await.unwrap();
    let smuggled = format!("exai_absent CASCADE; DROP SCHEMA {victim}");
    let err = store.drop_schema(&smuggled).await.unwrap_err().to_string();
    assert!(err.contains("not a plain identifier"), "{err}");
    assert!(
        store.schema_exists(&victim).await.unwrap(),
        "the other schema was dropped"
    );
    store.drop_schema(&victim).await.unwrap();
    store.close().await;
}

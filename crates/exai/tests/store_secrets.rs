//! The database URL never reaches a client with its secrets: `health` over the real binary, with PostgreSQL's
//! password given as a `?password=` query parameter (libpq's other spelling), shows `****` in its place.

use serde_json::json;

use crate::chat::{exai, sim};

#[tokio::test]
async fn health_masks_a_password_given_as_a_query_parameter() {
    let url = match std::env::var("EXAI_TEST_DATABASE_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("CI").is_some() => panic!("EXAI_TEST_DATABASE_URL must be set in CI"),
        Err(_) => return eprintln!("EXAI_TEST_DATABASE_URL not set: skipping (scripts/test sets it)"),
    };
    let schema = format!("exai_redact_{}", std::process::id());
    let store = exai_store::PgStore::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required: {e}"));
    // Move the password (a made-up one when the test database trusts its clients) from userinfo to the query.
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    let password = parsed.password().unwrap_or("exai-probe-7f3a").to_owned();
    parsed.set_password(None).unwrap();
    parsed
        .query_pairs_mut()
        .append_pair("password", &password)
        .append_pair("options", &format!("-c search_path={schema}"));
    let sim = sim().await;
    let mut raw = exai(&sim, &[("EXAI_DATABASE_URL", parsed.as_str())]).await;
    let (_, reply) = raw.call(1, "health", json!({}), false).await;
    let text = reply.to_string();
    assert!(text.contains("postgres at") && text.contains("password=****"), "{text}");
    assert!(!text.contains(&password), "the password reached the client: {text}");
    drop(raw);
    store.drop_schema(&schema).await.unwrap();
    store.close().await;
}

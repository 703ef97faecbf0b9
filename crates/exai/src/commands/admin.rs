//! `exai admin reset-circuits`: asks a running daemon to close every circuit breaker and prints what it reset.
//! Uses the daemon address and bearer token from the same configuration the daemon reads.

use anyhow::{Context, bail};
use exai_core::config::Config;

pub async fn reset_circuits(config: &Config, url: Option<String>) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(|| format!("http://{}:{}", config.http.host, config.http.port));
    let endpoint = format!("{}/admin/reset-circuits", base.trim_end_matches('/'));
    let mut request = reqwest::Client::new().post(&endpoint);
    if let Some(token) = &config.http.token {
        request = request.bearer_auth(token.expose());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the daemon at {endpoint}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{endpoint} answered {status}: {body}");
    }
    println!("{body}");
    Ok(())
}

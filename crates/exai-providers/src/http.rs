//! The one pooled HTTP client every profile shares: keep-alive, HTTP/2 where ALPN offers it, and
//! rustls with the ring crypto provider (never aws-lc-rs) verifying against the system's CA roots.

use std::sync::Arc;
use std::time::Duration;

use exai_core::provider::ProviderError;
use rustls_platform_verifier::BuilderVerifierExt;

/// A cheap-to-clone handle on the shared connection pool.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    /// Builds the pooled client. Call once and clone; every clone shares the pool.
    pub fn new() -> Result<Self, ProviderError> {
        let setup_error = |message: String| ProviderError::Connect {
            provider: "exai".to_string(),
            url: "(HTTP client setup)".to_string(),
            message,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = || {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| setup_error(e.to_string()))
        };
        let mut tls = match builder()?.with_platform_verifier() {
            Ok(b) => b.with_no_client_auth(),
            Err(e) => {
                // No system roots (a slim container without ca-certificates): plain-HTTP endpoints such as a
                // local Ollama still work; HTTPS ones fail their handshake with an "unknown issuer" error.
                tracing::warn!(error = %e, "no CA certificates found on this system: HTTPS providers will fail");
                builder()?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            }
        };
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(15))
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("exai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup_error(e.to_string()))?;
        Ok(Self { inner })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_with_ring() {
        super::HttpClient::new().unwrap();
    }
}

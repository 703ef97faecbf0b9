//! DNS-rebinding and cross-site protection with the same allow-lists as `/mcp` (where rmcp applies them): the
//! `Host` must be in `EXAI_HTTP_ALLOWED_HOSTS` and a browser's `Origin`, when sent, in `EXAI_HTTP_ALLOWED_ORIGINS`
//! (`*` turns either check off). Guards the dashboard, `/metrics`, `/admin/*` and every WebSocket upgrade, so a
//! page on another site can neither read them through a rebound name nor drive them with a cross-site request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use exai_core::config::HttpConfig;

/// The accepted `Host` and `Origin` values; an empty list turns its check off.
#[derive(Debug, Clone)]
pub struct AllowLists {
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Why a request was refused (403), naming the header, its value and the setting that lists what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": "forbidden", "message": self.0 });
        (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
    }
}

impl AllowLists {
    /// `http.allowed_hosts` and `http.allowed_origins`: one pair of lists for every port the daemon opens.
    pub fn from_config(http: &HttpConfig) -> Self {
        Self {
            hosts: http.allowed_hosts.clone(),
            origins: http.allowed_origins.clone(),
        }
    }

    /// `Err` when the `Host` is not allowed, or an `Origin` is sent and not allowed.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.hosts.is_empty() && !host_allowed(host, &self.hosts) {
            return Err(Refused(format!(
                "Host `{host}` is not allowed (EXAI_HTTP_ALLOWED_HOSTS)"
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !self.origins.is_empty() && !origin_allowed(&origin, &self.origins) {
                return Err(Refused(format!(
                    "Origin `{origin}` is not allowed (EXAI_HTTP_ALLOWED_ORIGINS)"
                )));
            }
        }
        Ok(())
    }
}

/// Middleware: answers 403 before anything else runs when [`AllowLists::check`] refuses the request.
pub async fn require(State(lists): State<Arc<AllowLists>>, request: Request, next: Next) -> Response {
    match lists.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            tracing::info!(path = %request.uri().path(), reason = %refused.0, "request refused by the allow-lists");
            refused.into_response()
        }
    }
}

/// Host and port of an authority (`127.0.0.1:8080`, `[::1]:80`, `localhost`), host lower-cased without brackets.
fn authority(text: &str) -> Option<(String, Option<u16>)> {
    let authority = axum::http::uri::Authority::try_from(text.trim()).ok()?;
    let host = authority.host().trim_matches(['[', ']']).to_ascii_lowercase();
    Some((host, authority.port_u16()))
}

/// An allowed entry without a port admits any port; one that is not an authority (`::1`) is a bare host.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let Some((host, port)) = authority(host) else {
        return false;
    };
    allowed
        .iter()
        .map(|a| authority(a).unwrap_or_else(|| (a.trim().trim_matches(['[', ']']).to_ascii_lowercase(), None)))
        .any(|(a_host, a_port)| a_host == host && a_port.is_none_or(|p| Some(p) == port))
}

/// Entries are `scheme://host[:port]`; `:*` admits any port, no port admits any port too (as rmcp does for now).
fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let parse = |text: &str| -> Option<(String, String, Option<u16>)> {
        let uri = Uri::try_from(text.trim()).ok()?;
        let (host, port) = authority(uri.authority()?.as_str())?;
        Some((uri.scheme_str()?.to_ascii_lowercase(), host, port))
    };
    let Some((scheme, host, port)) = parse(origin) else {
        return false;
    };
    allowed.iter().any(|entry| {
        let (base, any_port) = match entry.trim().strip_suffix(":*") {
            Some(base) => (base, true),
            None => (entry.as_str(), false),
        };
        parse(base).is_some_and(|(a_scheme, a_host, a_port)| {
            a_scheme == scheme && a_host == host && (any_port || a_port.is_none_or(|p| Some(p) == port))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hosts_and_origins_follow_the_allow_lists() {
        let hosts = list(&["localhost", "127.0.0.1", "::1"]);
        assert!(host_allowed("127.0.0.1:8080", &hosts));
        assert!(host_allowed("[::1]:8080", &hosts));
        assert!(host_allowed("LOCALHOST", &hosts));
        assert!(!host_allowed("evil.example:8080", &hosts));
        assert!(!host_allowed("", &hosts));
        let origins = list(&["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]);
        assert!(origin_allowed("http://127.0.0.1:43121", &origins));
        assert!(origin_allowed("http://[::1]:80", &origins));
        assert!(!origin_allowed("https://127.0.0.1:443", &origins));
        assert!(!origin_allowed("http://evil.example", &origins));
        assert!(!origin_allowed("null", &origins));
        assert!(origin_allowed("https://ops.example", &list(&["https://ops.example"])));
    }

    #[test]
    fn check_names_the_header_and_the_setting() {
        let lists = AllowLists {
            hosts: list(&["localhost", "127.0.0.1"]),
            origins: list(&["http://127.0.0.1:*"]),
        };
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), value.parse().unwrap());
            }
            map
        };
        assert_eq!(lists.check(&headers(&[(header::HOST, "127.0.0.1:8079")])), Ok(()));
        let host = lists.check(&headers(&[(header::HOST, "evil.example")])).unwrap_err();
        assert!(host.0.contains("EXAI_HTTP_ALLOWED_HOSTS"), "{host:?}");
        let origin = lists
            .check(&headers(&[
                (header::HOST, "localhost:1"),
                (header::ORIGIN, "http://evil.example"),
            ]))
            .unwrap_err();
        assert!(origin.0.contains("EXAI_HTTP_ALLOWED_ORIGINS"), "{origin:?}");
        let open = AllowLists {
            hosts: Vec::new(),
            origins: Vec::new(),
        };
        assert_eq!(open.check(&headers(&[(header::ORIGIN, "http://evil.example")])), Ok(()));
    }
}

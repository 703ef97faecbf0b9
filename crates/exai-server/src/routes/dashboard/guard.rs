//! DNS-rebinding and cross-site protection for the dashboard, with the same allow-lists as `/mcp`: the `Host` must
//! be in `EXAI_HTTP_ALLOWED_HOSTS` and a browser's `Origin`, when sent, in `EXAI_HTTP_ALLOWED_ORIGINS` (`*` turns
//! either check off). Without them a page on another site could read the dashboard through a rebound name, or
//! acknowledge observations with a cross-site form, when no token is set.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Dashboard;

pub async fn require(State(dash): State<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    let http = &dash.app.config.http;
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !http.allowed_hosts.is_empty() && !host_allowed(host, &http.allowed_hosts) {
        return forbidden(format!("Host `{host}` is not allowed (EXAI_HTTP_ALLOWED_HOSTS)"));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !http.allowed_origins.is_empty()
        && !origin_allowed(origin, &http.allowed_origins)
    {
        return forbidden(format!("Origin `{origin}` is not allowed (EXAI_HTTP_ALLOWED_ORIGINS)"));
    }
    next.run(request).await
}

fn forbidden(message: String) -> Response {
    let body = serde_json::json!({ "error": "forbidden", "message": message });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
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
}

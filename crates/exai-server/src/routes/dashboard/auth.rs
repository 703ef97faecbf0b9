//! Who may see the dashboard when `EXAI_HTTP_TOKEN` is set. Scripts send `Authorization: Bearer <token>`, as for
//! `/mcp`. A browser cannot put a header on a page load or an `EventSource`, so opening `/dashboard?token=<token>`
//! once sets an `HttpOnly`, `SameSite=Strict` cookie scoped to `/dashboard` and redirects to the bare URL (the token
//! leaves the address bar and the history); the page, its API and its stream then accept that cookie. `Strict`
//! keeps other sites from riding the cookie (the acknowledge button's POST included). Browsers send a cookie to every
//! port of its host, so to any other server there (another user's on `127.0.0.1:9999`, a team host's other
//! services): it holds a digest of the token ([`cookie_value`]), which opens the dashboard and nothing else. Without a token configured
//! everything is open, like `/metrics`: keep the daemon on loopback then.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::Dashboard;
use crate::http::constant_time_eq;

/// The cookie that carries a digest of the token for the browser ([`cookie_value`]).
pub const COOKIE: &str = "exai_dashboard";
/// How long the cookie lasts (a week); opening `?token=` again renews it.
const COOKIE_MAX_AGE_SECS: u64 = 7 * 24 * 3600;

/// Lets a request through when no token is configured, or it carries the token in the header or the cookie.
pub async fn require(State(dash): State<Arc<Dashboard>>, request: Request, next: Next) -> Response {
    let Some(token) = dash.app.config.http.token.as_ref() else {
        return next.run(request).await;
    };
    let token = token.expose().as_bytes();
    let is_page = matches!(request.uri().path(), "/dashboard" | "/dashboard/");
    if is_page && let Some(offered) = query_token(request.uri().query()) {
        if constant_time_eq(offered.as_bytes(), token) {
            return sign_in(&offered);
        }
        return refuse(is_page, "invalid token in `?token=`");
    }
    let expected_cookie = cookie_value(token);
    if bearer(request.headers()).is_some_and(|b| constant_time_eq(b.as_bytes(), token))
        || cookie(request.headers()).is_some_and(|c| constant_time_eq(c.as_bytes(), expected_cookie.as_bytes()))
    {
        return next.run(request).await;
    }
    let why = if bearer(request.headers()).is_some() || cookie(request.headers()).is_some() {
        "invalid token"
    } else {
        "missing token: open /dashboard?token=<EXAI_HTTP_TOKEN> once, or send `Authorization: Bearer <EXAI_HTTP_TOKEN>`"
    };
    refuse(is_page, why)
}

/// What the cookie holds for `token`: a SHA-256 of it (hex), never the token itself, which also opens `/mcp`
/// and `/admin`.
fn cookie_value(token: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"exai dashboard cookie\0")
        .chain_update(token)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets the cookie and sends the browser to the bare page.
fn sign_in(token: &str) -> Response {
    let cookie = format!(
        "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}",
        cookie_value(token.as_bytes())
    );
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/dashboard")]).into_response();
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        Err(_) => return refuse(true, "the token cannot be carried in a cookie"),
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 401: a short page for the browser, JSON for the API and the stream.
fn refuse(is_page: bool, why: &str) -> Response {
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"exai\"")];
    if is_page {
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>exai dashboard</title><link rel=icon href=\"data:,\">\
             <h1>exai dashboard: sign in</h1>\
             <p>{}</p><p>This daemon has <code>EXAI_HTTP_TOKEN</code> set. Open \
             <code>/dashboard?token=&lt;EXAI_HTTP_TOKEN&gt;</code> once; the browser then keeps a cookie.</p>",
            html_escape(why)
        );
        return (StatusCode::UNAUTHORIZED, challenge, Html(body)).into_response();
    }
    let body = serde_json::json!({ "error": "unauthorized", "message": why });
    (StatusCode::UNAUTHORIZED, challenge, axum::Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The dashboard cookie's value, decoded.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| decode(value))
}

/// `token` from a query string, decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .and_then(|(_, value)| decode(&value.replace('+', " ")))
}

/// Undoes percent-encoding; `None` for a malformed escape or bytes that are not UTF-8.
pub(crate) fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_from_query_and_cookie() {
        assert_eq!(query_token(Some("a=1&token=s%3Bx+y")).as_deref(), Some("s;x y"));
        assert_eq!(query_token(Some("tok=1")), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; exai_dashboard=a%20b"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("a b"));
        assert_eq!(decode("%C3%A4%3B%3D%2C%20x").as_deref(), Some("ä;=, x"));
        assert_eq!(decode("%zz"), None);
    }

    #[test]
    fn the_cookie_holds_a_digest_never_the_token() {
        let value = cookie_value(b"s3cret");
        assert_eq!(value.len(), 64);
        assert!(!value.contains("s3cret"));
        assert_ne!(value, cookie_value(b"s3cret2"));
        assert_eq!(value, cookie_value(b"s3cret"), "stable across restarts");
    }
}

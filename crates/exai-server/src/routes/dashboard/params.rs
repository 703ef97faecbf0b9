//! The query parameters the API takes, read by hand so that every bad value gets an answer naming what is allowed.

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;

use super::error::ApiError;

/// The query string's parameters (the last of a repeated name wins).
pub type Params = HashMap<String, String>;

/// The parameters, or a JSON 400 for a query string that cannot be decoded (instead of axum's plain text).
pub fn decode(query: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("cannot read the query string: {}", e.body_text())))
}

/// The shortest and longest statistics window, in seconds.
pub const WINDOW_SECS: std::ops::RangeInclusive<u64> = 60..=86_400;
/// The window when none is asked for: 5 minutes.
pub const DEFAULT_WINDOW_SECS: u64 = 300;
/// Most rows one list returns.
pub const MAX_LIMIT: u32 = 1000;

/// `window=<secs>`: whole seconds within [`WINDOW_SECS`].
pub fn window(query: &HashMap<String, String>) -> Result<u64, ApiError> {
    let Some(text) = query.get("window") else {
        return Ok(DEFAULT_WINDOW_SECS);
    };
    match text.trim().parse::<u64>() {
        Ok(secs) if WINDOW_SECS.contains(&secs) => Ok(secs),
        _ => Err(ApiError::BadRequest(format!(
            "window must be whole seconds from {} to {} (the page offers 300, 900, 3600, 21600 and 86400); got `{text}`",
            WINDOW_SECS.start(),
            WINDOW_SECS.end()
        ))),
    }
}

/// `limit=<n>`: from 1 to [`MAX_LIMIT`], `default` when absent.
pub fn limit(query: &HashMap<String, String>, default: u32) -> Result<u32, ApiError> {
    let Some(text) = query.get("limit") else {
        return Ok(default);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}; got `{text}`"
        ))),
    }
}

/// An optional filter that must be one of `allowed` (empty or absent: no filter).
pub fn one_of<'q>(
    query: &'q HashMap<String, String>,
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'q str>, ApiError> {
    match query.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(ApiError::BadRequest(format!(
            "{name} must be one of {}; got `{v}`",
            allowed.join(", ")
        ))),
    }
}

/// An optional free-text filter (empty or absent: no filter).
pub fn text<'q>(query: &'q HashMap<String, String>, name: &str) -> Option<&'q str> {
    query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn windows_limits_and_filters() {
        assert_eq!(window(&q(&[])).unwrap(), 300);
        assert_eq!(window(&q(&[("window", "3600")])).unwrap(), 3600);
        for bad in ["59", "86401", "5m", "-1", ""] {
            let e = window(&q(&[("window", bad)])).unwrap_err().to_string();
            assert!(e.contains("from 60 to 86400"), "{e}");
        }
        assert_eq!(limit(&q(&[]), 50).unwrap(), 50);
        assert!(limit(&q(&[("limit", "0")]), 50).is_err());
        assert!(limit(&q(&[("limit", "1001")]), 50).is_err());
        let allowed = ["info", "warning"];
        assert_eq!(one_of(&q(&[("s", "")]), "s", &allowed).unwrap(), None);
        assert_eq!(one_of(&q(&[("s", "info")]), "s", &allowed).unwrap(), Some("info"));
        let e = one_of(&q(&[("s", "loud")]), "s", &allowed).unwrap_err().to_string();
        assert!(e.contains("one of info, warning"), "{e}");
    }
}

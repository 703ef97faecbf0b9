//! Error responses in each provider's own body shape, so the client's error parsing meets the real thing.
//! GLM: `{"error":{"code":"1302","message":…}}`; Kimi: `{"error":{"message":…,"type":"rate_limit_reached_error"}}`.
//!
//! Shapes, from the providers' documentation and recorded traffic:
//! - GLM (Z.ai / Zhipu) puts a *string* business code in `error.code` next to `error.message` and no `type`;
//!   the HTTP status carries the class (429 for both rate limits `1302` and arrears `1113`; 1305 = overloaded;
//!   1211 = unknown model, sent with HTTP 400).
//! - Kimi (Moonshot) puts a machine-readable `error.type` next to `error.message` and no `code`; 429 covers
//!   `rate_limit_reached_error`, `engine_overloaded_error` and `exceeded_current_quota_error`.
//! - OpenAI: `{"error":{"message","type","param","code"}}`.
//!
//! Every message here says it comes from the simulator.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::Family;

/// The error body a provider family sends for `status`; `message`/`code` override the defaults.
pub fn error_body(style: Family, status: u16, message: Option<&str>, code: Option<&str>) -> Value {
    let (glm_code, kimi_type, openai_type, openai_code, default_message) = defaults(status);
    let message = format!("{} [exai-sim]", message.unwrap_or(default_message));
    match style {
        Family::Glm => json!({"error": {"code": code.unwrap_or(glm_code), "message": message}}),
        Family::Kimi => json!({"error": {"message": message, "type": code.unwrap_or(kimi_type)}}),
        Family::OpenAi => json!({"error": {
            "message": message,
            "type": openai_type,
            "param": null,
            "code": code.unwrap_or(openai_code),
        }}),
    }
}

/// `(glm code, kimi type, openai type, openai code, message)` for a status.
fn defaults(status: u16) -> (&'static str, &'static str, &'static str, &'static str, &'static str) {
    match status {
        400 => (
            "1214",
            "invalid_request_error",
            "invalid_request_error",
            "invalid_request",
            "Invalid request parameters",
        ),
        401 => (
            "1000",
            "invalid_authentication_error",
            "invalid_request_error",
            "invalid_api_key",
            "Authentication failed: invalid API key",
        ),
        403 => (
            "1220",
            "permission_denied_error",
            "invalid_request_error",
            "permission_denied",
            "You do not have permission to access this model",
        ),
        404 => (
            "1211",
            "resource_not_found_error",
            "invalid_request_error",
            "model_not_found",
            "Not found",
        ),
        429 => (
            "1302",
            "rate_limit_reached_error",
            "rate_limit_error",
            "rate_limit_exceeded",
            "Rate limit reached: too many concurrent requests, please slow down",
        ),
        502 => (
            "1305",
            "engine_overloaded_error",
            "server_error",
            "bad_gateway",
            "Bad gateway: the model service did not answer",
        ),
        503 => (
            "1305",
            "engine_overloaded_error",
            "server_error",
            "service_unavailable",
            "The service is temporarily overloaded, please try again later",
        ),
        s if s >= 500 => (
            "500",
            "server_error",
            "server_error",
            "internal_error",
            "Internal error",
        ),
        _ => (
            "1200",
            "invalid_request_error",
            "invalid_request_error",
            "error",
            "Request failed",
        ),
    }
}

/// A complete error response: status, family body and optional `Retry-After`.
pub(crate) fn error_response(
    style: Family,
    status: u16,
    message: Option<&str>,
    code: Option<&str>,
    retry_after_secs: Option<u64>,
) -> Response {
    let code_status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code_status, Json(error_body(style, status, message, code))).into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The response for a request without a usable API key (OpenAI shape whatever the path).
pub(crate) fn missing_key() -> Response {
    let body = json!({"error": {
        "message": "Missing or empty API key: send `Authorization: Bearer <key>` [exai-sim]",
        "type": "invalid_request_error",
        "param": null,
        "code": "missing_api_key",
    }});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The "model not found" answer each provider gives (GLM: HTTP 400 with code 1211; Kimi/OpenAI: 404).
pub(crate) fn unknown_model(model: &str) -> Response {
    let family = Family::of(model);
    let status = if family == Family::Glm { 400 } else { 404 };
    let message = match family {
        Family::Glm => format!("Model does not exist, please check the model code: {model}"),
        Family::Kimi => format!("Not found the model {model} or Permission denied"),
        Family::OpenAi => format!("The model `{model}` does not exist"),
    };
    let code = (family == Family::Glm).then_some("1211");
    error_response(family, status, Some(&message), code, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_shapes_differ_as_the_providers_do() {
        let glm = error_body(Family::Glm, 429, None, None);
        assert_eq!(glm["error"]["code"], "1302");
        assert!(glm["error"].get("type").is_none());
        let kimi = error_body(Family::Kimi, 429, None, None);
        assert_eq!(kimi["error"]["type"], "rate_limit_reached_error");
        assert!(kimi["error"].get("code").is_none());
        let openai = error_body(Family::OpenAi, 500, Some("boom"), None);
        assert_eq!(openai["error"]["type"], "server_error");
        assert!(openai["error"]["message"].as_str().unwrap().starts_with("boom"));
        assert!(openai["error"]["message"].as_str().unwrap().contains("exai-sim"));
    }
}

//! The dashboard API's errors: each knows its status, and the body is always JSON
//! (`{"error": "<code>", "message": "<what was wrong and what is allowed>"}`).

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use exai_core::store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter that is missing its allowed form.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The database failed; logged here, at the edge.
    #[error("the database failed: {0}")]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Store(e) => {
                tracing::warn!(error = %e, "dashboard request failed in the database");
                (StatusCode::INTERNAL_SERVER_ERROR, "store_failed")
            }
        };
        (
            status,
            axum::Json(json!({ "error": code, "message": self.to_string() })),
        )
            .into_response()
    }
}

/// Any other path under `/dashboard/`.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no dashboard route {}; see docs/dashboard.md for /dashboard/api/* and /dashboard/stream",
        uri.path()
    ))
}

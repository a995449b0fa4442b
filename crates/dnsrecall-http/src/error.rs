//! Errors of the APIs, rendered as their clients expect.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::store::StoreError;
use serde::Serialize;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Credentials missing or wrong (401).
    #[error("authentication required")]
    Unauthorized,
    /// The store failed (500; details logged, not sent).
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// A blocking task died (500).
    #[error("internal task failure")]
    Task,
}

/// The JSON body of a D4, PyPDNS or annotate error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was wrong (`internal error` for server faults).
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone()),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication required".to_string(),
            ),
            ApiError::Store(_) | ApiError::Task => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        let body = serde_json::to_string(&ErrorBody { error: message }).unwrap_or_default();
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"dnsrecall\""),
            );
        }
        response
    }
}

//! Errors of the D4, PyPDNS and annotate APIs, rendered as their clients
//! expect, and the error answers their OpenAPI documentation names.
//! (DNSDB renders its own: `dnsdb::Failure`.)

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::store::StoreError;
use dnsrecall_query::QueryError;
use serde::Serialize;

//---- ApiError --------------------------------------------------------------

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Credentials missing or wrong (401).
    #[error("authentication required")]
    Unauthorized,
    /// The store failed (500; details logged, not sent), or its backend
    /// cannot answer this kind of lookup (`StoreError::Unsupported`: 501,
    /// with the message naming the backend that can).
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
    /// A blocking task died (500).
    #[error("internal task failure")]
    Task,
}

impl From<QueryError> for ApiError {
    /// A query the engine could not read is the asker's mistake (400, with
    /// the engine's message); a store failure is ours (500).
    fn from(error: QueryError) -> ApiError {
        match error {
            QueryError::Store(error) => ApiError::Store(error),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
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
            // The store's backend cannot answer this lookup (the Redis
            // store and a wildcard): the asker's choice of lookup, not a
            // fault; an empty answer would be a lie.
            ApiError::Store(error @ StoreError::Unsupported { .. }) => {
                (StatusCode::NOT_IMPLEMENTED, error.to_string())
            }
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

//---- documented error answers ----------------------------------------------

/// API keys are configured and the request carries none of them.
#[derive(utoipa::ToResponse)]
#[response(
    headers(("www-authenticate" = String, description = "`Basic realm=\"dnsrecall\"`"))
)]
pub struct Unauthorized(pub ErrorBody);

/// The store failed (details in the server log, not in the answer).
#[derive(utoipa::ToResponse)]
pub struct Internal(pub ErrorBody);

/// The request took longer than `api.request_timeout_secs`.
#[derive(utoipa::ToResponse)]
pub struct Timeout;

#[cfg(test)]
mod tests {
    use dnsrecall_query::Subject;

    use super::*;

    #[test]
    fn query_errors_are_bad_requests_unless_the_store_failed() {
        let bad = ApiError::from(Subject::parse("a..b").unwrap_err());
        assert!(matches!(&bad, ApiError::BadRequest(m) if m.starts_with("invalid query \"a..b\"")));
        assert_eq!(bad.into_response().status(), StatusCode::BAD_REQUEST);
        let store = ApiError::from(QueryError::Store(StoreError::ReadOnly));
        assert!(matches!(store, ApiError::Store(_)));
        assert_eq!(
            store.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn lookups_a_backend_cannot_answer_are_501_naming_the_one_that_can() {
        let error = ApiError::from(QueryError::Store(StoreError::Unsupported {
            backend: "redis",
            lookup: "wildcard name lookups",
            alternative: "rocksdb",
        }));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
    }
}

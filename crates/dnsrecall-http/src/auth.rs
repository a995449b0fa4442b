//! API keys: `X-API-Key: KEY`, a raw `Authorization: KEY` (PyPDNS
//! `auth_token`), or HTTP Basic with the key as password (PyPDNS
//! `basic_auth`, curl `-u user:KEY`).
//!
//! Keys are kept as SHA-256 digests and compared in constant time, so a
//! configuration dump or a timing probe does not reveal them.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState};

/// The accepted keys; empty means no authentication.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl ApiKeys {
    /// From plain keys.
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> ApiKeys {
        ApiKeys {
            digests: keys.into_iter().map(|k| digest(k.as_ref())).collect(),
        }
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Whether `candidate` is one of the keys.
    pub fn accepts(&self, candidate: &str) -> bool {
        let wanted = digest(candidate);
        // Check every key so the time does not depend on which one matched.
        self.digests
            .iter()
            .fold(false, |found, key| found | constant_time_eq(key, &wanted))
    }

    /// Whether the request headers carry an accepted key.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        if !self.enabled() {
            return true;
        }
        if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            return self.accepts(key.trim());
        }
        let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let authorization = authorization.trim();
        if let Some(encoded) = authorization.strip_prefix("Basic ") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
            else {
                return false;
            };
            let Ok(text) = String::from_utf8(decoded) else {
                return false;
            };
            let password = text.split_once(':').map_or(text.as_str(), |(_, p)| p);
            return self.accepts(password);
        }
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization);
        self.accepts(token)
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: 401 unless the request carries an accepted key.
pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.keys.authorizes(request.headers()) {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn every_credential_form() {
        let keys = ApiKeys::new(["s3cret"]);
        assert!(keys.authorizes(&headers("x-api-key", "s3cret")));
        assert!(keys.authorizes(&headers("authorization", "s3cret")));
        assert!(keys.authorizes(&headers("authorization", "Bearer s3cret")));
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        assert!(keys.authorizes(&headers("authorization", &format!("Basic {basic}"))));
        assert!(!keys.authorizes(&headers("x-api-key", "wrong")));
        assert!(!keys.authorizes(&HeaderMap::new()));
        assert!(ApiKeys::default().authorizes(&HeaderMap::new()));
    }
}

//! Credentials: API keys in `X-API-Key: KEY`, a raw `Authorization: KEY`
//! (PyPDNS `auth_token`, or `Bearer KEY`), or HTTP Basic with the key as
//! password and any user name (PyPDNS `basic_auth`, curl `-u user:KEY`);
//! and user accounts of `api.users_file` in HTTP Basic (user name and
//! password, [`crate::users`]).
//!
//! Keys are kept as SHA-256 digests and compared in constant time, so a
//! configuration dump or a timing probe does not reveal them. A Basic
//! password that is a key is a key, whatever the user name; only other
//! passwords are checked against the users file.
//!
//! The guard ([`crate::guard`]) identifies every request once
//! ([`ApiKeys::identify`]: it needs the identity for its rate buckets and
//! quotas) and leaves the [`Identity`] in the request's extensions, where
//! [`require_key`] finds it; argon2 runs at most once per request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::quota::Limits;
use crate::users::Users;
use crate::{ApiError, AppState};

/// Who a request is, as far as its credentials tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No accepted credential (or none configured).
    Anonymous,
    /// An API key: SHA-256 of the header value that carried it.
    Key([u8; 32]),
    /// A user of the users file, with the user's quotas.
    User { name: String, limits: Limits },
}

/// The credential a request presents, before it is checked.
enum Presented<'a> {
    None,
    /// `X-API-Key`, raw or `Bearer` `Authorization`.
    Key {
        key: &'a str,
        header: &'a [u8],
    },
    /// HTTP Basic.
    Basic {
        name: String,
        password: String,
        header: &'a [u8],
    },
}

fn presented(headers: &HeaderMap) -> Presented<'_> {
    if let Some(value) = headers.get("x-api-key")
        && let Ok(key) = value.to_str()
    {
        return Presented::Key {
            key: key.trim(),
            header: value.as_bytes(),
        };
    }
    let Some(value) = headers.get("authorization") else {
        return Presented::None;
    };
    let Ok(authorization) = value.to_str() else {
        return Presented::None;
    };
    let authorization = authorization.trim();
    if let Some(encoded) = authorization.strip_prefix("Basic ") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return Presented::None;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return Presented::None;
        };
        let (name, password) = text.split_once(':').unwrap_or(("", text.as_str()));
        return Presented::Basic {
            name: name.to_string(),
            password: password.to_string(),
            header: value.as_bytes(),
        };
    }
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or(authorization);
    Presented::Key {
        key: token,
        header: value.as_bytes(),
    }
}

/// The accepted keys and users; none of either means no authentication.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    users: Option<Arc<Users>>,
}

impl ApiKeys {
    /// From plain keys.
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> ApiKeys {
        ApiKeys {
            digests: keys.into_iter().map(|k| digest(k.as_ref())).collect(),
            users: None,
        }
    }

    /// These keys plus the user accounts of `users`. With users configured,
    /// authentication is on even without keys.
    pub fn with_users(mut self, users: Arc<Users>) -> ApiKeys {
        self.users = Some(users);
        self
    }

    /// The user accounts, if configured.
    pub fn users(&self) -> Option<&Arc<Users>> {
        self.users.as_ref()
    }

    /// Whether any key or users file is configured.
    pub fn enabled(&self) -> bool {
        !self.digests.is_empty() || self.users.is_some()
    }

    /// Whether `candidate` is one of the keys.
    pub fn accepts(&self, candidate: &str) -> bool {
        let wanted = digest(candidate);
        // Check every key so the time does not depend on which one matched.
        self.digests
            .iter()
            .fold(false, |found, key| found | constant_time_eq(key, &wanted))
    }

    /// Whether the request headers carry an accepted key, or the Basic
    /// credentials of a user verified within the last minute (this check
    /// runs no argon2; [`ApiKeys::identify`] does, and the guard calls it
    /// before any route).
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        if !self.enabled() {
            return true;
        }
        match presented(headers) {
            Presented::None => false,
            Presented::Key { key, .. } => self.accepts(key),
            Presented::Basic { name, password, .. } => {
                self.accepts(&password)
                    || self
                        .users
                        .as_ref()
                        .is_some_and(|users| users.cached(&name, &password).is_some())
            }
        }
    }

    /// Whether [`ApiKeys::identify`] would run argon2 for these headers:
    /// HTTP Basic whose password is not a key, with users configured and
    /// the credentials not verified lately.
    pub fn needs_verification(&self, headers: &HeaderMap) -> bool {
        let Some(users) = &self.users else {
            return false;
        };
        match presented(headers) {
            Presented::Basic { name, password, .. } => {
                !self.accepts(&password) && users.cached(&name, &password).is_none()
            }
            _ => false,
        }
    }

    /// Who the request is: a key, a verified user (argon2 on the blocking
    /// pool, or the cache), or anonymous (no credentials, wrong ones, or no
    /// authentication configured).
    pub async fn identify(&self, headers: &HeaderMap) -> Identity {
        if !self.enabled() {
            return Identity::Anonymous;
        }
        match presented(headers) {
            Presented::None => Identity::Anonymous,
            Presented::Key { key, header } => {
                if self.accepts(key) {
                    Identity::Key(Sha256::digest(header).into())
                } else {
                    Identity::Anonymous
                }
            }
            Presented::Basic {
                name,
                password,
                header,
            } => {
                if self.accepts(&password) {
                    return Identity::Key(Sha256::digest(header).into());
                }
                let Some(users) = &self.users else {
                    return Identity::Anonymous;
                };
                match users.verify(&name, &password).await {
                    Some(limits) => Identity::User { name, limits },
                    None => Identity::Anonymous,
                }
            }
        }
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: 401 unless the request carries an accepted key or user
/// (the identity the guard found, or found here when there was no guard).
pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.keys.enabled() {
        return next.run(request).await;
    }
    let identity = match request.extensions().get::<Identity>() {
        Some(identity) => identity.clone(),
        None => state.keys.identify(request.headers()).await,
    };
    if identity == Identity::Anonymous {
        ApiError::Unauthorized.into_response()
    } else {
        next.run(request).await
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

    fn basic(credentials: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        headers("authorization", &format!("Basic {encoded}"))
    }

    #[tokio::test]
    async fn users_beside_keys() {
        let hash = crate::users::hash_password("correct horse").unwrap();
        let users = Users::from_text(&format!("alice {hash} quota=9\n")).unwrap();
        let keys = ApiKeys::new(["s3cret-key"]).with_users(Arc::new(users));
        assert!(keys.enabled());

        // A key as Basic password, any user name, even a user's: a key.
        for credentials in ["analyst:s3cret-key", "alice:s3cret-key", "s3cret-key"] {
            assert!(matches!(
                keys.identify(&basic(credentials)).await,
                Identity::Key(_)
            ));
        }
        // A user's name and password: that user, with the user's quotas.
        assert_eq!(
            keys.identify(&basic("alice:correct horse")).await,
            Identity::User {
                name: "alice".into(),
                limits: Limits {
                    quota: Some(9),
                    burst: None
                }
            }
        );
        // Then the synchronous check accepts it from the cache.
        assert!(keys.authorizes(&basic("alice:correct horse")));
        // Wrong password, unknown user, password without name, a user's
        // password as a key: anonymous.
        for credentials in ["alice:wrong", "mallory:correct horse", "correct horse"] {
            assert_eq!(
                keys.identify(&basic(credentials)).await,
                Identity::Anonymous
            );
            assert!(!keys.authorizes(&basic(credentials)));
        }
        assert_eq!(
            keys.identify(&headers("x-api-key", "correct horse")).await,
            Identity::Anonymous
        );
        assert_eq!(keys.identify(&HeaderMap::new()).await, Identity::Anonymous);

        // Users alone turn authentication on.
        let only_users = ApiKeys::default().with_users(Arc::new(Users::from_text("").unwrap()));
        assert!(only_users.enabled());
        assert!(!only_users.authorizes(&HeaderMap::new()));
    }
}

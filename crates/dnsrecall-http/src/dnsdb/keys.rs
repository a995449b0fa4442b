//! DNSDB keys: `X-API-Key` checked against `api.api_keys` and the keys
//! file `api.dnsdb_keys_file` (SHA-256 digests, one per line, with optional
//! quotas: `quota=N` lookups per UTC day, `burst=N/SECONDS`), reloaded when
//! the file changes; charging the quotas (counted in the shared
//! [`QuotaLedger`](crate::quota::QuotaLedger), whose daily counters are
//! saved to a state file and survive a restart); and the `rate_limit`
//! answer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::http::{HeaderMap, StatusCode};
use dnsrecall_query::dnsdb::now;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Dnsdb, Failure};
pub use crate::quota::Limits;
use crate::quota::QuotaExceeded;

//---- authentication --------------------------------------------------------

impl Dnsdb {
    /// The key's identity (its digest; empty when the API is open), or 403.
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Result<String, Failure> {
        let file = self.keys.current();
        if !self.app.keys.enabled() && file.is_empty() {
            return Ok(String::new());
        }
        let denied = || Failure(StatusCode::FORBIDDEN, "missing or invalid API key".into());
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .ok_or_else(denied)?;
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        if file.contains_key(&digest) || self.app.keys.accepts(key) {
            Ok(digest)
        } else {
            Err(denied())
        }
    }

    pub(super) fn rate(&self, key: &str) -> RateLimitAnswer {
        let config = &self.app.config;
        let limits = self.keys.current().get(key).copied().unwrap_or_default();
        let (reset, limit, remaining) = match limits.quota {
            Some(quota) => {
                let used = self.app.quotas.used_today(&identity(key), now());
                (
                    Quota::Number(next_midnight(now())),
                    Quota::Number(quota),
                    Quota::Number(quota.saturating_sub(used)),
                )
            }
            None => (
                Quota::Text("n/a"),
                Quota::Text("unlimited"),
                Quota::Text("n/a"),
            ),
        };
        RateLimitAnswer {
            rate: RateLimit {
                reset,
                limit,
                remaining,
                burst_size: limits.burst.map(|(size, _)| size),
                burst_window: limits.burst.map(|(_, window)| window),
                results_max: config.dnsdb_max_results,
                offset_max: config.dnsdb_offset_max,
            },
        }
    }
}

//---- rate_limit ------------------------------------------------------------

/// The `rate_limit` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimitAnswer {
    pub rate: RateLimit,
}

/// A key's quota and the server's limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimit {
    /// When the daily quota resets (epoch seconds), `n/a` without a quota.
    pub reset: Quota,
    /// Lookups per UTC day, or `unlimited`.
    pub limit: Quota,
    /// Lookups left today, `n/a` without a quota.
    pub remaining: Quota,
    /// Lookups allowed per burst window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_size: Option<u64>,
    /// Burst window in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_window: Option<u64>,
    /// Most results one query may return.
    pub results_max: u64,
    /// Largest `offset` accepted.
    pub offset_max: u64,
}

/// A number, or a word where there is none (`n/a`, `unlimited`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Quota {
    Number(u64),
    Text(&'static str),
}

fn next_midnight(now: u64) -> u64 {
    (now / 86_400 + 1) * 86_400
}

//---- keys file -------------------------------------------------------------

/// Parses a keys file: `sha256hex [quota=N] [burst=N/SECONDS]` per line,
/// `#` comments. Errors name the line.
pub fn parse_keys_file(text: &str) -> Result<HashMap<String, Limits>, String> {
    let mut keys = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", number + 1);
        let mut fields = line.split_whitespace();
        let digest = fields.next().unwrap_or("").to_ascii_lowercase();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected a SHA-256 digest (64 hex digits)"));
        }
        let mut limits = Limits::default();
        for field in fields {
            if !limits.parse_field(field).map_err(|what| bad(&what))? {
                return Err(bad(&format!("unknown field {field:?}")));
            }
        }
        keys.insert(digest, limits);
    }
    Ok(keys)
}

/// Modification time and size of the keys file when last read.
type FileStamp = Option<(SystemTime, u64)>;

/// The keys file, reloaded when its modification time or size changes.
pub(super) struct KeyRegistry {
    path: Option<PathBuf>,
    loaded: Mutex<(FileStamp, Arc<HashMap<String, Limits>>)>,
}

impl KeyRegistry {
    pub(super) fn new(path: Option<PathBuf>) -> KeyRegistry {
        KeyRegistry {
            path,
            loaded: Mutex::new((None, Arc::new(HashMap::new()))),
        }
    }

    /// The current keys, reloading the file if it changed (a file that does
    /// not parse keeps the previous keys).
    pub(super) fn current(&self) -> Arc<HashMap<String, Limits>> {
        let Ok(mut loaded) = self.loaded.lock() else {
            return Arc::new(HashMap::new());
        };
        let Some(path) = &self.path else {
            return loaded.1.clone();
        };
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_some() && stamp != loaded.0 {
            loaded.0 = stamp;
            match std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_keys_file(&t))
            {
                Ok(keys) => {
                    tracing::info!(file = %path.display(), keys = keys.len(), "DNSDB keys file loaded");
                    loaded.1 = Arc::new(keys);
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "DNSDB keys file not loaded; keeping the previous keys")
                }
            }
        }
        loaded.1.clone()
    }
}

/// The key's name in the quota ledger.
fn identity(digest: &str) -> String {
    format!("dnsdb:{digest}")
}

impl Dnsdb {
    /// Counts one lookup against the key's quotas, or 429.
    pub(super) fn charge(&self, key: &str) -> Result<(), Failure> {
        let Some(limits) = self.keys.current().get(key).copied() else {
            return Ok(());
        };
        self.app
            .quotas
            .charge(&identity(key), limits, now())
            .map_err(|exceeded| {
                let message = match exceeded {
                    QuotaExceeded::Daily => "daily quota exceeded",
                    QuotaExceeded::Burst => "burst quota exceeded",
                };
                Failure(StatusCode::TOO_MANY_REQUESTS, message.into())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_files() {
        let keys = parse_keys_file(&format!(
            "# comment\n{} quota=5 burst=2/60\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(
            keys.values().next(),
            Some(&Limits {
                quota: Some(5),
                burst: Some((2, 60))
            })
        );
        assert!(parse_keys_file("nothex").unwrap_err().starts_with("line 1"));
    }
}

//! `[store] kind = "redis"`: where the D4 database is and how to write it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default most entries in one pipeline.
pub const DEFAULT_PIPELINE_ENTRIES: usize = 2_000;
/// Default attempts of one batch before the write fails.
pub const DEFAULT_WRITE_ATTEMPTS: u32 = 12;
/// Default first pause between attempts; it doubles up to
/// [`MAX_RETRY_BACKOFF_MS`].
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 100;
/// Longest pause between attempts.
pub const MAX_RETRY_BACKOFF_MS: u64 = 2_000;
/// Default longest `WAIT` for replicas.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 1_000;
/// Default connect and response timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// One URL or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    /// `url = "redis://127.0.0.1:6400/0"`
    One(String),
    /// `url = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]`
    Many(Vec<String>),
}

impl Urls {
    /// The URLs as a list.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Urls::One(url) => std::slice::from_ref(url),
            Urls::Many(urls) => urls,
        }
    }
}

/// How the Redis backend connects and writes.
///
/// ```toml
/// [store]
/// kind = "redis"
/// url = "redis://127.0.0.1:6400/0"      # or several seed nodes of a cluster
/// expiration = { "16" = 24000, "99" = 26000 }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// A single server (`redis://host:port/db`; D4 uses port 6400, db 0),
    /// or seed nodes of a Redis Cluster (several URLs; a single URL whose
    /// server has cluster mode on is a seed too). `rediss://` for TLS is
    /// not built in.
    pub url: Urls,
    /// D4's `[expiration]`: rrtype number → seconds. Every sighting of a
    /// record of that type sets the TTL of its `r:`, `v:`, `s:`, `l:` and
    /// `o:` keys again (a sliding TTL; D4 forgets `l:`). D4's sample uses
    /// `16 = 24000` and `99 = 26000`. Default: nothing expires.
    #[serde(default)]
    pub expiration: BTreeMap<u16, u64>,
    /// Most entries sent in one pipeline (default 2,000).
    #[serde(default = "default_pipeline_entries")]
    pub pipeline_entries: usize,
    /// Attempts of a batch before `write` fails with an error (the caller
    /// keeps the batch); between attempts the connection is rebuilt, so a
    /// failover of a cluster is ridden out (default 12, about 15 s).
    #[serde(default = "default_write_attempts")]
    pub write_attempts: u32,
    /// First pause between attempts in milliseconds, doubled each time up
    /// to 2 s (default 100).
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Connect and response timeout in milliseconds (default 5,000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// After each batch, wait until this many replicas of every master
    /// that took writes acknowledge them (`WAIT`), so a master lost right
    /// after a batch does not take it along (Redis replicates
    /// asynchronously). Default 0: no wait.
    #[serde(default)]
    pub wait_replicas: u32,
    /// How long one `WAIT` may block, in milliseconds (default 1,000). A
    /// shortfall (a master that lost its replica) is counted and logged,
    /// not an error: the batch is on the master.
    #[serde(default = "default_wait_timeout_ms")]
    pub wait_timeout_ms: u64,
}

fn default_pipeline_entries() -> usize {
    DEFAULT_PIPELINE_ENTRIES
}
fn default_write_attempts() -> u32 {
    DEFAULT_WRITE_ATTEMPTS
}
fn default_retry_backoff_ms() -> u64 {
    DEFAULT_RETRY_BACKOFF_MS
}
fn default_wait_timeout_ms() -> u64 {
    DEFAULT_WAIT_TIMEOUT_MS
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl RedisConfig {
    /// A configuration with every default for `url`.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: Urls::One(url.into()),
            expiration: BTreeMap::new(),
            pipeline_entries: DEFAULT_PIPELINE_ENTRIES,
            write_attempts: DEFAULT_WRITE_ATTEMPTS,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            wait_replicas: 0,
            wait_timeout_ms: DEFAULT_WAIT_TIMEOUT_MS,
        }
    }

    /// Seed nodes of a cluster.
    pub fn cluster(urls: impl IntoIterator<Item = impl Into<String>>) -> RedisConfig {
        RedisConfig {
            url: Urls::Many(urls.into_iter().map(Into::into).collect()),
            ..RedisConfig::new(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrapper {
        store: RedisConfig,
    }

    #[test]
    fn documented_example_parses() {
        let text = r#"
            [store]
            url = "redis://127.0.0.1:6400/0"
            expiration = { "16" = 24000, "99" = 26000 }
        "#;
        let config: Wrapper = toml::from_str(text).unwrap();
        assert_eq!(config.store.url.as_slice(), ["redis://127.0.0.1:6400/0"]);
        assert_eq!(config.store.expiration.get(&16), Some(&24000));
        assert_eq!(config.store.write_attempts, DEFAULT_WRITE_ATTEMPTS);
    }

    #[test]
    fn several_seeds_and_unknown_keys() {
        let config: RedisConfig =
            toml::from_str(r#"url = ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]"#)
                .unwrap();
        assert_eq!(config.url.as_slice().len(), 2);
        let error = toml::from_str::<RedisConfig>("url = \"redis://x\"\nurls = 1").unwrap_err();
        assert!(error.to_string().contains("urls"), "{error}");
    }
}

//! dnsrecall-store: the store backends behind the
//! [`dnsrecall_core::store::Store`] trait, and the one place that picks
//! one from the configuration ([`open`]).
//!
//! Each backend lives in its own module (`rocksdb/`) or crate (`redis`:
//! `dnsrecall-redis`, the D4 key schema) and owns
//! everything engine-specific: on-disk layout, write chunking, how a second
//! process follows a writer (RocksDB: a secondary instance), compaction and
//! retention. Callers see a [`Backend`] (a `Store` plus the administrative
//! operations every backend answers) and never name a backend type.
//!
//! Adding a backend: a module (or crate) implementing [`Backend`], one
//! [`StoreKind`] variant (the `[store] kind` value) and one arm in [`open`].
//!
//! It knows nothing of HTTP, DNS wire parsing beyond the record model, or
//! where records come from.

pub mod rocksdb;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dnsrecall_core::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub use dnsrecall_redis::{RedisConfig, RedisStore, Urls as RedisUrls};

pub use crate::rocksdb::{
    Corrupt, OpenMode, RecentNames, RocksConfig, RocksStore, SCHEMA_VERSION, keys,
};

/// `[store] kind`: which backend holds the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded RocksDB store in the data directory (the default).
    #[default]
    Rocksdb,
    /// A Redis/kvrocks server or a Redis Cluster in D4's key schema
    /// (`dnsrecall-redis`; `[store] url = ...`). Exact lookups only.
    Redis,
}

/// Everything [`open`] needs: the backend and its settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Data directory of an embedded backend.
    pub data_dir: PathBuf,
    /// RocksDB tuning (used when `kind` is `rocksdb`).
    pub rocksdb: RocksConfig,
    /// Where the D4 database is (required when `kind` is `redis`).
    pub redis: Option<RedisConfig>,
}

/// How this process uses the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The one writer (ingest, import, compaction).
    Writer,
    /// A read-only view that works while another process writes (CLI
    /// `query`, `export`, `annotate`); [`Store::refresh`] catches up.
    Follower,
}

/// A store the caller can use without knowing which backend it is.
pub trait Backend: Store {
    /// Reclaims space and applies retention (RocksDB: a full compaction
    /// of every column family). Backends with nothing to do return `Ok`.
    fn compact(&self) -> Result<(), StoreError>;
}

impl Backend for RocksStore {
    fn compact(&self) -> Result<(), StoreError> {
        RocksStore::compact(self)
    }
}

impl Backend for RedisStore {
    /// Nothing to do: expiry is the server's (`[store] expiration`), and
    /// memory is reclaimed by Redis itself.
    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A follower was asked for a store no writer has created yet: read it
    /// as "nothing stored".
    #[error("store not yet created: no dnsrecall data in {}", .0.display())]
    NotCreated(PathBuf),
    /// The backend failed to open.
    #[error("cannot open the {kind:?} store in {}: {source}", dir.display())]
    Backend {
        kind: StoreKind,
        dir: PathBuf,
        source: StoreError,
    },
    /// The Redis server (or cluster) did not answer or refused.
    #[error("cannot open the redis store at {urls}: {source}")]
    Redis { urls: String, source: StoreError },
    /// `kind = "redis"` without `url`.
    #[error(
        "[store] kind = \"redis\" needs url = \"redis://host:port/db\" (or a list of cluster seed nodes)"
    )]
    MissingRedisUrl,
}

/// Opens the configured backend. The one place where backends are named.
///
/// Dropping the last handle closes the backend (a writer flushes first; a
/// follower removes its private state).
pub fn open(config: &StoreConfig, access: Access) -> Result<Arc<dyn Backend>, OpenError> {
    let failed = |source| OpenError::Backend {
        kind: config.kind,
        dir: config.data_dir.clone(),
        source,
    };
    match config.kind {
        StoreKind::Rocksdb => open_rocksdb(config, access, &config.data_dir).map_err(|e| match e {
            RocksOpen::NotCreated => OpenError::NotCreated(config.data_dir.clone()),
            RocksOpen::Store(error) => failed(error),
        }),
        // Redis has no follower mode: a reader is just another client.
        StoreKind::Redis => {
            let redis = config.redis.as_ref().ok_or(OpenError::MissingRedisUrl)?;
            let store = RedisStore::open(redis).map_err(|source| OpenError::Redis {
                urls: redis.url.as_slice().join(", "),
                source,
            })?;
            Ok(Arc::new(store))
        }
    }
}

enum RocksOpen {
    NotCreated,
    Store(StoreError),
}

fn open_rocksdb(
    config: &StoreConfig,
    access: Access,
    dir: &Path,
) -> Result<Arc<dyn Backend>, RocksOpen> {
    match access {
        Access::Writer => {
            let store = RocksStore::open(dir, OpenMode::ReadWrite, &config.rocksdb)
                .map_err(RocksOpen::Store)?;
            Ok(Arc::new(store))
        }
        Access::Follower => {
            if !dir.join("CURRENT").exists() {
                return Err(RocksOpen::NotCreated);
            }
            let secondary =
                std::env::temp_dir().join(format!("dnsrecall-follower-{}", std::process::id()));
            let store = RocksStore::open(
                dir,
                OpenMode::Follower {
                    secondary_dir: secondary.clone(),
                },
                &config.rocksdb,
            )
            .and_then(|store| store.refresh().map(|()| store));
            match store {
                Ok(mut store) => {
                    store.remove_on_close(secondary);
                    Ok(Arc::new(store))
                }
                Err(error) => {
                    let _ = std::fs::remove_dir_all(&secondary);
                    Err(RocksOpen::Store(error))
                }
            }
        }
    }
}

//! dnsrecall-redis: the D4/CIRCL world. A store backend that reads and
//! writes a Redis or kvrocks database — one server or a Redis Cluster — in
//! the key schema of D4's analyzer-d4-passivedns, so D4's own COF server and
//! dnsrecall can serve the same data.
//!
//! It owns the D4 key schema ([`keys`]: `r:`, `v:`, `s:`, `l:`, `o:`,
//! `dist:*`, `stats:*`, `sensors:seen`), the store ([`RedisStore`], the core
//! [`Store`](dnsrecall_core::store::Store) trait: first seen kept as a
//! minimum and last seen as a maximum by a server-side script whatever the
//! arrival order and number of writers, counts added, pipelined writes,
//! failed attempts retried on a fresh connection and counted) and its
//! configuration ([`RedisConfig`]); and the D4 analyzer queue input
//! ([`queue::D4Queue`]: passivedns lines from `analyzer:<type>:<uuid>`,
//! moved into a processing list and removed only once stored); and the COF
//! websocket input ([`websocket::run`], reconnecting, bad lines counted);
//! migration between any two stores ([`migrate::copy_all`]); folding of
//! repeated records within a batch ([`fold::fold_duplicates`]).
//!
//! It must not know RocksDB, HTTP or the command line: the binary chooses
//! the backend from `[store] kind` and the query engine only sees the trait.
//! Lookups the schema cannot answer (wildcards, address ranges, raw rdata,
//! bailiwick filters) fail with
//! [`StoreError::Unsupported`](dnsrecall_core::store::StoreError::Unsupported)
//! naming the rocksdb backend, never with a silently empty answer.

pub mod config;
pub mod fold;
pub mod keys;
pub mod migrate;
pub mod queue;
pub mod store;
pub mod websocket;

pub use config::{RedisConfig, Urls};
pub use queue::{D4Queue, D4QueueConfig};
pub use store::{RedisCounters, RedisStore};

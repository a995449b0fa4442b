//! dnsrecall-pipeline: the ingest stages between sources and sinks.
//!
//! It owns what happens to observations after decoding and before storage:
//!
//! 1. [`filter`]: allow and deny lists on record names, query names, record
//!    types, sensors and client/server prefixes, loaded from files, swapped
//!    atomically and reloaded on demand or when the files change;
//! 2. [`bailiwick`]: which zone vouched for each record, from dnstap
//!    `query_zone` when the sensor is the resolver, otherwise reconstructed
//!    from the NS and glue records seen so far (`reference/dnsdb.md` §3.3);
//! 3. [`dedup`]: a cache bounded by entries and bytes that folds repeated
//!    sightings of a record into one [`Entry`](dnsrecall_core::Entry) and
//!    hands the totals on when it evicts, on an interval flush and at
//!    shutdown (`reference/dnsdb.md` §3.4);
//! 4. [`Pipeline`]: the three stages in that order, fed one response (or one
//!    batch of imported records) at a time.
//!
//! Every stage counts what came in, what went out and what it dropped and
//! why, in atomics a metrics exporter can read from another thread
//! ([`metrics`]).
//!
//! It must not know about storage engines, network protocols, HTTP or the
//! command line: sources hand it decoded entries with a [`ResponseMeta`] per
//! response (a [`Batch`]), and whatever it emits goes to a `Vec<Entry>` the
//! caller passes to a sink.

pub mod bailiwick;
pub mod dedup;
mod error;
pub mod filter;
mod hash;
mod meta;
pub mod metrics;
mod pipeline;

pub use bailiwick::{BailiwickConfig, BailiwickVerifier, Hints};
pub use dedup::{DedupCache, DedupConfig};
pub use error::Error;
pub use filter::{DropReason, FilterConfig, FilterHandle, FilterReloader, FilterSet};
pub use meta::ResponseMeta;
pub use metrics::MetricSample;
pub use pipeline::{Batch, Pipeline, PipelineConfig, PipelineMetrics};

//! The record output contract: what receives the records the ingest
//! pipeline releases (after filters, bailiwick verification and
//! de-duplication). The store is one record sink; a record stream to a
//! message bus is another. The pipeline driver of `dnsrecall-ingest` writes
//! every chunk it releases to each of its sinks in turn.

use crate::record::Entry;
use crate::store::StoreError;

/// A record sink failure, naming the sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The store behind a store sink failed.
    #[error("record sink {sink}: {source}")]
    Store {
        sink: String,
        #[source]
        source: StoreError,
    },
    /// Any other sink's failure (a peer gone, a full disk), in its words.
    #[error("record sink {sink}: {reason}")]
    Other { sink: String, reason: String },
}

/// Receives what the pipeline emits: chunks of de-duplicated records, each
/// entry carrying its merged sightings.
///
/// Several threads call [`write`](RecordSink::write) at once (the driver
/// runs a few sink threads), and chunks arrive in any order: sightings
/// merge commutatively (min, max, sum), so a sink must not rely on order.
/// `write` is the hot path of every ingest: a sink that may be slow (a
/// network peer) keeps its own bounded queue and counts what it drops in
/// the metrics registry instead of blocking; an error returned from `write`
/// stops the ingest, so it is for failures that make going on pointless
/// (the store's disk).
pub trait RecordSink: Send + Sync + 'static {
    /// A short name for logs and errors (`store`, `kafka:topic`).
    fn name(&self) -> &str;
    /// Takes one chunk of records.
    fn write(&self, entries: &[Entry]) -> Result<(), SinkError>;
    /// Called once after the last `write`: make everything written durable
    /// or delivered.
    fn flush(&self) -> Result<(), SinkError>;
}

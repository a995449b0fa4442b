//! dnsrecall-ingest: everything between a DNS event and the store.
//!
//! It owns the inputs ([`inputs`]: dnstap, capture, the D4 analyzer queue,
//! COF over a websocket, line and file importers,
//! each with its config type and started through one registry), the one
//! step that turns a [`DnsMessage`](dnsrecall_core::message::DnsMessage)
//! into a batch of entries ([`decode`], shared by dnstap and capture), the
//! mapping of native events onto that message ([`message`]), the message
//! outputs ([`outputs`]: every decoded message, any input, through bounded
//! queues with counted drops; `kind = "file"` logs today), the pipeline
//! driver ([`driver`]: the writer, ticker and sink threads that run
//! filters, bailiwick verification and de-duplication) and the record sinks
//! it writes what it releases to ([`sinks`]: any
//! [`Store`](dnsrecall_core::store::Store) through [`sinks::store`]; the
//! trait is [`RecordSink`](dnsrecall_core::sink::RecordSink)).
//!
//! It must not know the HTTP crate, the CLI, or which store backend it
//! writes to; it registers its counters in the metrics registry it is given.

pub mod decode;
pub mod driver;
pub mod inputs;
pub mod message;
pub mod outputs;
pub mod sinks;

use std::sync::Arc;

use dnsrecall_pipeline::Batch;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a running input is handed.
#[derive(Clone)]
pub struct IngestContext {
    /// Batches of entries to store; `None` in pure collector mode.
    pub entries: Option<mpsc::Sender<Batch>>,
    /// The store itself, for inputs that must know when their records are
    /// stored (the D4 queue commits a batch only after its write); `None`
    /// in pure collector mode. Other inputs send through `entries`.
    pub store: Option<Arc<dyn dnsrecall_core::store::Store>>,
    /// Cancelled on SIGINT/SIGTERM: stop accepting, drain, return.
    pub shutdown: CancellationToken,
    /// Where an input registers its counters for `/metrics`.
    pub metrics: Arc<dnsrecall_metrics::Registry>,
    /// Where every decoded DNS message goes (besides the store).
    pub outputs: outputs::MessageOutputs,
}

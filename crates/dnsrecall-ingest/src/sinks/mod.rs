//! Record sinks: what receives the records the pipeline releases (after
//! filters, bailiwick verification and de-duplication). The trait is
//! [`RecordSink`] in `dnsrecall-core` (so a backend crate can implement it
//! knowing only the record model); the sinks live here, one file each:
//! [`store::StoreSink`] merges into any [`Store`](dnsrecall_core::store::Store).
//!
//! Adding one (a record stream to a bus): `sinks/<kind>.rs` implementing
//! [`RecordSink`], non-blocking on its hot path (a bounded queue of its own,
//! drops counted in the metrics registry), and pushed onto the
//! [`RecordSinks`] the binary hands to
//! [`StoreWriter::start_sinks`](crate::driver::StoreWriter::start_sinks).

pub mod store;

use std::sync::Arc;

use dnsrecall_core::Entry;
pub use dnsrecall_core::sink::{RecordSink, SinkError};

/// The sinks the driver writes every released chunk to, in order.
#[derive(Clone, Default)]
pub struct RecordSinks {
    sinks: Vec<Arc<dyn RecordSink>>,
}

impl RecordSinks {
    /// No sinks (a pure collector: the pipeline runs, nothing is kept).
    pub fn new() -> RecordSinks {
        RecordSinks::default()
    }

    /// Adds a sink after the ones already there.
    pub fn push(&mut self, sink: Arc<dyn RecordSink>) -> &mut RecordSinks {
        self.sinks.push(sink);
        self
    }

    /// How many sinks there are.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Writes one chunk to every sink; stops at the first failure.
    pub fn write(&self, entries: &[Entry]) -> Result<(), SinkError> {
        // One sink (the store) is the common case: no loop overhead worth
        // special-casing, a slice iteration of one element.
        for sink in &self.sinks {
            sink.write(entries)?;
        }
        Ok(())
    }

    /// Flushes every sink (each is tried; the first failure is returned).
    pub fn flush(&self) -> Result<(), SinkError> {
        let mut first = None;
        for sink in &self.sinks {
            if let Err(error) = sink.flush() {
                tracing::warn!(sink = sink.name(), %error, "record sink flush failed");
                first.get_or_insert(error);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The sinks' names, for logs.
    pub fn names(&self) -> Vec<&str> {
        self.sinks.iter().map(|sink| sink.name()).collect()
    }
}

impl FromIterator<Arc<dyn RecordSink>> for RecordSinks {
    fn from_iter<I: IntoIterator<Item = Arc<dyn RecordSink>>>(sinks: I) -> RecordSinks {
        RecordSinks {
            sinks: sinks.into_iter().collect(),
        }
    }
}

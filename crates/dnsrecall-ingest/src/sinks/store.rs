//! The store as a record sink: every chunk is merged into a
//! [`Store`] (any backend: RocksDB, Redis), and the final flush makes it
//! durable.

use std::sync::Arc;

use dnsrecall_core::Entry;
use dnsrecall_core::sink::{RecordSink, SinkError};
use dnsrecall_core::store::Store;

/// Merges what the pipeline releases into a store.
pub struct StoreSink {
    store: Arc<dyn Store>,
}

impl StoreSink {
    pub fn new(store: Arc<dyn Store>) -> StoreSink {
        StoreSink { store }
    }
}

impl RecordSink for StoreSink {
    fn name(&self) -> &str {
        "store"
    }

    fn write(&self, entries: &[Entry]) -> Result<(), SinkError> {
        self.store
            .write(entries)
            .map_err(|source| SinkError::Store {
                sink: "store (write)".to_string(),
                source,
            })
    }

    fn flush(&self) -> Result<(), SinkError> {
        self.store.flush().map_err(|source| SinkError::Store {
            sink: "store (flush)".to_string(),
            source,
        })
    }
}

//! Stage counters.
//!
//! Each stage keeps its counters in a plain struct of [`Counter`]s (the
//! workspace's one counter type, from `dnsrecall-metrics`) behind an
//! `Arc`, so an exporter on another thread can read them while the stage
//! runs. A stage is driven by one thread, so counters on the hot path are
//! bumped with [`Counter::add`] (a relaxed load and store); counters
//! shared between threads (the filter reloader's) use
//! [`Counter::add_shared`].

/// One exported value: metric name (Prometheus style, counters end in
/// `_total`), help text and value.
pub use dnsrecall_metrics::LegacySample as MetricSample;

pub use dnsrecall_metrics::Counter;

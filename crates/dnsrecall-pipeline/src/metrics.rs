//! Stage counters.
//!
//! Each stage keeps its counters in a plain struct of [`Counter`]s behind an
//! `Arc`, so an exporter on another thread can read them while the stage
//! runs. A stage is driven by one thread, so counters on the hot path are
//! bumped with a relaxed load and store rather than a locked read-modify-
//! write: a plain `mov` on x86-64, which matters at millions of entries per
//! second. Counters shared between threads (the filter reloader's) use
//! [`Counter::add_shared`].

use std::sync::atomic::{AtomicU64, Ordering};

/// One exported value: metric name (Prometheus style, counters end in
/// `_total`), help text and value.
pub type MetricSample = (&'static str, &'static str, u64);

/// A counter or gauge readable from any thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the single thread that owns the stage may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds `n` from any thread.
    #[inline]
    pub fn add_shared(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

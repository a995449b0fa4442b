//! Where entries come from. Each source turns its input into batches
//! ([`Batch`]: entries, and the response metadata they came with) sent to
//! the store writer's pipeline, and never talks to the store directly.

pub mod capture;
pub mod dnstap;
pub mod lines;

use dnsrecall_pipeline::Batch;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a running source is handed by `serve`.
#[derive(Clone)]
pub struct SourceContext {
    /// Batches of entries to store; `None` in pure collector mode.
    pub entries: Option<mpsc::Sender<Batch>>,
    /// Cancelled on SIGINT/SIGTERM: stop accepting, drain, return.
    pub shutdown: CancellationToken,
    /// Where a source registers its counters for `/metrics`.
    pub metrics: std::sync::Arc<dnsrecall_metrics::Registry>,
}

/// The shape of a binary file importer (`dnstap`, `capture`): a
/// decompressed reader in, batches of entries out, counts in `stats`.
pub type ImportReader = fn(
    Box<dyn std::io::BufRead + Send>,
    &std::path::Path,
    &lines::LineParser,
    usize,
    &mut lines::LineStats,
    &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()>;

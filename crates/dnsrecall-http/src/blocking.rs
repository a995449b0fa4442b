//! Store reads off the async workers.

use crate::ApiError;

/// Runs a blocking store read on the blocking pool.
///
/// At most one store read per core runs at a time: with a blocking thread
/// per request, 16 concurrent clients meant ~45 threads on 2 cores and a p99
/// dominated by scheduling (bench/runs/2026-11-22-vm/NOTES.md); queued
/// requests wait on the semaphore instead, cheaply.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    static READERS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let readers = READERS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _permit = readers.acquire().await.map_err(|_| ApiError::Task)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::Task)?
}

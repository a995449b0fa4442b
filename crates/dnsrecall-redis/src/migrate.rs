//! Migration both ways between any two stores: a D4 database into
//! RocksDB (`import` from D4) or any store into a D4 database (`export` to
//! D4), through the `Store` trait only.

use std::ops::ControlFlow;

use dnsrecall_core::Entry;
use dnsrecall_core::store::{Store, StoreError};

/// What a copy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Records read from the source and written to the destination.
    pub records: u64,
    /// Sightings they carry (sum of counts).
    pub observations: u64,
    /// Batches written.
    pub batches: u64,
}

/// Copies every record of `from` into `to` in batches of `batch_size`,
/// calling `progress` with the records copied so far after each batch (for
/// a progress bar). Writes merge, so copying into a store that already has
/// some of the records adds their counts and widens their times. Stops at
/// the first error of either store, after the batches already written.
pub fn copy_all(
    from: &dyn Store,
    to: &dyn Store,
    batch_size: usize,
    progress: &mut dyn FnMut(&CopySummary),
) -> Result<CopySummary, StoreError> {
    let batch_size = batch_size.max(1);
    let mut summary = CopySummary::default();
    let mut batch: Vec<Entry> = Vec::with_capacity(batch_size);
    let mut failure = None;
    let mut flush = |batch: &mut Vec<Entry>, summary: &mut CopySummary| {
        to.write(batch)?;
        summary.records += batch.len() as u64;
        summary.observations += batch.iter().map(|e| e.seen.count).sum::<u64>();
        summary.batches += 1;
        batch.clear();
        progress(summary);
        Ok::<(), StoreError>(())
    };
    from.scan_all(&mut |entry: Entry| {
        batch.push(entry);
        if batch.len() >= batch_size
            && let Err(error) = flush(&mut batch, &mut summary)
        {
            failure = Some(error);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    if let Some(error) = failure {
        return Err(error);
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut summary)?;
    }
    to.flush()?;
    Ok(summary)
}

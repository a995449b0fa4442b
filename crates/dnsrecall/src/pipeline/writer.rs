//! The store writer: one thread that receives batches of entries over a
//! bounded channel (back-pressure instead of unbounded memory), runs them
//! through the ingest pipeline (filters, then the bounded de-duplication
//! cache) and merges what the cache releases into the store.
//!
//! The cache releases an entry when it is evicted (memory bound), when it
//! has been held `dedup.flush_interval_secs` (a ticker thread sends empty
//! batches once a second for that), and at shutdown. A `kill -9` therefore
//! loses at most the sightings of the last flush interval.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use dnsrecall_core::Entry;
use dnsrecall_core::store::Store;
use dnsrecall_pipeline::{FilterReloader, Pipeline, PipelineConfig};
use tokio::sync::mpsc;

/// Batches in flight between sources and the writer.
const CHANNEL_BATCHES: usize = 8;
/// Entries per store write.
const WRITE_BATCH: usize = 20_000;

/// What the writer did.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriterStats {
    /// Entries received.
    pub entries: u64,
    /// Records merged into the store (after de-duplication).
    pub writes: u64,
    /// Store write calls.
    pub batches: u64,
}

/// A running writer.
pub struct StoreWriter {
    sender: mpsc::Sender<Vec<Entry>>,
    thread: JoinHandle<anyhow::Result<WriterStats>>,
    ticker: Option<JoinHandle<()>>,
    metrics: dnsrecall_pipeline::PipelineMetrics,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl StoreWriter {
    /// Starts the writer thread (and its ticker).
    pub fn start(
        store: Arc<dyn Store>,
        config: &PipelineConfig,
        filters: &FilterReloader,
    ) -> anyhow::Result<StoreWriter> {
        let (sender, mut receiver) = mpsc::channel::<Vec<Entry>>(CHANNEL_BATCHES);
        let mut pipeline =
            Pipeline::with_filter_metrics(config, filters.handle(), filters.metrics())
                .context("building the ingest pipeline")?;
        let metrics = pipeline.metrics();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let mut stats = WriterStats::default();
                let mut out: Vec<Entry> = Vec::with_capacity(WRITE_BATCH);
                let write = |out: &mut Vec<Entry>, stats: &mut WriterStats| -> anyhow::Result<()> {
                    // Bounded batches: a flush of the whole cache must not
                    // become one giant RocksDB write batch.
                    for chunk in out.chunks(WRITE_BATCH) {
                        store.write(chunk).context("writing to the store")?;
                        stats.writes += chunk.len() as u64;
                        stats.batches += 1;
                    }
                    out.clear();
                    Ok(())
                };
                while let Some(entries) = receiver.blocking_recv() {
                    if entries.is_empty() {
                        pipeline.tick(now(), &mut out);
                        write(&mut out, &mut stats)?;
                        continue;
                    }
                    stats.entries += entries.len() as u64;
                    // The filter's sensor rules apply per run of one sensor.
                    let mut entries = entries.into_iter().peekable();
                    while let Some(first) = entries.next() {
                        let sensor = first.seen.sensor_id.clone();
                        let mut run = vec![first];
                        while let Some(next) = entries.next_if(|e| e.seen.sensor_id == sensor) {
                            run.push(next);
                        }
                        pipeline.process_records(run, sensor.as_deref(), &mut out);
                    }
                    if out.len() >= WRITE_BATCH {
                        write(&mut out, &mut stats)?;
                    }
                }
                pipeline.finish(&mut out);
                write(&mut out, &mut stats)?;
                store.flush().context("flushing the store")?;
                Ok(stats)
            })
            .context("cannot start the store writer thread")?;
        let weak = sender.downgrade();
        let ticker = std::thread::Builder::new()
            .name("pipeline-ticker".into())
            .spawn(move || {
                loop {
                    // Parked rather than slept, so `finish` can wake it.
                    std::thread::park_timeout(Duration::from_secs(1));
                    // Stops once every sender is gone (the writer is finishing).
                    let Some(sender) = weak.upgrade() else { break };
                    if sender.blocking_send(Vec::new()).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the pipeline ticker thread")?;
        Ok(StoreWriter {
            sender,
            thread,
            ticker: Some(ticker),
            metrics,
        })
    }

    /// A handle sources use to send batches.
    pub fn sender(&self) -> mpsc::Sender<Vec<Entry>> {
        self.sender.clone()
    }

    /// The pipeline's counters.
    pub fn metrics(&self) -> dnsrecall_pipeline::PipelineMetrics {
        self.metrics.clone()
    }

    /// Closes the channel (once every other sender is dropped), waits for
    /// the last write and the flush.
    pub fn finish(mut self) -> anyhow::Result<WriterStats> {
        drop(self.sender);
        if let Some(ticker) = &self.ticker {
            ticker.thread().unpark();
        }
        let result = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the store writer thread panicked"))?;
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        result
    }
}

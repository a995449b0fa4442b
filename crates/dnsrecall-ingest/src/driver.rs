//! The pipeline driver (the store writer): one thread that receives batches of entries over a
//! bounded channel (back-pressure instead of unbounded memory) and runs them
//! through the ingest pipeline (filters, bailiwick verification, then the
//! bounded de-duplication cache), and `SINK_THREADS` sink threads that merge
//! what the cache releases into the store. They overlap: de-duplication of
//! the next batch runs while RocksDB inserts earlier chunks (a bounded
//! hand-over of `SINK_CHUNKS` chunks of `WRITE_BATCH` entries). Two sinks,
//! because the memtable inserts were the single busiest thread of an ingest
//! (profiled on the dnstap bench) and RocksDB runs concurrent writers'
//! memtable inserts in parallel; merges commute, so chunk order is free.
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
use dnsrecall_pipeline::{Batch, FilterReloader, Pipeline, PipelineConfig};
use tokio::sync::mpsc;

/// Batches in flight between sources and the writer.
const CHANNEL_BATCHES: usize = 8;
/// Entries per store write.
const WRITE_BATCH: usize = 20_000;
/// Chunks waiting for a sink thread.
const SINK_CHUNKS: usize = 2;
/// Threads writing chunks to the store.
const SINK_THREADS: usize = 2;

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
    sender: mpsc::Sender<Batch>,
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
        let (sender, mut receiver) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
        let mut pipeline =
            Pipeline::with_filter_metrics(config, filters.handle(), filters.metrics())
                .context("building the ingest pipeline")?;
        let metrics = pipeline.metrics();
        let (chunks, chunk_receiver) = std::sync::mpsc::sync_channel::<Vec<Entry>>(SINK_CHUNKS);
        let chunk_receiver = Arc::new(std::sync::Mutex::new(chunk_receiver));
        let mut sinks = Vec::with_capacity(SINK_THREADS);
        for number in 0..SINK_THREADS {
            let sink_store = Arc::clone(&store);
            let chunk_receiver = Arc::clone(&chunk_receiver);
            let sink = std::thread::Builder::new()
                .name(format!("store-sink-{number}"))
                .spawn(move || -> anyhow::Result<()> {
                    loop {
                        // The lock is held only to take one chunk.
                        let next = match chunk_receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => anyhow::bail!("another store sink thread panicked"),
                        };
                        let Ok(chunk) = next else { return Ok(()) };
                        sink_store.write(&chunk).context("writing to the store")?;
                    }
                })
                .context("cannot start a store sink thread")?;
            sinks.push(sink);
        }
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let mut stats = WriterStats::default();
                let mut out: Vec<Entry> = Vec::with_capacity(WRITE_BATCH);
                // Bounded chunks: a flush of the whole cache must not become
                // one giant RocksDB write batch.
                let write = |out: &mut Vec<Entry>, stats: &mut WriterStats| -> bool {
                    let mut drained = out.drain(..);
                    loop {
                        let chunk: Vec<Entry> = drained.by_ref().take(WRITE_BATCH).collect();
                        if chunk.is_empty() {
                            return true;
                        }
                        stats.writes += chunk.len() as u64;
                        stats.batches += 1;
                        if chunks.send(chunk).is_err() {
                            // The sink stopped on an error: reported below.
                            return false;
                        }
                    }
                };
                let mut sink_alive = true;
                while let Some(batch) = receiver.blocking_recv() {
                    if batch.is_empty() {
                        // In steps, so at most one chunk waits here while
                        // the sinks work (entries inserted in the same
                        // second all come due together).
                        let now = now();
                        loop {
                            let full =
                                pipeline.tick_at_most(now, WRITE_BATCH, &mut out) == WRITE_BATCH;
                            sink_alive = write(&mut out, &mut stats);
                            if !full || !sink_alive {
                                break;
                            }
                        }
                    } else {
                        stats.entries += batch.len() as u64;
                        pipeline.process_batch(batch, &mut out);
                        if out.len() >= WRITE_BATCH {
                            sink_alive = write(&mut out, &mut stats);
                        }
                    }
                    if !sink_alive {
                        break;
                    }
                }
                let started = std::time::Instant::now();
                if sink_alive {
                    tracing::debug!(entries = pipeline.dedup().len(), "draining the dedup cache");
                    // The first round also writes what the last batch left.
                    loop {
                        let more = pipeline.finish_at_most(WRITE_BATCH, &mut out) > 0;
                        if !write(&mut out, &mut stats) || !more {
                            break;
                        }
                    }
                }
                drop(chunks);
                for sink in sinks {
                    sink.join()
                        .map_err(|_| anyhow::anyhow!("a store sink thread panicked"))??;
                }
                let drained = started.elapsed();
                store.flush().context("flushing the store")?;
                tracing::debug!(
                    drain_ms = drained.as_millis() as u64,
                    flush_ms = (started.elapsed() - drained).as_millis() as u64,
                    "store writer drained and flushed"
                );
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
                    if sender.blocking_send(Batch::default()).is_err() {
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
    pub fn sender(&self) -> mpsc::Sender<Batch> {
        self.sender.clone()
    }

    /// The pipeline's counters.
    /// Registers the pipeline's counters (filters, bailiwick, de-duplication).
    pub fn register_metrics(&self, registry: &dnsrecall_metrics::Registry) {
        let metrics = self.metrics.clone();
        registry.register_samples(move || metrics.snapshot());
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

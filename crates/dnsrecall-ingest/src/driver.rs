//! The pipeline driver: one thread that receives batches of entries over a
//! bounded channel (back-pressure instead of unbounded memory) and runs them
//! through the ingest pipeline (filters, bailiwick verification, then the
//! bounded de-duplication cache), and `SINK_THREADS` sink threads that hand
//! what the cache releases to the record sinks ([`RecordSinks`]: the store,
//! and whatever else receives records). They overlap: de-duplication of the
//! next batch runs while the sinks take earlier chunks (a bounded hand-over
//! of `SINK_CHUNKS` chunks of `WRITE_BATCH` entries). Two sink threads,
//! because the store's memtable inserts were the single busiest thread of an
//! ingest (profiled on the dnstap bench) and RocksDB runs concurrent
//! writers' memtable inserts in parallel; merges commute, so chunk order is
//! free. Each chunk goes to every sink in turn on the same thread, so a
//! chunk is never copied per sink.
//!
//! The cache releases an entry when it is evicted (memory bound), when it
//! has been held `dedup.flush_interval_secs` (a ticker thread sends empty
//! batches once a second for that), and at shutdown. A `kill -9` therefore
//! loses at most the sightings of the last flush interval.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnsrecall_core::Entry;
use dnsrecall_core::store::Store;
use dnsrecall_pipeline::{Batch, FilterReloader, Pipeline, PipelineConfig};
use tokio::sync::mpsc;

use crate::sinks::{RecordSinks, SinkError, store::StoreSink};

/// Batches in flight between sources and the writer.
const CHANNEL_BATCHES: usize = 8;
/// Entries per sink write (a RocksDB write batch).
const WRITE_BATCH: usize = 20_000;
/// Chunks waiting for a sink thread.
const SINK_CHUNKS: usize = 2;
/// Threads writing chunks to the sinks.
const SINK_THREADS: usize = 2;

/// A driver failure.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The pipeline could not be built from its configuration.
    #[error("building the ingest pipeline: {0}")]
    Pipeline(#[from] dnsrecall_pipeline::Error),
    /// A thread could not be started.
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        thread: &'static str,
        source: std::io::Error,
    },
    /// A thread panicked (its message went to stderr).
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    /// A record sink failed; the ingest stopped.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What the writer did.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriterStats {
    /// Entries received.
    pub entries: u64,
    /// Records handed to the sinks (after de-duplication).
    pub writes: u64,
    /// Sink write calls (chunks).
    pub batches: u64,
}

/// A running driver (named for its first sink, the store).
pub struct StoreWriter {
    sender: mpsc::Sender<Batch>,
    thread: JoinHandle<Result<WriterStats, DriverError>>,
    ticker: Option<JoinHandle<()>>,
    metrics: dnsrecall_pipeline::PipelineMetrics,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn spawn<T: Send + 'static>(
    thread: &'static str,
    name: String,
    run: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, DriverError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(run)
        .map_err(|source| DriverError::Spawn { thread, source })
}

impl StoreWriter {
    /// Starts the driver with the store as its only record sink.
    pub fn start(
        store: Arc<dyn Store>,
        config: &PipelineConfig,
        filters: &FilterReloader,
    ) -> Result<StoreWriter, DriverError> {
        let mut sinks = RecordSinks::new();
        sinks.push(Arc::new(StoreSink::new(store)));
        StoreWriter::start_sinks(sinks, config, filters)
    }

    /// Starts the writer thread (and its ticker and sink threads) writing
    /// every released chunk to each of `sinks`.
    pub fn start_sinks(
        sinks: RecordSinks,
        config: &PipelineConfig,
        filters: &FilterReloader,
    ) -> Result<StoreWriter, DriverError> {
        let (sender, mut receiver) = mpsc::channel::<Batch>(CHANNEL_BATCHES);
        let mut pipeline =
            Pipeline::with_filter_metrics(config, filters.handle(), filters.metrics())?;
        let metrics = pipeline.metrics();
        let (chunks, chunk_receiver) = std::sync::mpsc::sync_channel::<Vec<Entry>>(SINK_CHUNKS);
        let chunk_receiver = Arc::new(std::sync::Mutex::new(chunk_receiver));
        let sinks = Arc::new(sinks);
        tracing::debug!(sinks = ?sinks.names(), "starting the pipeline driver");
        let mut sink_threads = Vec::with_capacity(SINK_THREADS);
        for number in 0..SINK_THREADS {
            let sinks = Arc::clone(&sinks);
            let chunk_receiver = Arc::clone(&chunk_receiver);
            sink_threads.push(spawn(
                "record sink",
                format!("record-sink-{number}"),
                move || -> Result<(), DriverError> {
                    loop {
                        // The lock is held only to take one chunk.
                        let next = match chunk_receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return Err(DriverError::Panicked("other record sink")),
                        };
                        let Ok(chunk) = next else { return Ok(()) };
                        sinks.write(&chunk)?;
                    }
                },
            )?);
        }
        let thread = spawn("pipeline writer", "store-writer".into(), move || {
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
                        // A sink thread stopped on an error: reported below.
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
                        let full = pipeline.tick_at_most(now, WRITE_BATCH, &mut out) == WRITE_BATCH;
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
            for sink in sink_threads {
                sink.join()
                    .map_err(|_| DriverError::Panicked("record sink"))??;
            }
            let drained = started.elapsed();
            sinks.flush()?;
            tracing::debug!(
                drain_ms = drained.as_millis() as u64,
                flush_ms = (started.elapsed() - drained).as_millis() as u64,
                "pipeline driver drained and flushed its record sinks"
            );
            Ok(stats)
        })?;
        let weak = sender.downgrade();
        let ticker = spawn("pipeline ticker", "pipeline-ticker".into(), move || {
            loop {
                // Parked rather than slept, so `finish` can wake it.
                std::thread::park_timeout(Duration::from_secs(1));
                // Stops once every sender is gone (the writer is finishing).
                let Some(sender) = weak.upgrade() else { break };
                if sender.blocking_send(Batch::default()).is_err() {
                    break;
                }
            }
        })?;
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
    /// the last write and the sinks' flush.
    pub fn finish(mut self) -> Result<WriterStats, DriverError> {
        drop(self.sender);
        if let Some(ticker) = &self.ticker {
            ticker.thread().unpark();
        }
        let result = self
            .thread
            .join()
            .map_err(|_| DriverError::Panicked("pipeline writer"))?;
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        result
    }
}

//! The D4 analyzer queue: passivedns lines a D4 server queues for an
//! analyzer (`LPUSH analyzer:<type>:<uuid>`, type 8 for passive DNS, in the
//! D4 server's Redis, port 6380 db 2), read without loss.
//!
//! D4's own analyzer `RPOP`s one line per round trip, so a crash loses the
//! line in hand. [`D4Queue`] uses the reliable-queue pattern instead: a batch
//! is moved (by a script, as `LMOVE … RIGHT LEFT` would, oldest first) into a processing list of
//! this consumer, handed out, and removed from there only by
//! [`D4Queue::commit`], after the caller has stored it. Lines found in the
//! processing list at start (the previous run died before committing) are
//! handed out first. Delivery is therefore at least once: a crash between
//! the store write and the commit delivers that batch again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dnsrecall_core::Entry;
use dnsrecall_core::passivedns::{self, Layout, Line};
use serde::{Deserialize, Serialize};

/// Default lines moved per batch.
pub const DEFAULT_BATCH_LINES: usize = 1_000;
/// Default longest line kept; longer ones are counted and dropped.
pub const DEFAULT_MAX_LINE_BYTES: usize = 65_536;
/// Default pause when the queue is empty.
pub const DEFAULT_IDLE_MS: u64 = 200;
/// Longest pause between reconnection attempts.
pub const MAX_RECONNECT_BACKOFF_MS: u64 = 10_000;

/// `[[inputs]] kind = "d4"`.
///
/// ```toml
/// [[inputs]]
/// kind = "d4"
/// server = "redis://127.0.0.1:6380/2"
/// uuid = "6072e072-bfaa-4395-9bb1-cdb3b470d715"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D4QueueConfig {
    /// The D4 server's analyzer Redis (D4: port 6380, db 2).
    pub server: String,
    /// The analyzer queue uuid (D4 web UI: Server management → Add New
    /// Analyzer Queue).
    pub uuid: String,
    /// D4 type of the queue (8: passive DNS).
    #[serde(default = "default_queue_type")]
    pub queue_type: u16,
    /// Name of this consumer's processing list
    /// (`analyzer:<type>:<uuid>:processing:<consumer>`); consumers sharing
    /// a queue need different names.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Lines moved per batch (default 1,000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// Longest line kept in bytes (default 65,536).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Pause when the queue is empty, in milliseconds (default 200).
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
}

fn default_queue_type() -> u16 {
    8
}
fn default_consumer() -> String {
    "dnsrecall".into()
}
fn default_batch_lines() -> usize {
    DEFAULT_BATCH_LINES
}
fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}
fn default_idle_ms() -> u64 {
    DEFAULT_IDLE_MS
}

impl D4QueueConfig {
    /// Defaults for `server` and `uuid`.
    pub fn new(server: impl Into<String>, uuid: impl Into<String>) -> D4QueueConfig {
        D4QueueConfig {
            server: server.into(),
            uuid: uuid.into(),
            queue_type: default_queue_type(),
            consumer: default_consumer(),
            batch_lines: DEFAULT_BATCH_LINES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            idle_ms: DEFAULT_IDLE_MS,
        }
    }
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The server URL does not parse.
    #[error("bad D4 server URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// The server did not answer or refused a command.
    #[error("D4 server {url}: {reason}")]
    Server { url: String, reason: String },
}

/// Counters of a queue reader.
#[derive(Debug, Default)]
pub struct QueueCounters {
    /// Lines handed out (good or bad).
    pub lines: AtomicU64,
    /// Batches committed (removed from the processing list).
    pub batches_committed: AtomicU64,
    /// Lines found in the processing list at start and handed out again.
    pub lines_recovered: AtomicU64,
    /// Lines longer than `max_line_bytes`, dropped.
    pub lines_too_long: AtomicU64,
    /// Lines that are not UTF-8, dropped.
    pub lines_not_utf8: AtomicU64,
    /// Lost connections and failed commands (each followed by a reconnect).
    pub connection_errors: AtomicU64,
}

impl QueueCounters {
    /// `(name, help, value)` of each counter, named for Prometheus.
    pub fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            (
                "dnsrecall_d4_queue_lines_total",
                "Lines taken from the D4 analyzer queue.",
                read(&self.lines),
            ),
            (
                "dnsrecall_d4_queue_batches_committed_total",
                "Batches removed from the processing list after being stored.",
                read(&self.batches_committed),
            ),
            (
                "dnsrecall_d4_queue_lines_recovered_total",
                "Lines found in the processing list (not committed before) and handed out again.",
                read(&self.lines_recovered),
            ),
            (
                "dnsrecall_d4_queue_lines_too_long_total",
                "Lines over max_line_bytes, dropped.",
                read(&self.lines_too_long),
            ),
            (
                "dnsrecall_d4_queue_lines_not_utf8_total",
                "Lines that are not UTF-8, dropped.",
                read(&self.lines_not_utf8),
            ),
            (
                "dnsrecall_d4_queue_connection_errors_total",
                "Lost connections and failed commands (each followed by a reconnect).",
                read(&self.connection_errors),
            ),
        ]
    }
}

/// A batch handed out by [`D4Queue::next_batch`]: commit it once stored.
#[derive(Debug, Default)]
pub struct Batch {
    /// The good lines, oldest first.
    pub lines: Vec<String>,
    /// Lines dropped (too long, not UTF-8), counted in [`QueueCounters`].
    pub dropped: usize,
    /// Lines in the processing list (to be removed by the commit).
    taken: usize,
}

impl Batch {
    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.taken == 0
    }
}

/// Moves up to `ARGV[1]` of the oldest lines of the queue `KEYS[1]` to the
/// left end of the processing list `KEYS[2]`, atomically, and returns them
/// newest first; the list afterwards is as if each had been moved by
/// `LMOVE queue processing RIGHT LEFT`, oldest first. (`unpack` takes at
/// most a few thousand values, so the push goes in slices.)
const MOVE_SCRIPT: &str = "local n=tonumber(ARGV[1]) \
local items=redis.call('LRANGE',KEYS[1],-n,-1) \
local m=#items \
if m==0 then return items end \
redis.call('LTRIM',KEYS[1],0,-m-1) \
local i=m \
while i>=1 do \
local slice={} \
local j=i \
while j>=1 and i-j<1000 do slice[#slice+1]=items[j] j=j-1 end \
redis.call('LPUSH',KEYS[2],unpack(slice)) \
i=j \
end \
return items";

/// A reliable reader of one D4 analyzer queue.
pub struct D4Queue {
    config: D4QueueConfig,
    client: redis::Client,
    connection: Option<redis::Connection>,
    /// Whether the processing list was checked for a previous run's lines.
    recovered: bool,
    counters: Arc<QueueCounters>,
}

impl D4Queue {
    /// A reader; it connects on first use.
    pub fn new(config: D4QueueConfig) -> Result<D4Queue, QueueError> {
        let client = redis::Client::open(config.server.as_str()).map_err(|e| QueueError::Url {
            url: config.server.clone(),
            reason: e.to_string(),
        })?;
        Ok(D4Queue {
            config,
            client,
            connection: None,
            recovered: false,
            counters: Arc::default(),
        })
    }

    /// The counters (shared, so a metrics endpoint can read them).
    pub fn counters(&self) -> Arc<QueueCounters> {
        Arc::clone(&self.counters)
    }

    /// `analyzer:<type>:<uuid>`, the list D4 pushes to.
    pub fn queue_key(&self) -> String {
        format!("analyzer:{}:{}", self.config.queue_type, self.config.uuid)
    }

    /// This consumer's processing list.
    pub fn processing_key(&self) -> String {
        format!("{}:processing:{}", self.queue_key(), self.config.consumer)
    }

    fn server_error(&mut self, error: redis::RedisError) -> QueueError {
        // The connection may be in any state now: drop it, reconnect later,
        // and hand out the whole processing list again (a commit may have
        // been lost with the connection; at least once, never lost).
        self.connection = None;
        self.recovered = false;
        self.counters
            .connection_errors
            .fetch_add(1, Ordering::Relaxed);
        QueueError::Server {
            url: self.config.server.clone(),
            reason: error.to_string(),
        }
    }

    fn connection(&mut self) -> Result<&mut redis::Connection, QueueError> {
        if self.connection.is_none() {
            let timeout = Duration::from_secs(5);
            let connection = self
                .client
                .get_connection_with_timeout(timeout)
                .and_then(|c| c.set_read_timeout(Some(timeout)).map(|()| c))
                .map_err(|e| self.server_error(e))?;
            self.connection = Some(connection);
        }
        self.connection.as_mut().ok_or_else(|| QueueError::Server {
            url: String::new(),
            reason: "no connection".into(),
        })
    }

    /// Takes the next batch (possibly empty): what a previous run left in
    /// the processing list, else up to `batch_lines` lines moved from the
    /// queue. Nothing is removed from the processing list until
    /// [`commit`](Self::commit).
    pub fn next_batch(&mut self) -> Result<Batch, QueueError> {
        let (queue, processing) = (self.queue_key(), self.processing_key());
        let limit = self.config.batch_lines.max(1);
        let recovering = !self.recovered;
        let raw: Vec<Vec<u8>> = if recovering {
            let connection = self.connection()?;
            let mut left: Vec<Vec<u8>> = redis::cmd("LRANGE")
                .arg(&processing)
                .arg(0)
                .arg(-1)
                .query(connection)
                .map_err(|e| self.server_error(e))?;
            // LMOVE pushes on the left: the oldest line is the last one.
            left.reverse();
            self.recovered = true;
            self.counters
                .lines_recovered
                .fetch_add(left.len() as u64, Ordering::Relaxed);
            left
        } else {
            let connection = self.connection()?;
            // One script call moves the whole batch (measured: a pipeline
            // of one LMOVE per line cost the queue server about a
            // microsecond per line more, and a round trip per line more on
            // the wire).
            let mut moved: Vec<Vec<u8>> = redis::cmd("EVAL")
                .arg(MOVE_SCRIPT)
                .arg(2)
                .arg(&queue)
                .arg(&processing)
                .arg(limit)
                .query(connection)
                .map_err(|e| self.server_error(e))?;
            // LRANGE gives the newest first: hand out the oldest first.
            moved.reverse();
            moved
        };
        if recovering && raw.is_empty() {
            return self.next_batch();
        }
        let mut batch = Batch {
            taken: raw.len(),
            ..Batch::default()
        };
        for line in raw {
            self.counters.lines.fetch_add(1, Ordering::Relaxed);
            if line.len() > self.config.max_line_bytes {
                self.counters.lines_too_long.fetch_add(1, Ordering::Relaxed);
                batch.dropped += 1;
                continue;
            }
            match String::from_utf8(line) {
                Ok(line) => batch.lines.push(line),
                Err(_) => {
                    self.counters.lines_not_utf8.fetch_add(1, Ordering::Relaxed);
                    batch.dropped += 1;
                }
            }
        }
        Ok(batch)
    }

    /// Removes a stored batch from the processing list.
    pub fn commit(&mut self, batch: &Batch) -> Result<(), QueueError> {
        if batch.taken == 0 {
            return Ok(());
        }
        let processing = self.processing_key();
        let connection = self.connection()?;
        // The batch is the oldest `taken` lines: the right end.
        let result: redis::RedisResult<()> = redis::cmd("LTRIM")
            .arg(&processing)
            .arg(0)
            .arg(-(batch.taken as i64) - 1)
            .query(connection);
        result.map_err(|e| self.server_error(e))?;
        self.counters
            .batches_committed
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Reads until `stop` is set: each batch is turned into `P` by
    /// `prepare` on this thread, handed to `store` on a thread of its own,
    /// and committed here once `store` returned `Ok`. The two overlap:
    /// while `store` writes one batch, the next is moved and prepared (the
    /// D4 input measured 129k lines/s with the steps in series, the file
    /// importer 330k with parse and write on two threads). At most two
    /// batches are in hand: the one `store` has and the one prepared.
    ///
    /// Commits stay in order and on this thread's connection: the stored
    /// batch is always the oldest lines of the processing list. A lost
    /// server is reconnected with exponential backoff (100 ms doubling to
    /// 10 s); a batch `store` refuses stays in the processing list, and
    /// once `store` has nothing in hand the whole list is offered again,
    /// so nothing is lost (at least once: a batch stored but not committed
    /// comes again).
    pub fn run<P: Send, E: std::fmt::Display>(
        &mut self,
        stop: &AtomicBool,
        mut prepare: impl FnMut(&Batch) -> P,
        mut store: impl FnMut(P) -> Result<(), E> + Send,
    ) {
        let (to_store, stored_in) = std::sync::mpsc::sync_channel::<P>(1);
        let (verdicts, verdict) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        // `move`: the sender lives in this closure, so `store`'s thread
        // sees the channel close (and ends) whenever the closure returns.
        std::thread::scope(move |scope| {
            scope.spawn(move || {
                for prepared in stored_in {
                    let outcome = store(prepared).map_err(|e| e.to_string());
                    if verdicts.send(outcome).is_err() {
                        return;
                    }
                }
            });
            // The batch `store` has: what its commit removes.
            let mut in_store: Option<Batch> = None;
            let mut backoff = 100;
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                // Take and prepare the next batch while `store` works; a
                // recovery read waits until `store` has nothing in hand
                // (the list it reads must hold only uncommitted lines
                // nobody else is storing).
                let next = if stopping || (!self.recovered && in_store.is_some()) {
                    Ok(None)
                } else {
                    self.next_batch().map(|batch| {
                        (!batch.is_empty()).then(|| {
                            let prepared = prepare(&batch);
                            (batch, prepared)
                        })
                    })
                };
                // The verdict on the batch in `store`, then its commit.
                let mut failed = None;
                if let Some(stored) = in_store.take() {
                    match verdict.recv() {
                        Ok(Ok(())) => {
                            if let Err(error) = self.commit(&stored) {
                                failed = Some(error);
                            }
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(%error, lines = stored.lines.len(), "storing a D4 batch failed; it will be offered again");
                            failed = Some(QueueError::Server {
                                url: self.config.server.clone(),
                                reason: format!("store refused the batch: {error}"),
                            });
                        }
                        Err(_) => {
                            tracing::warn!("the D4 store thread ended; the queue reader stops");
                            return;
                        }
                    }
                }
                if stopping {
                    // The batch in hand, if any, stays in the processing
                    // list for the next run.
                    return;
                }
                if let Some(error) = failed {
                    // Offer the processing list again, whole, once
                    // nothing is in hand (a batch moved meanwhile is in
                    // that list too).
                    self.recovered = false;
                    tracing::warn!(%error, backoff_ms = backoff, "D4 queue error; retrying");
                    pause(stop, backoff);
                    backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF_MS);
                    continue;
                }
                match next {
                    Ok(Some((batch, prepared))) => {
                        if to_store.send(prepared).is_err() {
                            return;
                        }
                        in_store = Some(batch);
                        backoff = 100;
                    }
                    Ok(None) => {
                        if self.recovered {
                            // The queue is empty.
                            backoff = 100;
                            pause(stop, self.config.idle_ms);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, backoff_ms = backoff, "D4 queue error; retrying");
                        pause(stop, backoff);
                        backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF_MS);
                    }
                }
            }
        });
    }
}

/// Sleeps `millis`, in short steps so a stop request ends it early.
fn pause(stop: &AtomicBool, millis: u64) {
    let until = std::time::Instant::now() + Duration::from_millis(millis);
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Parses a batch's passivedns lines into entries; rejected lines are
/// counted by reason (`field_count`, `bad_rrtype`, ...), comments and error
/// responses by their own labels. A bad line never stops the batch.
pub fn parse_batch(
    layout: &Layout,
    batch: &Batch,
    sensor_id: Option<&Arc<str>>,
) -> (Vec<Entry>, BTreeMap<&'static str, u64>) {
    let mut entries = Vec::with_capacity(batch.lines.len());
    let mut skipped: BTreeMap<&'static str, u64> = BTreeMap::new();
    for line in &batch.lines {
        match passivedns::parse_line(layout, line, sensor_id) {
            Ok(Line::Record(entry)) => entries.push(entry),
            Ok(Line::Comment) => *skipped.entry("comment").or_default() += 1,
            Ok(Line::ErrorResponse(_)) => *skipped.entry("error_response").or_default() += 1,
            Ok(Line::OtherClass) => *skipped.entry("other_class").or_default() += 1,
            Err(error) => *skipped.entry(error.reason()).or_default() += 1,
        }
    }
    (entries, skipped)
}

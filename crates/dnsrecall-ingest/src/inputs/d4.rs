//! `[[inputs]] kind = "d4"`: the passivedns lines a D4 server queues for an
//! analyzer (`analyzer:<type>:<uuid>` in the D4 server's Redis), read
//! without loss.
//!
//! The Redis side (the reliable queue: `LMOVE` into a processing list,
//! removed only by the commit; reconnection with backoff) is
//! [`dnsrecall_redis::D4Queue`]; this module wraps it as an input
//! component: one blocking thread per configured server parses each batch
//! with the passivedns layout and folds repeated records of the batch into
//! one entry; a second thread writes them to the store **directly**
//! (overlapping the next batch's move and parse), and the batch is
//! committed only once that write returned. This is why a D4 input does not go
//! through the pipeline's de-duplication cache like the other inputs: a
//! cache holds sightings for up to its flush interval, and the queue's
//! promise is that a line leaves the processing list only once it is
//! stored. Record filters of `[pipeline]` therefore do not apply to it.
//! Bad lines are counted by reason in `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use dnsrecall_core::passivedns::{self, Layout};
use dnsrecall_metrics::{Kind, Sample, Value};
use dnsrecall_redis::queue::{self, D4Queue, D4QueueConfig};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::IngestContext;

/// `[[inputs]] kind = "d4"`: one D4 analyzer queue, on one server or the
/// same queue on several servers.
///
/// ```toml
/// [[inputs]]
/// kind = "d4"
/// server = "redis://127.0.0.1:6380/2"
/// uuid = "6072e072-bfaa-4395-9bb1-cdb3b470d715"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D4InputConfig {
    /// The D4 server's analyzer Redis, `redis://host:port/db` (D4: port
    /// 6380, db 2), or a list of them (`["redis://a:6380/2",
    /// "redis://b:6380/2"]`): each is read by its own thread.
    pub server: dnsrecall_redis::Urls,
    /// The analyzer queue uuid (D4 web UI: Server management → Add New
    /// Analyzer Queue); the queue is `analyzer:<queue_type>:<uuid>`.
    pub uuid: String,
    /// D4 type of the queue (default 8: passive DNS).
    #[serde(default = "default_queue_type")]
    pub queue_type: u16,
    /// Name of this consumer's processing list
    /// (`analyzer:<type>:<uuid>:processing:<consumer>`, default
    /// `dnsrecall`); readers sharing a queue need different names.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Lines moved from the queue per batch (default 1,000).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
    /// Longest line kept, in bytes (default 65,536); longer ones are
    /// counted and dropped.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Pause when the queue is empty, in milliseconds (default 200).
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
    /// passivedns `-f` field letters of the queued lines (default
    /// `SMcsCQTAtn`, what D4's passivedns sensors send).
    #[serde(default = "default_fields")]
    pub passivedns_fields: String,
    /// passivedns `-d` delimiter (default `||`).
    #[serde(default = "default_delimiter")]
    pub passivedns_delimiter: String,
    /// Sensor identity given to the records (the lines carry none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_id: Option<String>,
}

fn default_queue_type() -> u16 {
    8
}
fn default_consumer() -> String {
    "dnsrecall".into()
}
fn default_batch_lines() -> usize {
    queue::DEFAULT_BATCH_LINES
}
fn default_max_line_bytes() -> usize {
    queue::DEFAULT_MAX_LINE_BYTES
}
fn default_idle_ms() -> u64 {
    queue::DEFAULT_IDLE_MS
}
fn default_fields() -> String {
    passivedns::DEFAULT_FIELDS.to_string()
}
fn default_delimiter() -> String {
    passivedns::DEFAULT_DELIMITER.to_string()
}

impl D4InputConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        let servers = self.server.as_slice();
        if servers.is_empty() {
            anyhow::bail!("[[inputs]] kind = \"d4\": server is empty");
        }
        if self.uuid.trim().is_empty() {
            anyhow::bail!("[[inputs]] kind = \"d4\": uuid is empty");
        }
        if self.batch_lines == 0 {
            anyhow::bail!("[[inputs]] kind = \"d4\": batch_lines must be at least 1");
        }
        self.layout()?;
        for server in servers {
            D4Queue::new(self.queue_config(server))
                .with_context(|| format!("[[inputs]] kind = \"d4\": server {server:?}"))?;
        }
        Ok(())
    }

    fn layout(&self) -> anyhow::Result<Layout> {
        Layout::new(&self.passivedns_fields, &self.passivedns_delimiter)
            .context("[[inputs]] kind = \"d4\": passivedns_fields")
    }

    /// The queue reader's settings for one server.
    pub fn queue_config(&self, server: &str) -> D4QueueConfig {
        D4QueueConfig {
            server: server.to_string(),
            uuid: self.uuid.clone(),
            queue_type: self.queue_type,
            consumer: self.consumer.clone(),
            batch_lines: self.batch_lines,
            max_line_bytes: self.max_line_bytes,
            idle_ms: self.idle_ms,
        }
    }
}

/// Starts one reader thread per server. Each ends after shutdown, once the
/// batch in hand is stored and committed (or left in the processing list).
pub async fn start(
    config: &D4InputConfig,
    context: &IngestContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    config.validate()?;
    let Some(store) = context.store.clone() else {
        anyhow::bail!(
            "[[inputs]] kind = \"d4\" writes to the store itself (it commits a batch only once stored): it needs a store"
        );
    };
    let layout = Arc::new(config.layout()?);
    let sensor: Option<Arc<str>> = config.sensor_id.as_deref().map(Arc::from);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for server in config.server.as_slice() {
        let mut queue = D4Queue::new(config.queue_config(server))?;
        let counters = queue.counters();
        let label = server.clone();
        context
            .metrics
            .register(Arc::new(move |out: &mut Vec<Sample>| {
                for (name, help, value) in counters.metrics() {
                    out.push(Sample {
                        name,
                        help,
                        kind: Kind::Counter,
                        labels: vec![("server", label.clone())],
                        value: Value::Int(value),
                    });
                }
            }));
        let metrics = context.metrics.clone();
        let entries_written = metrics.counter(
            "dnsrecall_d4_queue_entries_written_total",
            "Records written to the store from the D4 queue (after folding repeats within a batch).",
            &[("server", server.as_str())],
        );
        let (store, layout, sensor, stop) = (
            Arc::clone(&store),
            Arc::clone(&layout),
            sensor.clone(),
            Arc::clone(&stop),
        );
        let server = server.clone();
        tracing::info!(server = %server, queue = %queue.queue_key(), "reading the D4 analyzer queue");
        tasks.push(tokio::task::spawn_blocking(move || {
            let prepare = |batch: &queue::Batch| {
                let (entries, skipped) = queue::parse_batch(&layout, batch, sensor.as_ref());
                for (reason, count) in skipped {
                    metrics
                        .counter(
                            "dnsrecall_d4_queue_lines_skipped_total",
                            "D4 queue lines not stored, by reason (rejected lines by parse error; comment, error_response, other_class).",
                            &[("server", server.as_str()), ("reason", reason)],
                        )
                        .add_shared(count);
                }
                dnsrecall_redis::fold::fold_duplicates(entries)
            };
            // Stored on the queue's second thread while the next batch is
            // moved and parsed.
            let write = |folded: Vec<dnsrecall_core::Entry>| {
                store.write(&folded)?;
                entries_written.add_shared(folded.len() as u64);
                Ok::<(), dnsrecall_core::store::StoreError>(())
            };
            queue.run(&stop, prepare, write);
            tracing::info!(server = %server, "D4 queue reader stopped");
        }));
    }
    let shutdown = context.shutdown.clone();
    tasks.push(tokio::spawn(async move {
        shutdown.cancelled().await;
        stop.store(true, Ordering::Relaxed);
    }));
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_parses_and_defaults_apply() {
        let config: D4InputConfig = toml::from_str(
            "server = \"redis://127.0.0.1:6380/2\"\nuuid = \"6072e072-bfaa-4395-9bb1-cdb3b470d715\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.queue_type, 8);
        let queue = config.queue_config("redis://127.0.0.1:6380/2");
        assert_eq!(queue.consumer, "dnsrecall");
        let several: D4InputConfig = toml::from_str(
            "server = [\"redis://127.0.0.1:6380/2\", \"redis://127.0.0.1:6381/2\"]\nuuid = \"u\"\n",
        )
        .unwrap();
        assert_eq!(several.server.as_slice().len(), 2);
        let error =
            toml::from_str::<D4InputConfig>("server = \"redis://x\"\nuuid = \"u\"\nqueue = 1\n")
                .unwrap_err();
        assert!(error.to_string().contains("queue"), "{error}");
        let empty: D4InputConfig =
            toml::from_str("server = \"redis://x\"\nuuid = \" \"\n").unwrap();
        assert!(empty.validate().is_err());
    }
}

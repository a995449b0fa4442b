//! Traffic statistics as a message output: every message any input decoded
//! is observed by [`dnsrecall_stats::Stats`] (configured as `[stats]`; its
//! routes read the same `Arc` through the HTTP crate).
//!
//! Design: the input only enqueues. [`StatsOutput::offer`] clones the
//! message (reference counts of its byte buffers, no copy) into a bounded
//! queue and returns; a thread of the output's own takes what is queued in
//! batches of up to [`BATCH`] messages and counts each batch under one
//! lock ([`Stats::observe_batch`]). A full queue drops the message and
//! counts it in `dnsrecall_stats_output_dropped_total`, so statistics never
//! slow an input down, whatever the traffic does to the tables. A thread
//! rather than a tokio task: counting is CPU work without awaits, and would
//! hold a runtime worker for as long as traffic flows.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dnsrecall_core::message::DnsMessage;
use dnsrecall_metrics::{Counter, Registry};
use dnsrecall_stats::Stats;

use super::MessageOutput;

/// Most messages counted under one lock (bounds how long a `/counters`
/// request may wait for the lock: about a millisecond).
pub const BATCH: usize = 1024;

/// Feeds [`Stats`] from a bounded queue on a thread of its own.
pub struct StatsOutput {
    /// `None` once finished (dropping it lets the worker drain and end).
    queue: Mutex<Option<SyncSender<DnsMessage>>>,
    /// Ends with the number of messages counted.
    worker: Mutex<Option<std::thread::JoinHandle<u64>>>,
    dropped: Arc<Counter>,
}

impl StatsOutput {
    /// Starts the worker; its queue holds `[stats] queue_size` messages.
    pub fn start(stats: Arc<Stats>, metrics: &Registry) -> std::io::Result<StatsOutput> {
        let (queue, receiver) = std::sync::mpsc::sync_channel(stats.config().queue_size.max(1));
        let dropped = metrics.counter(
            "dnsrecall_stats_output_dropped_total",
            "Messages the traffic statistics did not count because their queue was full.",
            &[],
        );
        let queued = metrics.counter(
            "dnsrecall_stats_output_batches_total",
            "Batches of messages the traffic statistics counted (one lock each).",
            &[],
        );
        let nice = stats.config().thread_nice;
        let worker = std::thread::Builder::new()
            .name("stats".to_string())
            .spawn(move || {
                lower_priority(nice);
                count(&stats, &receiver, &queued)
            })?;
        Ok(StatsOutput {
            queue: Mutex::new(Some(queue)),
            worker: Mutex::new(Some(worker)),
            dropped,
        })
    }
}

/// How long the worker naps when it found the queue empty.
const NAP: Duration = Duration::from_millis(1);
/// Naps in a row (about a tenth of a second without traffic) before the
/// worker blocks until the next message.
const NAPS_BEFORE_BLOCKING: u32 = 100;

/// The worker: takes whatever is queued (up to a batch) and counts it;
/// ends when the queue is closed and empty, with the number of messages
/// counted.
///
/// While traffic flows it naps when it has caught up instead of blocking
/// on the queue. Why: a receiver blocked on the channel makes the next
/// `try_send` wake it (a futex call on the input's thread, then a context
/// switch for a handful of messages); napping, it finds a millisecond's
/// worth waiting, so batches are larger (more repeats summed per key, see
/// `dnsrecall_stats::batch`) and the inputs never pay for a wake-up. After
/// [`NAPS_BEFORE_BLOCKING`] empty naps it blocks, so an idle `serve` does
/// not poll.
fn count(stats: &Stats, receiver: &Receiver<DnsMessage>, batches: &Counter) -> u64 {
    let mut batch = Vec::with_capacity(BATCH);
    let mut counted = 0u64;
    let mut naps = 0u32;
    loop {
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if naps < NAPS_BEFORE_BLOCKING {
                naps += 1;
                std::thread::sleep(NAP);
                // A closed and drained queue ends the worker.
                match receiver.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => break,
                }
                continue;
            }
            match receiver.recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
            naps = 0;
            continue;
        }
        naps = 0;
        stats.observe_batch(&batch);
        batches.add(1);
        counted += batch.len() as u64;
        batch.clear();
    }
    counted
}

/// Lowers the calling thread's priority by `increment` nice levels
/// (`[stats] thread_nice`). Linux keeps a nice value per thread, so only
/// the statistics thread is affected; failing is harmless (logged).
fn lower_priority(increment: u8) {
    if increment == 0 {
        return;
    }
    // `None`: the calling thread (Linux applies PRIO_PROCESS of pid 0 to
    // the calling thread, not to the whole process).
    let outcome = rustix::process::getpriority_process(None).and_then(|current| {
        let target = current.saturating_add(i32::from(increment)).min(19);
        rustix::process::setpriority_process(None, target).map(|()| target)
    });
    match outcome {
        Ok(nice) => tracing::debug!(nice, "statistics thread priority lowered"),
        Err(error) => tracing::warn!(%error, "could not lower the statistics thread's priority"),
    }
}

impl MessageOutput for StatsOutput {
    fn offer(&self, message: &DnsMessage) {
        // A poisoned lock means a panic while holding it: nothing to send to.
        let Ok(queue) = self.queue.lock() else {
            self.dropped.inc();
            return;
        };
        let sent = match queue.as_ref() {
            Some(queue) => match queue.try_send(message.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if !sent {
            self.dropped.inc();
        }
    }

    fn finish(&self) -> Option<tokio::task::JoinHandle<()>> {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let worker = self.worker.lock().ok()?.take()?;
        let dropped = self.dropped.clone();
        Some(tokio::task::spawn_blocking(move || match worker.join() {
            Ok(counted) => tracing::info!(
                counted,
                dropped = dropped.get(),
                "statistics output finished"
            ),
            Err(_) => {
                tracing::warn!("the statistics thread panicked; statistics stopped counting")
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dnsrecall_core::message::{MessageKind, Origin};
    use dnsrecall_stats::StatsConfig;

    fn query(id: u8) -> DnsMessage {
        let mut wire = vec![0, id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        DnsMessage {
            kind: MessageKind::from_value(5),
            identity: Some(Bytes::from_static(b"unit")),
            version: None,
            family: None,
            transport: None,
            query_address: None,
            query_port: None,
            response_address: None,
            response_port: None,
            query_time: None,
            response_time: None,
            query_zone: None,
            query_message: Some(wire.into()),
            response_message: None,
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        }
    }

    #[tokio::test]
    async fn counts_on_its_own_thread_and_drops_beyond_the_queue() {
        let stats = Arc::new(
            Stats::new(StatsConfig {
                queue_size: 4,
                ..StatsConfig::default()
            })
            .expect("stats"),
        );
        let registry = Registry::default();
        let output = StatsOutput::start(stats.clone(), &registry).expect("start");
        // Hold the statistics' lock: the worker blocks on its first batch,
        // so the queue fills and the rest is dropped.
        let offered = 2000u64;
        {
            let _held = stats.hold();
            for i in 0..offered {
                output.offer(&query(i as u8));
            }
            // The worker may have taken some into its batch before blocking.
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        output.finish().expect("worker").await.expect("join");
        let counted = stats.report_counters(None).expect("report")["queries"]
            .as_u64()
            .expect("queries");
        let dropped = output.dropped.get();
        assert_eq!(counted + dropped, offered);
        // At most one batch was taken before the worker blocked, and the
        // queue holds 4.
        assert!(dropped >= offered - 4 - BATCH as u64, "{dropped}");
        assert!(counted >= 1, "{counted}");
        let text = registry.render();
        assert!(
            text.contains(&format!("dnsrecall_stats_output_dropped_total {dropped}")),
            "{text}"
        );
        // Finished: further messages are dropped and counted.
        output.offer(&query(1));
        assert_eq!(output.dropped.get(), dropped + 1);
    }
}

//! The delivery worker every network output shares (`tcp`, `syslog`,
//! `dnstap`, `kafka`, `nats`, `postgres`).
//!
//! A [`QueueOutput`] is the [`MessageOutput`] half: `offer` clones the
//! message (its wire data are shared `Bytes`) into a **bounded** channel
//! with `try_send` and never waits; a full queue drops the message and
//! counts it (`reason="queue_full"`). One tokio task per output runs the
//! [`Link`] half: it takes up to `batch_size` queued messages, has the link
//! prepare each once (render a line, encode a frame, ...), then delivers
//! the batch, connecting first and reconnecting after any failure with a
//! capped exponential backoff. A batch that failed is sent again after the
//! reconnect (at least once: a peer that broke mid-batch may see part of it
//! twice); meanwhile new messages queue up, and once the queue is full they
//! are dropped and counted, so a dead or slow peer never slows ingest or
//! the other outputs.
//!
//! At shutdown ([`MessageOutput::finish`]) the queue is closed and the
//! worker gets `flush_timeout`: it delivers what is queued, closes the link
//! cleanly, and whatever is still undelivered at the deadline is counted as
//! dropped with `reason="shutdown"`.
//!
//! Metrics: the common per-output counters of [`super::OutputMetrics`]
//! (`dnsrecall_output_written_total` = delivered,
//! `dnsrecall_output_dropped_total{reason}` with `queue_full`, `shutdown`
//! and `error` for a batch the peer refused, `dnsrecall_output_errors_total`
//! for every failed connect or send), plus
//! `dnsrecall_output_connects_total` and the gauges
//! `dnsrecall_output_queued` and `dnsrecall_output_connected`, all
//! labelled `output` (the output's `name`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::output::{LatencyTable, MessageView};
use dnsrecall_metrics::{Counter, Gauge};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Deadline, DropReason, MessageOutput, OutputContext, OutputMetrics};
use crate::message;

/// Messages queued per output unless configured [default: 10000].
pub const DEFAULT_QUEUE_SIZE: usize = 10_000;
/// First reconnect delay; doubled after each failure up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest reconnect delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connect or a batch send that takes longer counts as failed: the link
/// is reconnected (a peer that stopped reading must not hold the worker
/// forever).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn default_queue_size() -> usize {
    DEFAULT_QUEUE_SIZE
}

//---- Delivery ----

/// How one output queues and delivers.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The `output` label of its metrics and the name in its logs
    /// (`tcp:127.0.0.1:5140`).
    pub name: String,
    /// Messages queued; beyond, new ones are dropped and counted.
    pub queue_size: usize,
    /// Most messages handed to the link at once.
    pub batch_size: usize,
    /// First reconnect delay.
    pub initial_backoff: Duration,
    /// Reconnect delay cap.
    pub max_backoff: Duration,
    /// Longest connect or batch send.
    pub send_timeout: Duration,
}

impl Delivery {
    /// Defaults for everything but the name, queue size and batch size
    /// (the flush deadline is the output's common `flush_timeout_secs`).
    pub fn new(name: String, queue_size: usize, batch_size: usize) -> Self {
        Delivery {
            name,
            queue_size: queue_size.max(1),
            batch_size: batch_size.max(1),
            initial_backoff: INITIAL_BACKOFF,
            max_backoff: MAX_BACKOFF,
            send_timeout: SEND_TIMEOUT,
        }
    }
}

/// Checks the settings every network output has.
pub(crate) fn validate(name: &str, queue_size: usize, batch_size: usize) -> Result<(), String> {
    if queue_size == 0 {
        return Err(format!("output {name}: queue_size must be at least 1"));
    }
    if batch_size == 0 {
        return Err(format!("output {name}: batch_size must be at least 1"));
    }
    Ok(())
}

//---- Link ----

/// Why a connect or send failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer cannot be reached or the connection broke: the link is
    /// reconnected after a backoff and the batch sent again.
    #[error("{0}")]
    Transient(String),
    /// The peer refused this batch for good (a value it cannot take): the
    /// batch is dropped and counted (`reason="error"`), the link stays.
    #[error("{0}")]
    Rejected(String),
}

impl LinkError {
    /// A transient error from anything displayable.
    pub fn transient(what: &str, error: impl std::fmt::Display) -> LinkError {
        LinkError::Transient(format!("{what}: {error}"))
    }
}

/// One output's connection to its peer, driven by the worker task.
pub trait Link: Send + 'static {
    /// What a message becomes before it is sent (a rendered line, a
    /// frame, a row), made once even when its batch is sent twice.
    type Item: Send + Sync + 'static;

    /// Prepares one message; `None` when this output has nothing to send
    /// for it (counted with `reason="error"`).
    fn prepare(&mut self, message: &DnsMessage) -> Option<Self::Item>;

    /// Connects, or reconnects after a failure (dropping any old
    /// connection first).
    fn connect(&mut self) -> impl Future<Output = Result<(), LinkError>> + Send;

    /// Sends a batch, in order. `Ok` means the peer has it (as far as the
    /// protocol tells).
    fn send(&mut self, batch: &[Self::Item]) -> impl Future<Output = Result<(), LinkError>> + Send;

    /// Ends a healthy connection cleanly (flush, STOP/FINISH, ...) at
    /// shutdown.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

//---- Counters ----

/// One output's counters: the common ones and the delivery gauges.
#[derive(Clone)]
struct Counters {
    common: Arc<OutputMetrics>,
    connects: Arc<Counter>,
    queued: Arc<Gauge>,
    connected: Arc<Gauge>,
}

impl Counters {
    fn register(context: &OutputContext) -> Counters {
        let output = [("output", context.name.as_str())];
        let registry = &context.registry;
        Counters {
            common: context.metrics.clone(),
            connects: registry.counter(
                "dnsrecall_output_connects_total",
                "Connections a network output made to its peer.",
                &output,
            ),
            queued: registry.gauge(
                "dnsrecall_output_queued",
                "Messages waiting in a network output's queue.",
                &output,
            ),
            connected: registry.gauge(
                "dnsrecall_output_connected",
                "1 while a network output is connected to its peer.",
                &output,
            ),
        }
    }

    fn dropped(&self, reason: DropReason, n: usize) {
        self.common.drop_n(reason, n as u64);
    }

    fn sent(&self, n: usize) {
        self.common.written.add_shared(n as u64);
    }

    fn error(&self) {
        self.common.errors.add_shared(1);
    }
}

//---- QueueOutput ----

/// A network output: a bounded queue and the worker task delivering it.
pub struct QueueOutput {
    /// `None` once finished: dropping it closes the queue, which is how the
    /// worker learns that nothing more will come.
    sender: Mutex<Option<mpsc::Sender<DnsMessage>>>,
    /// Set by `finish`: from then on the worker watches the deadline.
    finishing: watch::Sender<bool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    counters: Counters,
}

impl QueueOutput {
    /// Registers the counters and starts the worker (inside a tokio
    /// runtime). The link connects in the worker, so a peer that is down at
    /// startup is retried like one that goes down later.
    pub fn start<L: Link>(link: L, delivery: Delivery, context: &OutputContext) -> QueueOutput {
        let counters = Counters::register(context);
        let (sender, receiver) = mpsc::channel(delivery.queue_size);
        let (finishing, finishing_rx) = watch::channel(false);
        let worker = Worker {
            link,
            receiver,
            shutdown: Shutdown {
                finishing: finishing_rx,
                deadline: context.deadline.clone(),
            },
            counters: counters.clone(),
            delivery,
            connected: false,
            backoff: Duration::ZERO,
            failing: false,
        };
        let worker = tokio::spawn(worker.run());
        QueueOutput {
            sender: Mutex::new(Some(sender)),
            finishing,
            worker: Mutex::new(Some(worker)),
            counters,
        }
    }
}

impl MessageOutput for QueueOutput {
    fn offer(&self, message: &DnsMessage) {
        let Ok(sender) = self.sender.lock() else {
            return;
        };
        match sender.as_ref() {
            Some(sender) => match sender.try_send(message.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.counters.dropped(DropReason::QueueFull, 1)
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.counters.dropped(DropReason::Shutdown, 1)
                }
            },
            None => self.counters.dropped(DropReason::Shutdown, 1),
        }
    }

    fn finish(&self) -> Option<JoinHandle<()>> {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let _ = self.finishing.send(true);
        self.worker.lock().ok()?.take()
    }
}

//---- Worker ----

struct Worker<L: Link> {
    link: L,
    receiver: mpsc::Receiver<DnsMessage>,
    shutdown: Shutdown,
    counters: Counters,
    delivery: Delivery,
    connected: bool,
    /// The next reconnect delay.
    backoff: Duration,
    /// Whether the last attempt failed (logs once per outage).
    failing: bool,
}

/// When to give up at shutdown: `finish` was called and the common flush
/// deadline (set by `MessageOutputs::finish`) has passed.
struct Shutdown {
    finishing: watch::Receiver<bool>,
    deadline: Deadline,
}

/// How often the worker looks at the deadline once finishing.
const DEADLINE_POLL: Duration = Duration::from_millis(20);

impl Shutdown {
    /// Completes at the flush deadline (never before `finish`).
    async fn passed(&mut self) {
        if self
            .finishing
            .wait_for(|finishing| *finishing)
            .await
            .is_err()
        {
            // The output was dropped without `finish`: no deadline.
            std::future::pending::<()>().await;
        }
        while !self.deadline.passed() {
            tokio::time::sleep(DEADLINE_POLL).await;
        }
    }
}

impl<L: Link> Worker<L> {
    async fn run(mut self) {
        let mut batch: Vec<L::Item> = Vec::with_capacity(self.delivery.batch_size);
        loop {
            let first = tokio::select! {
                message = self.receiver.recv() => message,
                () = self.shutdown.passed() => {
                    self.give_up(0);
                    return;
                }
            };
            let Some(first) = first else { break };
            self.take(&first, &mut batch);
            while batch.len() < self.delivery.batch_size {
                match self.receiver.try_recv() {
                    Ok(message) => self.take(&message, &mut batch),
                    Err(_) => break,
                }
            }
            self.counters.queued.set(self.receiver.len() as u64);
            if batch.is_empty() {
                continue;
            }
            let delivered = {
                let deliver = Self::deliver(
                    &mut self.link,
                    &batch,
                    &self.counters,
                    &self.delivery,
                    &mut self.connected,
                    &mut self.backoff,
                    &mut self.failing,
                );
                tokio::select! {
                    () = deliver => true,
                    () = self.shutdown.passed() => false,
                }
            };
            if !delivered {
                self.give_up(batch.len());
                return;
            }
            batch.clear();
        }
        // Everything queued was delivered: close the connection cleanly,
        // still within the deadline.
        if self.connected {
            let close = self.link.close();
            tokio::select! {
                () = close => {}
                () = self.shutdown.passed() => {}
            }
        }
        self.counters.connected.set(0);
        self.counters.queued.set(0);
    }

    fn take(&mut self, message: &DnsMessage, batch: &mut Vec<L::Item>) {
        match self.link.prepare(message) {
            Some(item) => batch.push(item),
            None => self.counters.dropped(DropReason::Error, 1),
        }
    }

    /// The deadline passed with `held` messages in hand: count them and
    /// everything still queued.
    fn give_up(&mut self, held: usize) {
        self.receiver.close();
        let mut left = held;
        while self.receiver.try_recv().is_ok() {
            left += 1;
        }
        self.counters.dropped(DropReason::Shutdown, left);
        self.counters.connected.set(0);
        self.counters.queued.set(0);
        if left > 0 {
            tracing::warn!(
                output = %self.delivery.name,
                undelivered = left,
                "output flush deadline passed; undelivered messages dropped"
            );
        }
    }

    /// Delivers `batch`, reconnecting as often as needed (the caller stops
    /// it at the flush deadline).
    async fn deliver(
        link: &mut L,
        batch: &[L::Item],
        counters: &Counters,
        delivery: &Delivery,
        connected: &mut bool,
        backoff: &mut Duration,
        failing: &mut bool,
    ) {
        loop {
            if !*connected {
                if !backoff.is_zero() {
                    tokio::time::sleep(*backoff).await;
                }
                let result = match tokio::time::timeout(delivery.send_timeout, link.connect()).await
                {
                    Ok(result) => result,
                    Err(_) => Err(LinkError::Transient("connect timed out".to_string())),
                };
                match result {
                    Ok(()) => {
                        *connected = true;
                        counters.connects.inc();
                        counters.connected.set(1);
                        if *failing {
                            tracing::info!(output = %delivery.name, "output reconnected");
                            *failing = false;
                        }
                    }
                    Err(error) => {
                        Self::failed(counters, delivery, backoff, failing, "connect", &error);
                        continue;
                    }
                }
            }
            let result = match tokio::time::timeout(delivery.send_timeout, link.send(batch)).await {
                Ok(result) => result,
                Err(_) => Err(LinkError::Transient("send timed out".to_string())),
            };
            match result {
                Ok(()) => {
                    counters.sent(batch.len());
                    *backoff = Duration::ZERO;
                    return;
                }
                Err(LinkError::Rejected(reason)) => {
                    counters.dropped(DropReason::Error, batch.len());
                    tracing::warn!(output = %delivery.name, %reason, messages = batch.len(), "output peer rejected a batch");
                    return;
                }
                Err(error) => {
                    *connected = false;
                    counters.connected.set(0);
                    Self::failed(counters, delivery, backoff, failing, "send", &error);
                }
            }
        }
    }

    fn failed(
        counters: &Counters,
        delivery: &Delivery,
        backoff: &mut Duration,
        failing: &mut bool,
        what: &str,
        error: &LinkError,
    ) {
        counters.error();
        *backoff = if backoff.is_zero() {
            delivery.initial_backoff
        } else {
            (*backoff * 2).min(delivery.max_backoff)
        };
        // One warning per outage; the errors counter has every attempt.
        if !*failing {
            tracing::warn!(output = %delivery.name, %error, retry_in = ?*backoff, "output {what} failed; retrying with backoff");
            *failing = true;
        }
    }
}

//---- Rendering ----

/// How the line outputs (`tcp`, `syslog`, `kafka`, `nats`) render a
/// message: the file output's text line, JSON object or YAML document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// dnstap-receiver's text line.
    Text,
    /// One JSON object with dnstap-receiver's keys [default].
    #[default]
    Json,
    /// One YAML document.
    Yaml,
}

/// Renders messages as the file output does, with query→response latency
/// from its own bounded table (one per output, fed in queue order).
pub struct Renderer {
    format: LineFormat,
    latency: LatencyTable,
}

impl Renderer {
    pub fn new(format: LineFormat) -> Renderer {
        Renderer {
            format,
            latency: LatencyTable::default(),
        }
    }

    /// The view of a message (`None` only for a dnstap frame without a
    /// message, which no input produces).
    pub fn view(&mut self, message: &DnsMessage) -> Option<MessageView> {
        MessageView::new(&message::to_dnstap(message), Some(&mut self.latency))
    }

    /// The rendered message, without a line end (YAML: the whole document,
    /// ending in a newline).
    pub fn render(&mut self, message: &DnsMessage) -> Option<String> {
        let view = self.view(message)?;
        Some(match self.format {
            LineFormat::Text => view.to_text(),
            LineFormat::Json => view.to_json(),
            LineFormat::Yaml => view.to_yaml(),
        })
    }

    /// Both the view and its rendering.
    pub fn view_and_render(&mut self, message: &DnsMessage) -> Option<(MessageView, String)> {
        let view = self.view(message)?;
        let line = match self.format {
            LineFormat::Text => view.to_text(),
            LineFormat::Json => view.to_json(),
            LineFormat::Yaml => view.to_yaml(),
        };
        Some((view, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_core::message::{MessageKind, MessageType, Origin};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn message(id: u16) -> DnsMessage {
        let mut wire = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(b"\x03www\x04test\x00\x00\x01\x00\x01");
        DnsMessage {
            kind: MessageKind::Known(MessageType::ClientQuery),
            identity: None,
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
            query_message: Some(bytes::Bytes::from(wire)),
            response_message: None,
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        }
    }

    /// A link whose peer is up or down as the test says, recording what it
    /// delivered.
    struct TestLink {
        up: Arc<AtomicBool>,
        delivered: Arc<AtomicUsize>,
    }

    impl Link for TestLink {
        type Item = u16;
        fn prepare(&mut self, _message: &DnsMessage) -> Option<u16> {
            Some(1)
        }
        async fn connect(&mut self) -> Result<(), LinkError> {
            if self.up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(LinkError::Transient("down".into()))
            }
        }
        async fn send(&mut self, batch: &[u16]) -> Result<(), LinkError> {
            if !self.up.load(Ordering::SeqCst) {
                return Err(LinkError::Transient("down".into()));
            }
            self.delivered.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
        async fn close(&mut self) {}
    }

    fn value(registry: &dnsrecall_metrics::Registry, name: &str, labels: &[(&str, &str)]) -> u64 {
        registry
            .gather()
            .into_iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| match s.value {
                dnsrecall_metrics::Value::Int(v) => v,
                _ => 0,
            })
            .sum()
    }

    #[tokio::test]
    async fn dead_peer_fills_the_queue_then_recovers_and_every_message_is_accounted() {
        let context = OutputContext::detached("test-dead");
        let registry = context.registry.clone();
        let up = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicUsize::new(0));
        let link = TestLink {
            up: up.clone(),
            delivered: delivered.clone(),
        };
        let mut delivery = Delivery::new("test-dead".into(), 8, 4);
        delivery.initial_backoff = Duration::from_millis(5);
        delivery.max_backoff = Duration::from_millis(20);
        let output = QueueOutput::start(link, delivery, &context);
        for id in 0..100 {
            output.offer(&message(id));
            tokio::task::yield_now().await;
        }
        let full = value(
            &registry,
            "dnsrecall_output_dropped_total",
            &[("output", "test-dead"), ("reason", "queue_full")],
        );
        assert!(full >= 100 - 8 - 4, "dropped {full}");
        up.store(true, Ordering::SeqCst);
        context
            .deadline
            .set(std::time::Instant::now() + Duration::from_secs(5));
        output.finish().unwrap().await.unwrap();
        let sent = value(
            &registry,
            "dnsrecall_output_written_total",
            &[("output", "test-dead")],
        );
        assert_eq!(sent as usize, delivered.load(Ordering::SeqCst));
        assert_eq!(sent + full, 100, "every message sent or counted");
        assert!(value(&registry, "dnsrecall_output_errors_total", &[]) > 0);
        assert_eq!(value(&registry, "dnsrecall_output_connects_total", &[]), 1);
    }

    #[tokio::test]
    async fn flush_deadline_counts_what_is_left() {
        let context = OutputContext::detached("test-gone");
        let registry = context.registry.clone();
        let link = TestLink {
            up: Arc::new(AtomicBool::new(false)),
            delivered: Arc::new(AtomicUsize::new(0)),
        };
        let output = QueueOutput::start(link, Delivery::new("test-gone".into(), 50, 10), &context);
        for id in 0..30 {
            output.offer(&message(id));
        }
        context.deadline.set(std::time::Instant::now());
        output.finish().unwrap().await.unwrap();
        output.offer(&message(99));
        let shutdown = value(
            &registry,
            "dnsrecall_output_dropped_total",
            &[("reason", "shutdown")],
        );
        assert_eq!(shutdown, 31);
        assert_eq!(value(&registry, "dnsrecall_output_written_total", &[]), 0);
    }
}

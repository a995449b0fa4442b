//! `kind = "kafka"`: every message, rendered as text, JSON or YAML, as a
//! record of a Kafka topic, through `rskafka` (pure Rust: no librdkafka).
//! The topic is created when missing (`partitions`, replication 1). Each
//! record is keyed (`key`: the query name by default, so one name stays in
//! one partition and in order), stamped with the message's event time, and
//! produced in batches (`batch_size` records per produce request and
//! partition) with optional compression. Delivery (bounded queue,
//! reconnect with backoff, flush deadline) is [`super::queue`]'s.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use dnsrecall_core::message::DnsMessage;
use rskafka::BackoffConfig;
use rskafka::chrono::{DateTime, Utc};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use serde::{Deserialize, Serialize};

use super::queue::{self, Delivery, LineFormat, Link, LinkError, QueueOutput, Renderer};
use super::{BuildError, OutputContext};

/// What a record is keyed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaKey {
    /// The query name (`www.example.com.`) [default].
    #[default]
    Qname,
    /// The client (query) address.
    QueryIp,
    /// The identity of the sender.
    Identity,
    /// No key: records are spread over the partitions in turn.
    None,
}

/// Record batch compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    /// [default]
    #[default]
    None,
    Gzip,
    Lz4,
    Snappy,
    Zstd,
}

impl KafkaCompression {
    fn rskafka(self) -> Compression {
        match self {
            KafkaCompression::None => Compression::NoCompression,
            KafkaCompression::Gzip => Compression::Gzip,
            KafkaCompression::Lz4 => Compression::Lz4,
            KafkaCompression::Snappy => Compression::Snappy,
            KafkaCompression::Zstd => Compression::Zstd,
        }
    }
}

fn default_batch_size() -> usize {
    500
}

fn default_partitions() -> i32 {
    1
}

/// `[[outputs]] kind = "kafka"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port` each (required).
    pub brokers: Vec<String>,
    /// Topic (required).
    pub topic: String,
    /// `text`, `json` or `yaml` record value [default: `json`].
    #[serde(default)]
    pub format: LineFormat,
    /// `qname`, `query_ip`, `identity` or `none` [default: `qname`].
    #[serde(default)]
    pub key: KafkaKey,
    /// `none`, `gzip`, `lz4`, `snappy` or `zstd` [default: `none`].
    #[serde(default)]
    pub compression: KafkaCompression,
    /// Most records per produce request [default: 500].
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Partitions of the topic when dnsrecall creates it [default: 1].
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Messages queued; beyond, new ones are dropped and counted
    /// [default: 10000].
    #[serde(default = "queue::default_queue_size")]
    pub queue_size: usize,
}

impl KafkaConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        queue::validate(&name, self.queue_size, self.batch_size)?;
        if self.brokers.is_empty() {
            return Err(format!("output {name}: brokers is empty"));
        }
        for broker in &self.brokers {
            super::tcp::check_host_port(&name, broker)?;
        }
        // Kafka's own rule for topic names.
        let topic_ok = !self.topic.is_empty()
            && self.topic.len() <= 249
            && self.topic != "."
            && self.topic != ".."
            && self
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !topic_ok {
            return Err(format!(
                "output {name}: topic must be 1 to 249 of letters, digits, '.', '_' and '-'"
            ));
        }
        if self.partitions < 1 {
            return Err(format!("output {name}: partitions must be at least 1"));
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("kafka:{}", self.topic)
    }
}

/// Starts a Kafka output.
pub fn start(config: &KafkaConfig, context: &OutputContext) -> Result<QueueOutput, BuildError> {
    let link = KafkaLink {
        config: config.clone(),
        renderer: Renderer::new(config.format),
        client: None,
        partitions: Vec::new(),
        next: 0,
    };
    let delivery = Delivery::new(context.name.clone(), config.queue_size, config.batch_size);
    Ok(QueueOutput::start(link, delivery, context))
}

struct KafkaLink {
    config: KafkaConfig,
    renderer: Renderer,
    client: Option<Client>,
    /// One client per partition of the topic, in partition order.
    partitions: Vec<Arc<PartitionClient>>,
    /// Round robin over partitions for unkeyed records.
    next: usize,
}

/// A rendered record and the partition-choosing hash of its key.
struct Keyed {
    record: Record,
    hash: Option<u64>,
}

/// The current time (rskafka's chrono is built without its clock).
fn now() -> DateTime<Utc> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    DateTime::from_timestamp(
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        since.subsec_nanos(),
    )
    .unwrap_or_default()
}

fn event_time(message: &DnsMessage) -> DateTime<Utc> {
    let time = if message.is_query() {
        message.query_time
    } else {
        message.response_time
    };
    time.and_then(|t| {
        DateTime::from_timestamp(i64::try_from(t.secs).ok()?, t.nanos.min(999_999_999))
    })
    .unwrap_or_else(now)
}

impl Link for KafkaLink {
    type Item = Keyed;

    fn prepare(&mut self, message: &DnsMessage) -> Option<Keyed> {
        let (view, value) = self.renderer.view_and_render(message)?;
        let key = match self.config.key {
            KafkaKey::Qname => view.qname,
            KafkaKey::QueryIp => view.query_ip,
            KafkaKey::Identity => view.identity,
            KafkaKey::None => None,
        };
        let hash = key.as_ref().map(|key| {
            // A fixed hasher: the same key maps to the same partition in
            // every run.
            let mut hasher = std::hash::DefaultHasher::new();
            key.hash(&mut hasher);
            hasher.finish()
        });
        Some(Keyed {
            record: Record {
                key: key.map(String::into_bytes),
                value: Some(value.into_bytes()),
                headers: BTreeMap::new(),
                timestamp: event_time(message),
            },
            hash,
        })
    }

    async fn connect(&mut self) -> Result<(), LinkError> {
        self.client = None;
        self.partitions.clear();
        let topic = &self.config.topic;
        let client = ClientBuilder::new(self.config.brokers.clone())
            .client_id("dnsrecall")
            // rskafka's own retries end; the queue worker's backoff takes over.
            .backoff_config(BackoffConfig {
                deadline: Some(Duration::from_secs(10)),
                ..Default::default()
            })
            .build()
            .await
            .map_err(|e| LinkError::transient("connect to the Kafka brokers", e))?;
        let topics = client
            .list_topics()
            .await
            .map_err(|e| LinkError::transient("list topics", e))?;
        let partitions: Vec<i32> = match topics.iter().find(|t| &t.name == topic) {
            Some(found) if !found.partitions.is_empty() => {
                found.partitions.iter().copied().collect()
            }
            _ => {
                let controller = client
                    .controller_client()
                    .map_err(|e| LinkError::transient("find the Kafka controller", e))?;
                controller
                    .create_topic(topic.clone(), self.config.partitions, 1, 5_000)
                    .await
                    .map_err(|e| LinkError::transient(&format!("create topic {topic}"), e))?;
                tracing::info!(
                    topic,
                    partitions = self.config.partitions,
                    "created Kafka topic"
                );
                (0..self.config.partitions).collect()
            }
        };
        for partition in partitions {
            let partition_client = client
                .partition_client(topic.clone(), partition, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| {
                    LinkError::transient(&format!("open partition {topic}/{partition}"), e)
                })?;
            self.partitions.push(Arc::new(partition_client));
        }
        self.client = Some(client);
        Ok(())
    }

    async fn send(&mut self, batch: &[Keyed]) -> Result<(), LinkError> {
        if self.client.is_none() || self.partitions.is_empty() {
            return Err(LinkError::Transient("not connected".into()));
        }
        let count = self.partitions.len();
        let mut per_partition: Vec<Vec<Record>> = vec![Vec::new(); count];
        for keyed in batch {
            let index = match keyed.hash {
                Some(hash) => (hash % count as u64) as usize,
                None => {
                    self.next = (self.next + 1) % count;
                    self.next
                }
            };
            per_partition[index].push(keyed.record.clone());
        }
        let compression = self.config.compression.rskafka();
        for (index, records) in per_partition.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            if let Err(error) = self.partitions[index].produce(records, compression).await {
                self.client = None;
                self.partitions.clear();
                return Err(LinkError::transient("produce", error));
            }
        }
        Ok(())
    }

    async fn close(&mut self) {
        self.partitions.clear();
        self.client = None;
    }
}

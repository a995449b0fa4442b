//! Message outputs: components that receive every [`DnsMessage`] any input
//! decoded (dnstap frames and captured packets alike), configured as
//! `[[outputs]] kind = "..."`.
//!
//! An output is offered each message without blocking: it keeps a bounded
//! queue, and a full queue drops the message and counts it, so a slow disk
//! or peer never stalls ingest. Adding an output: a module here with its
//! config type beside it, one [`OutputConfig`] variant and one arm in
//! [`build`] (and in [`OutputConfig::resolve_paths`] /
//! [`OutputConfig::validate`] when it has paths or checks).
//!
//! What every kind gets from this module, whatever it does:
//! - the keys common to all kinds ([`OutputCommon`]: `name`, the filters
//!   of [`filter::FilterConfig`], `flush_timeout_secs`), read at the
//!   `[[outputs]]` level beside `kind` by [`OutputEntry`]'s own
//!   `Deserialize`, which hands the remaining keys to the kind's strict
//!   (`deny_unknown_fields`) config type;
//! - the filters, applied before the output's queue (a filtered-out
//!   message never costs the output anything; counted per output and
//!   filter in `dnsrecall_output_filtered_total`);
//! - GeoIP/ASN enrichment ([`geoip`], `[geoip]`), looked up once per
//!   message for every output that needs it ([`Enrichment`]);
//! - [`OutputMetrics`], i.e. `dnsrecall_output_{offered,written,errors}_total`
//!   and `dnsrecall_output_dropped_total{output, reason}` (one series per
//!   output and [`DropReason`]);
//! - a flush deadline at shutdown ([`Deadline`]): [`MessageOutputs::finish`]
//!   waits at most `flush_timeout_secs` per output; what an output still
//!   holds then is dropped and counted (`reason="shutdown"`).

pub mod dnstap;
pub mod file;
pub mod filter;
pub mod geoip;
pub mod kafka;
pub mod metrics;
pub mod nats;
pub mod postgres;
pub mod queue;
pub mod stats;
pub mod syslog;
pub mod tcp;
pub mod template;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::output::Geo;
use dnsrecall_metrics::{Counter, Registry};
use serde::{Deserialize, Serialize};

use self::filter::{Filter, FilterConfig};
use self::geoip::{GeoIp, GeoIpConfig};

/// Default time an output gets at shutdown to write what it queued.
pub const DEFAULT_FLUSH_TIMEOUT_SECS: u64 = 5;

//---- MessageOutput ----

/// A component that receives every decoded DNS message.
pub trait MessageOutput: Send + Sync {
    /// Offers one message; never blocks (a full queue drops and counts).
    fn offer(&self, message: &DnsMessage);

    /// Offers one message with what the outputs machinery looked up for it
    /// (GeoIP). Outputs that render enrichment override this; the default
    /// ignores it.
    fn offer_enriched(&self, message: &DnsMessage, enrichment: &Enrichment) {
        let _ = enrichment;
        self.offer(message);
    }

    /// Stops taking messages; the returned task ends once what was queued
    /// is written (or the [`Deadline`] passed).
    fn finish(&self) -> Option<tokio::task::JoinHandle<()>>;
}

/// What was looked up for one message, shared by every output it is
/// offered to.
#[derive(Clone, Debug, Default)]
pub struct Enrichment {
    /// GeoIP/ASN of the client (and of the EDNS Client Subnet), when
    /// `[geoip]` is configured.
    pub geo: Option<Arc<Geo>>,
}

//---- Configuration ----

/// `[[outputs]] kind = ...`: the kind-specific part of one output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputConfig {
    /// Message logs (text, JSON, YAML, a template, or dnstap files) to
    /// stdout or a rotated file.
    File(file::FileConfig),
    /// dnstap-receiver's periodic one-line traffic summary.
    Metrics(metrics::MetricsConfig),
    /// Lines (text, NDJSON, YAML) to a TCP collector, optionally TLS.
    Tcp(tcp::TcpConfig),
    /// Syslog records (RFC 5424/3164) over UDP, TCP or a unix socket.
    Syslog(syslog::SyslogConfig),
    /// A dnstap relay (Frame Streams) to another receiver.
    Dnstap(dnstap::DnstapRelayConfig),
    /// Records of a Kafka topic.
    Kafka(kafka::KafkaConfig),
    /// Messages on a NATS subject, optionally JetStream.
    Nats(nats::NatsConfig),
    /// Rows of a PostgreSQL table.
    Postgres(postgres::PostgresConfig),
}

impl OutputConfig {
    /// The `kind` key's value.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputConfig::File(_) => "file",
            OutputConfig::Metrics(_) => "metrics",
            OutputConfig::Tcp(_) => "tcp",
            OutputConfig::Syslog(_) => "syslog",
            OutputConfig::Dnstap(_) => "dnstap",
            OutputConfig::Kafka(_) => "kafka",
            OutputConfig::Nats(_) => "nats",
            OutputConfig::Postgres(_) => "postgres",
        }
    }

    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        match self {
            OutputConfig::File(config) => config.resolve_paths(base),
            OutputConfig::Metrics(config) => config.resolve_paths(base),
            OutputConfig::Tcp(config) => config.resolve_paths(base),
            OutputConfig::Syslog(config) => config.resolve_paths(base),
            OutputConfig::Dnstap(config) => config.resolve_paths(base),
            OutputConfig::Kafka(_) | OutputConfig::Nats(_) | OutputConfig::Postgres(_) => {}
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            OutputConfig::File(config) => config.validate(),
            OutputConfig::Metrics(config) => config.validate(),
            OutputConfig::Tcp(config) => config.validate(),
            OutputConfig::Syslog(config) => config.validate(),
            OutputConfig::Dnstap(config) => config.validate(),
            OutputConfig::Kafka(config) => config.validate(),
            OutputConfig::Nats(config) => config.validate(),
            OutputConfig::Postgres(config) => config.validate(),
        }
    }
}

/// The keys every output kind has, at the `[[outputs]]` level beside `kind`.
///
/// Not `deny_unknown_fields` (serde does not support it with `flatten`):
/// only the [`OutputCommon::KEYS`] ever reach it, the kind's strict config
/// refuses everything else.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputCommon {
    /// The output's name in `/metrics` (`output="..."`) and logs
    /// [default: `<kind>-<position>`, e.g. `file-0`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds the output gets at shutdown to write what it holds; the
    /// rest is dropped and counted (`reason="shutdown"`) [default: 5].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_timeout_secs: Option<u64>,
    /// Which messages this output gets (all when empty).
    #[serde(flatten)]
    pub filter: FilterConfig,
}

impl OutputCommon {
    /// The top-level keys [`OutputCommon`] takes (the ones pulled out of an
    /// `[[outputs]]` table before the kind's config reads the rest).
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "flush_timeout_secs",
        "qname_regex",
        "identity_regex",
        "message_types",
        "rcodes",
        "qtypes",
        "client_cidrs",
        "countries",
        "asns",
        "sample",
    ];
}

/// One `[[outputs]]` table: the common keys and the kind's own.
///
/// Deserialized by hand: serde's `flatten` would hand the kind's config a
/// map that accepts anything, which breaks `deny_unknown_fields`. Instead
/// the table is read as a map, the [`OutputCommon::KEYS`] are moved to a
/// second map, and each map is deserialized strictly into its type.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputEntry {
    pub common: OutputCommon,
    pub config: OutputConfig,
}

impl OutputEntry {
    /// An output with no filters and default common keys.
    pub fn new(config: OutputConfig) -> OutputEntry {
        OutputEntry {
            common: OutputCommon::default(),
            config,
        }
    }

    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        self.config.resolve_paths(base);
    }

    /// Checks what serde cannot (the filters compile, the kind's values).
    pub fn validate(&self) -> Result<(), String> {
        let name = self.common.name.as_deref().unwrap_or(self.config.kind());
        Filter::new(&self.common.filter).map_err(|error| format!("output {name}: {error}"))?;
        self.config.validate()
    }
}

impl<'de> Deserialize<'de> for OutputEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::deserialize(deserializer)?;
        let mut common = serde_json::Map::new();
        for key in OutputCommon::KEYS {
            if let Some(value) = table.remove(*key) {
                common.insert((*key).to_string(), value);
            }
        }
        let kind = table
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("?")
            .to_string();
        let config = OutputConfig::deserialize(serde_json::Value::Object(table))
            .map_err(|e| D::Error::custom(format!("[[outputs]] kind = \"{kind}\": {e}")))?;
        let common = OutputCommon::deserialize(serde_json::Value::Object(common))
            .map_err(|e| D::Error::custom(format!("[[outputs]] kind = \"{kind}\": {e}")))?;
        Ok(OutputEntry { common, config })
    }
}

impl Serialize for OutputEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = match serde_json::to_value(&self.config).map_err(S::Error::custom)? {
            serde_json::Value::Object(table) => table,
            _ => return Err(S::Error::custom("an output config is a table")),
        };
        if let serde_json::Value::Object(common) =
            serde_json::to_value(&self.common).map_err(S::Error::custom)?
        {
            table.extend(common);
        }
        table.serialize(serializer)
    }
}

//---- Metrics ----

/// Why an output dropped a message (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its queue was full (the output is slower than the traffic).
    QueueFull,
    /// Writing or sending it failed.
    Error,
    /// The peer is unreachable (the output was reconnecting).
    Disconnected,
    /// It was still queued when the flush deadline passed at shutdown.
    Shutdown,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Error,
        DropReason::Disconnected,
        DropReason::Shutdown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Error => "error",
            DropReason::Disconnected => "disconnected",
            DropReason::Shutdown => "shutdown",
        }
    }
}

/// The counters of one output, all labelled `output="<name>"`. Shared
/// between the offering side (any input's thread) and the output's
/// worker, so every bump is [`Counter::add_shared`].
#[derive(Debug)]
pub struct OutputMetrics {
    /// Messages that passed the filters and were offered to the queue.
    pub offered: Arc<Counter>,
    /// Messages written or sent.
    pub written: Arc<Counter>,
    /// Write/send/connect errors (a dropped message is also counted in
    /// `dropped`).
    pub errors: Arc<Counter>,
    dropped: [Arc<Counter>; 4],
}

impl OutputMetrics {
    /// Registers the counters of output `name`.
    pub fn new(registry: &Registry, name: &str) -> OutputMetrics {
        let labels = [("output", name)];
        OutputMetrics {
            offered: registry.counter(
                "dnsrecall_output_offered_total",
                "Messages that passed an output's filters and were offered to its queue.",
                &labels,
            ),
            written: registry.counter(
                "dnsrecall_output_written_total",
                "Messages an output wrote or sent.",
                &labels,
            ),
            errors: registry.counter(
                "dnsrecall_output_errors_total",
                "Write, send or connection errors of an output.",
                &labels,
            ),
            dropped: DropReason::ALL.map(|reason| {
                registry.counter(
                    "dnsrecall_output_dropped_total",
                    "Messages an output dropped, by reason (queue_full, error, disconnected, shutdown).",
                    &[("output", name), ("reason", reason.as_str())],
                )
            }),
        }
    }

    /// A detached set (tests, outputs built outside a registry).
    pub fn detached() -> OutputMetrics {
        OutputMetrics::new(&Registry::default(), "detached")
    }

    /// The drop counter of `reason`.
    pub fn dropped(&self, reason: DropReason) -> &Counter {
        let index = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        &self.dropped[index]
    }

    /// Counts `n` messages dropped for `reason`.
    pub fn drop_n(&self, reason: DropReason, n: u64) {
        self.dropped(reason).add_shared(n);
    }
}

//---- Deadline ----

/// The flush deadline at shutdown, shared by [`MessageOutputs::finish`]
/// (which sets it) and an output's worker (which stops writing, and
/// counts what it still holds as dropped, once it has passed).
#[derive(Clone, Debug, Default)]
pub struct Deadline {
    at: Arc<OnceLock<Instant>>,
    passed: Arc<AtomicBool>,
}

impl Deadline {
    /// Sets the deadline (the first call wins).
    pub fn set(&self, at: Instant) {
        let _ = self.at.set(at);
    }

    /// Whether the deadline is set and has passed.
    pub fn passed(&self) -> bool {
        if self.passed.load(Ordering::Relaxed) {
            return true;
        }
        let passed = self.at.get().is_some_and(|at| Instant::now() >= *at);
        if passed {
            self.passed.store(true, Ordering::Relaxed);
        }
        passed
    }
}

//---- Building ----

/// What an output is started with.
#[derive(Clone)]
pub struct OutputContext {
    /// The output's name (`output="..."` in `/metrics`).
    pub name: String,
    /// Its counters.
    pub metrics: Arc<OutputMetrics>,
    /// The registry, for counters of its own.
    pub registry: Arc<Registry>,
    /// Set at shutdown; past it, stop writing and count what is left.
    pub deadline: Deadline,
    /// Whether GeoIP enrichment is on (`[geoip]` configured): outputs that
    /// render it then show its fields.
    pub geo: bool,
}

impl OutputContext {
    /// A context outside [`build`] (tests): a private registry.
    pub fn detached(name: &str) -> OutputContext {
        let registry = Arc::new(Registry::default());
        OutputContext {
            name: name.to_string(),
            metrics: Arc::new(OutputMetrics::new(&registry, name)),
            registry,
            deadline: Deadline::default(),
            geo: false,
        }
    }
}

/// Per-filter counters of one output.
struct FilterCounters {
    by_reason: Vec<Arc<Counter>>,
}

/// One running output with what the machinery keeps for it.
struct Slot {
    name: String,
    filter: Option<Filter>,
    filtered: Option<FilterCounters>,
    output: Box<dyn MessageOutput>,
    flush_timeout: Duration,
    deadline: Deadline,
    metrics: Option<Arc<OutputMetrics>>,
}

/// The running outputs, shared by every input.
#[derive(Clone, Default)]
pub struct MessageOutputs {
    slots: Arc<Vec<Slot>>,
    geoip: Option<Arc<GeoIp>>,
}

impl MessageOutputs {
    /// Whether any output is running (inputs skip building messages for
    /// nobody).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds an output built outside the registry (e.g. the statistics,
    /// whose handle the HTTP routes share): no filters, no enrichment;
    /// only before the outputs are handed to the inputs.
    pub fn push(&mut self, output: Box<dyn MessageOutput>) -> Result<(), Box<dyn MessageOutput>> {
        match Arc::get_mut(&mut self.slots) {
            Some(slots) => {
                slots.push(Slot {
                    name: format!("extra-{}", slots.len()),
                    filter: None,
                    filtered: None,
                    output,
                    flush_timeout: Duration::from_secs(DEFAULT_FLUSH_TIMEOUT_SECS),
                    deadline: Deadline::default(),
                    metrics: None,
                });
                Ok(())
            }
            None => Err(output),
        }
    }

    /// Offers `message` to every output whose filters it passes; GeoIP is
    /// looked up once, when the first output needs it.
    pub fn offer(&self, message: &DnsMessage) {
        let mut enrichment = Enrichment::default();
        let mut looked_up = false;
        for slot in self.slots.iter() {
            let Some(filter) = &slot.filter else {
                slot.output.offer(message);
                continue;
            };
            if !looked_up && let Some(geoip) = &self.geoip {
                enrichment.geo = geoip.lookup_message(message).map(Arc::new);
                looked_up = true;
            }
            match filter.check(message, enrichment.geo.as_deref()) {
                Ok(()) => {
                    if let Some(metrics) = &slot.metrics {
                        metrics.offered.add_shared(1);
                    }
                    slot.output.offer_enriched(message, &enrichment);
                }
                Err(reason) => {
                    if let Some(counters) = &slot.filtered
                        && let Some(counter) = counters.by_reason.get(reason as usize)
                    {
                        counter.add_shared(1);
                    }
                }
            }
        }
    }

    /// Finishes every output (after the inputs stopped) and waits until
    /// each has written what it queued, at most its `flush_timeout_secs`
    /// (all outputs flush in parallel).
    pub async fn finish(&self) {
        let now = Instant::now();
        let mut tasks = Vec::new();
        for slot in self.slots.iter() {
            slot.deadline.set(now + slot.flush_timeout);
            if let Some(task) = slot.output.finish() {
                tasks.push((slot, task));
            }
        }
        for (slot, task) in tasks {
            // The worker sees the deadline too and stops by itself; the
            // extra second covers its last flush.
            let left = (now + slot.flush_timeout + Duration::from_secs(1))
                .saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, task).await {
                Ok(_) => {}
                Err(_) => tracing::warn!(
                    output = slot.name,
                    timeout_secs = slot.flush_timeout.as_secs(),
                    "message output did not finish within its flush deadline; left behind"
                ),
            }
        }
    }
}

/// Builds the configured outputs: the one registry of output kinds. Must
/// be called inside a tokio runtime.
pub fn build(
    entries: &[OutputEntry],
    geoip: Option<&GeoIpConfig>,
    registry: &Arc<Registry>,
) -> Result<MessageOutputs, BuildError> {
    let geoip = match geoip {
        Some(config) => Some(Arc::new(GeoIp::open(config)?)),
        None => None,
    };
    let mut slots = Vec::with_capacity(entries.len());
    for (position, entry) in entries.iter().enumerate() {
        let name = entry
            .common
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{position}", entry.config.kind()));
        let filter = Filter::new(&entry.common.filter).map_err(|error| BuildError::Config {
            output: name.clone(),
            message: error.to_string(),
        })?;
        if filter.needs_geo() && geoip.is_none() {
            return Err(BuildError::Config {
                output: name,
                message: "countries/asns filters need a [geoip] section".to_string(),
            });
        }
        let metrics = Arc::new(OutputMetrics::new(registry, &name));
        let filtered = FilterCounters {
            by_reason: filter::FilterReason::ALL
                .iter()
                .map(|reason| {
                    registry.counter(
                        "dnsrecall_output_filtered_total",
                        "Messages an output's filters kept from it, by the filter that refused them.",
                        &[("output", &name), ("filter", reason.as_str())],
                    )
                })
                .collect(),
        };
        let context = OutputContext {
            name: name.clone(),
            metrics: metrics.clone(),
            registry: registry.clone(),
            deadline: Deadline::default(),
            geo: geoip.is_some(),
        };
        let output: Box<dyn MessageOutput> = match &entry.config {
            OutputConfig::File(file) => Box::new(file::FileOutput::start(file, &context)?),
            OutputConfig::Metrics(config) => {
                Box::new(metrics::MetricsOutput::start(config, &context)?)
            }
            OutputConfig::Tcp(config) => Box::new(tcp::start(config, &context)?),
            OutputConfig::Syslog(config) => Box::new(syslog::start(config, &context)?),
            OutputConfig::Dnstap(config) => Box::new(dnstap::start(config, &context)?),
            OutputConfig::Kafka(config) => Box::new(kafka::start(config, &context)?),
            OutputConfig::Nats(config) => Box::new(nats::start(config, &context)?),
            OutputConfig::Postgres(config) => Box::new(postgres::start(config, &context)?),
        };
        slots.push(Slot {
            name,
            filter: Some(filter),
            filtered: Some(filtered),
            output,
            flush_timeout: Duration::from_secs(
                entry
                    .common
                    .flush_timeout_secs
                    .unwrap_or(DEFAULT_FLUSH_TIMEOUT_SECS),
            ),
            deadline: context.deadline.clone(),
            metrics: Some(metrics),
        });
    }
    if slots.iter().any(|s| s.filter.is_some()) {
        file::watch_sighup();
    }
    Ok(MessageOutputs {
        slots: Arc::new(slots),
        geoip,
    })
}

/// An output that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open output {target}: {source}")]
    Open {
        target: String,
        source: std::io::Error,
    },
    #[error("output {output}: {message}")]
    Config { output: String, message: String },
    #[error("cannot open GeoIP database {path}: {message}")]
    GeoIp { path: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        outputs: Vec<OutputEntry>,
    }

    #[test]
    fn common_keys_beside_kind_and_strict_kinds() {
        let doc: Doc = toml::from_str(
            "[[outputs]]\nkind = \"file\"\nformat = \"json\"\npath = \"x.json\"\n\
             name = \"main\"\nqname_regex = \"^www\\\\.\"\nmessage_types = [\"CLIENT_RESPONSE\"]\n\
             rcodes = [\"NXDOMAIN\"]\nsample = 10\nflush_timeout_secs = 2\n",
        )
        .unwrap();
        let entry = &doc.outputs[0];
        assert_eq!(entry.common.name.as_deref(), Some("main"));
        assert_eq!(entry.common.flush_timeout_secs, Some(2));
        assert_eq!(entry.common.filter.sample, 10);
        assert_eq!(entry.common.filter.rcodes, ["NXDOMAIN"]);
        match &entry.config {
            OutputConfig::File(file) => assert_eq!(file.path, "x.json"),
            other => panic!("expected a file output, got {other:?}"),
        }
        entry.validate().unwrap();
        // An unknown key is refused, naming the kind.
        let error =
            toml::from_str::<Doc>("[[outputs]]\nkind = \"file\"\nformat = \"json\"\ncolour = 1\n")
                .err()
                .expect("unknown key refused")
                .to_string();
        assert!(
            error.contains("colour") && error.contains("file"),
            "{error}"
        );
        // Round trip through serialization.
        let printed = toml::to_string(
            &serde_json::json!({"outputs": [serde_json::to_value(entry).unwrap()]}),
        )
        .unwrap();
        let again: Doc = toml::from_str(&printed).unwrap();
        assert_eq!(&again.outputs[0], entry);
    }

    #[test]
    fn keys_list_matches_the_struct() {
        let mut common = OutputCommon {
            name: Some("n".into()),
            flush_timeout_secs: Some(1),
            filter: FilterConfig::default(),
        };
        common.filter.qname_regex = Some("a".into());
        common.filter.identity_regex = Some("a".into());
        common.filter.message_types = vec!["CLIENT_QUERY".into()];
        common.filter.rcodes = vec!["NOERROR".into()];
        common.filter.qtypes = vec!["A".into()];
        common.filter.client_cidrs = vec!["10.0.0.0/8".into()];
        common.filter.countries = vec!["FR".into()];
        common.filter.asns = vec![1];
        common.filter.sample = 2;
        let value = serde_json::to_value(&common).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = OutputCommon::KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn deadline_passes_once_set() {
        let deadline = Deadline::default();
        assert!(!deadline.passed());
        deadline.set(Instant::now());
        assert!(deadline.passed());
    }
}

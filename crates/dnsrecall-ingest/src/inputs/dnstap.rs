//! The dnstap source: Frame Streams servers (unix, TCP, TLS) and clients,
//! dnstap files for `import`, message logs; responses become entries.
//!
//! Flow in `serve`: every input (listener or outgoing client) runs the
//! `dnsrecall-dnstap` server code and delivers frames to one shared bounded
//! channel; one consumer task decodes each frame's protobuf once into a
//! [`DnsMessage`] ([`crate::message::from_dnstap`]), offers it to the
//! message outputs, and hands it to the shared decode step
//! ([`crate::decode::MessageDecoder`]), whose entries are sent in batches
//! (4096 entries or 100 ms) to the store writer, awaiting the send
//! (back-pressure reaches the connections through the full frame channel).
//!
//! On shutdown the servers stop accepting and drain their connections, the
//! consumer drains the channel, sends its last batch, logs a summary of its
//! counters and ends.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use dnsrecall_core::decode::{AdditionalPolicy, DecodeError};
use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::proto::message::Type as MessageType;
use dnsrecall_dnstap::server::{self, ClientConfig, ClientTls, DataFrame};
use dnsrecall_dnstap::{FileReader, FrameConfig, Metrics, ServerConfig, decode_dnstap};
use dnsrecall_metrics::{Kind, Sample, Value};
use dnsrecall_pipeline::Batch;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::IngestContext;
use crate::decode::{self, MessageDecoder};
use crate::message;
use crate::outputs::MessageOutputs;
pub use crate::outputs::file::{FileConfig as DnstapOutput, OutputFormat};

/// Default data frame cap: 1 MiB (libfstrm's reader default).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1 << 20;
/// Frames buffered between the connections and the consumer.
const FRAME_CHANNEL: usize = 8192;
/// Entries per batch sent to the store writer.
const BATCH_ENTRIES: usize = 4096;
/// Longest time a non-empty batch waits before it is sent.
const BATCH_INTERVAL: Duration = Duration::from_millis(100);
/// Frames taken from the channel at once.
const RECEIVE_CHUNK: usize = 256;

/// Every `*_RESPONSE` message type.
const RESPONSE_TYPES: [MessageType; 7] = [
    MessageType::AuthResponse,
    MessageType::ResolverResponse,
    MessageType::ClientResponse,
    MessageType::ForwarderResponse,
    MessageType::StubResponse,
    MessageType::ToolResponse,
    MessageType::UpdateResponse,
];

const ALL_TYPES: [MessageType; 14] = [
    MessageType::AuthQuery,
    MessageType::AuthResponse,
    MessageType::ResolverQuery,
    MessageType::ResolverResponse,
    MessageType::ClientQuery,
    MessageType::ClientResponse,
    MessageType::ForwarderQuery,
    MessageType::ForwarderResponse,
    MessageType::StubQuery,
    MessageType::StubResponse,
    MessageType::ToolQuery,
    MessageType::ToolResponse,
    MessageType::UpdateQuery,
    MessageType::UpdateResponse,
];

//---- Configuration ----

/// `[dnstap]`: dnstap inputs and message outputs of `serve`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnstapConfig {
    /// TCP address to receive dnstap on (e.g. `127.0.0.1:6000`) [default: unset].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddr>,
    /// TLS address to receive dnstap on; needs `tls_cert` and `tls_key` [default: unset].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<SocketAddr>,
    /// Unix socket path to receive dnstap on; a stale socket there is
    /// replaced, a regular file is not [default: unset].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix: Option<PathBuf>,
    /// Permission bits of the unix socket, as an octal string (`"0660"`)
    /// [default: unset, the umask decides].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_mode: Option<String>,
    /// PEM certificate chain of the TLS input (also presented by TLS
    /// clients when set) [default: unset].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` [default: unset].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: when set, TLS senders must present a certificate it signed
    /// [default: unset, no client certificates].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// Senders that listen (CoreDNS `dnstap listen`, ...) to connect out to;
    /// reconnects with exponential backoff (1 s doubling to 60 s) [default: none].
    pub clients: Vec<DnstapClient>,
    /// Largest accepted data frame in bytes; a larger one ends its
    /// connection [default: 1048576].
    pub max_frame_bytes: usize,
    /// Message types whose `response_message` becomes records, by dnstap
    /// name (`CLIENT_RESPONSE`, ...) [default: every `*_RESPONSE` type].
    pub store_types: Vec<String>,
    /// Store records; `false` makes a pure collector (outputs only)
    /// [default: true].
    pub store: bool,
    /// Additional-section records to keep: `in-bailiwick` (inside the
    /// message's `query_zone`, all of them when it is unknown), `always`,
    /// `never` [default: `in-bailiwick`].
    pub additional: AdditionalPolicy,
    /// Message logs / dnstap file copies of everything received [default: none].
    pub outputs: Vec<DnstapOutput>,
}

impl Default for DnstapConfig {
    fn default() -> Self {
        DnstapConfig {
            tcp: None,
            tls: None,
            unix: None,
            unix_mode: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            clients: Vec::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            store_types: RESPONSE_TYPES
                .iter()
                .map(|t| t.name().to_string())
                .collect(),
            store: true,
            additional: AdditionalPolicy::default(),
            outputs: Vec::new(),
        }
    }
}

/// `[[dnstap.clients]]`: a listening sender to connect to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnstapClient {
    /// The sender's address (required).
    pub address: SocketAddr,
    /// Speak TLS [default: false].
    #[serde(default)]
    pub tls: bool,
    /// PEM CA that signed the sender's certificate (required with `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify the sender's certificate against [default: the
    /// address's IP].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

impl DnstapConfig {
    /// Makes the relative paths of this section (socket, certificates,
    /// output files) relative to `base`, the directory of the config file.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [
            &mut self.unix,
            &mut self.tls_cert,
            &mut self.tls_key,
            &mut self.tls_client_ca,
        ]
        .into_iter()
        .flatten()
        {
            *path = resolve(base, path);
        }
        for client in &mut self.clients {
            if let Some(ca) = &mut client.tls_ca {
                *ca = resolve(base, ca);
            }
        }
        for output in &mut self.outputs {
            output.resolve_paths(base);
        }
    }

    /// Checks the values that serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.unix_mode()?;
        self.store_mask()?;
        if self.max_frame_bytes < 64 || self.max_frame_bytes > u32::MAX as usize {
            bail!("dnstap.max_frame_bytes must be between 64 and {}", u32::MAX);
        }
        if self.tls.is_some() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            bail!("dnstap.tls needs dnstap.tls_cert and dnstap.tls_key");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("dnstap.tls_cert and dnstap.tls_key go together");
        }
        for client in &self.clients {
            if client.tls && client.tls_ca.is_none() {
                bail!("dnstap client {}: tls needs tls_ca", client.address);
            }
        }
        for output in &self.outputs {
            if output.queue_size == 0 {
                bail!(
                    "dnstap output {}: queue_size must be at least 1",
                    output.path
                );
            }
        }
        Ok(())
    }

    fn unix_mode(&self) -> anyhow::Result<Option<u32>> {
        let Some(text) = &self.unix_mode else {
            return Ok(None);
        };
        let digits = text.trim_start_matches("0o");
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if mode <= 0o7777 && !digits.is_empty() => Ok(Some(mode)),
            _ => bail!("dnstap.unix_mode {text:?} is not an octal permission mode like \"0660\""),
        }
    }

    /// The stored message types as a bit set (bit `t`: dnstap type `t`).
    pub fn store_mask(&self) -> anyhow::Result<u32> {
        let mut mask = 0u32;
        for name in &self.store_types {
            let Some(kind) = ALL_TYPES
                .iter()
                .find(|t| t.name().eq_ignore_ascii_case(name))
            else {
                bail!(
                    "dnstap.store_types: unknown message type {name:?} (expected one of {})",
                    ALL_TYPES.map(|t| t.name()).join(", ")
                );
            };
            mask |= 1 << (*kind as i32);
        }
        Ok(mask)
    }

    /// Whether any listener or client is configured.
    pub fn has_inputs(&self) -> bool {
        self.tcp.is_some() || self.tls.is_some() || self.unix.is_some() || !self.clients.is_empty()
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            frame: FrameConfig {
                max_data_frame_length: self.max_frame_bytes,
                ..FrameConfig::default()
            },
            ..ServerConfig::default()
        }
    }
}

//---- Counters ----

/// What the dnstap consumer did; shared with whoever reports it.
#[derive(Debug, Default)]
pub struct DnstapStats {
    /// Data frames taken from the inputs.
    pub frames: AtomicU64,
    /// Frames that decoded as a dnstap protobuf.
    pub decoded: AtomicU64,
    /// Frames that did not.
    pub protobuf_errors: AtomicU64,
    /// dnstap payloads without a `message`.
    pub no_message: AtomicU64,
    /// Messages of a type that does not produce records (queries, ...).
    pub not_stored: AtomicU64,
    /// Messages of a storing type without `response_message`.
    pub no_response: AtomicU64,
    /// DNS responses decoded into entries.
    pub responses: AtomicU64,
    /// DNS responses that did not decode, by `DecodeError::reason()`.
    pub dns_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// `query_zone` fields that are not a wire name (stored without bailiwick).
    pub bad_query_zone: AtomicU64,
    /// Entries produced.
    pub entries: AtomicU64,
    /// Batches sent to the store writer.
    pub batches: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl DnstapStats {
    fn dns_error(&self, reason: &'static str) {
        if let Ok(mut errors) = self.dns_errors.lock() {
            *errors.entry(reason).or_default() += 1;
        }
    }

    /// The counters as `/metrics` samples.
    fn samples(&self, out: &mut Vec<Sample>) {
        let counter = |name, help, value| Sample {
            name,
            help,
            kind: Kind::Counter,
            labels: Vec::new(),
            value: Value::Int(value),
        };
        for (name, help, value) in [
            (
                "dnsrecall_ingest_dnstap_frames_total",
                "Data frames taken from the dnstap inputs.",
                &self.frames,
            ),
            (
                "dnsrecall_ingest_dnstap_decoded_total",
                "Frames that decoded as a dnstap protobuf.",
                &self.decoded,
            ),
            (
                "dnsrecall_ingest_dnstap_protobuf_errors_total",
                "Frames that did not decode as a dnstap protobuf.",
                &self.protobuf_errors,
            ),
            (
                "dnsrecall_ingest_dnstap_no_message_total",
                "dnstap payloads without a message.",
                &self.no_message,
            ),
            (
                "dnsrecall_ingest_dnstap_not_stored_total",
                "Messages of a type that does not produce records.",
                &self.not_stored,
            ),
            (
                "dnsrecall_ingest_dnstap_no_response_total",
                "Messages of a storing type without a response message.",
                &self.no_response,
            ),
            (
                "dnsrecall_ingest_dnstap_responses_total",
                "DNS responses decoded into entries.",
                &self.responses,
            ),
            (
                "dnsrecall_ingest_dnstap_bad_query_zone_total",
                "query_zone fields that are not a wire name (stored without bailiwick).",
                &self.bad_query_zone,
            ),
            (
                "dnsrecall_ingest_dnstap_entries_total",
                "Entries produced from dnstap responses.",
                &self.entries,
            ),
            (
                "dnsrecall_ingest_dnstap_batches_total",
                "Batches sent to the store writer.",
                &self.batches,
            ),
        ] {
            out.push(counter(name, help, get(value)));
        }
        for (reason, count) in self.dns_error_counts() {
            out.push(Sample {
                labels: vec![("reason", reason.to_string())],
                ..counter(
                    "dnsrecall_ingest_dnstap_dns_errors_total",
                    "dnstap DNS responses that did not decode, by reason.",
                    count,
                )
            });
        }
    }

    /// DNS decode errors by reason.
    pub fn dns_error_counts(&self) -> BTreeMap<&'static str, u64> {
        self.dns_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    fn log_summary(&self, metrics: &Metrics) {
        let dns_errors: Vec<String> = self
            .dns_error_counts()
            .iter()
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        info!(
            frames = get(&self.frames),
            decoded = get(&self.decoded),
            protobuf_errors = get(&self.protobuf_errors),
            no_message = get(&self.no_message),
            not_stored = get(&self.not_stored),
            no_response = get(&self.no_response),
            responses = get(&self.responses),
            dns_errors = %dns_errors.join(","),
            bad_query_zone = get(&self.bad_query_zone),
            entries = get(&self.entries),
            batches = get(&self.batches),
            connections = get(&metrics.connections_accepted),
            oversized = get(&metrics.errors_oversized),
            malformed_control = get(&metrics.errors_malformed_control),
            content_type = get(&metrics.errors_content_type),
            truncated = get(&metrics.errors_truncated),
            io_errors = get(&metrics.errors_io),
            "dnstap summary"
        );
    }
}

//---- Decoding ----

/// What became of one frame.
#[derive(Debug)]
enum Outcome {
    /// A response of a storing type, decoded into this many entries.
    Stored(usize),
    /// A message of a non-storing type.
    NotStored,
    /// A dnstap payload without a message.
    NoMessage,
    /// A storing type without `response_message`.
    NoResponse,
    /// Not a dnstap protobuf.
    Protobuf(prost::DecodeError),
    /// The DNS response did not decode.
    Dns(DecodeError),
}

/// Frame → [`DnsMessage`] (the protobuf decoded here, once) → entries
/// through the shared [`MessageDecoder`].
struct FrameDecoder {
    messages: MessageDecoder,
}

impl FrameDecoder {
    fn new(
        store_mask: u32,
        store: bool,
        additional: AdditionalPolicy,
        default_sensor: Option<Arc<str>>,
    ) -> Self {
        let mask = if store { store_mask } else { 0 };
        FrameDecoder {
            messages: MessageDecoder::new(mask, additional, default_sensor),
        }
    }

    /// Whether the last stored message's `query_zone` was not a wire name.
    fn bad_zone(&self) -> bool {
        self.messages.bad_zone
    }

    /// The frame's message (`None`: a payload without one).
    fn message(frame: Bytes) -> Result<Option<DnsMessage>, prost::DecodeError> {
        let tap = decode_dnstap(frame.clone())?;
        Ok(message::from_dnstap(tap, frame))
    }

    /// Stores a decoded message's response, if its type stores.
    fn decode_message(&mut self, message: Option<&DnsMessage>, out: &mut Batch) -> Outcome {
        let Some(message) = message else {
            return Outcome::NoMessage;
        };
        match self.messages.decode(message, out) {
            decode::Outcome::Stored(summary) => Outcome::Stored(summary.records),
            decode::Outcome::NotStored => Outcome::NotStored,
            decode::Outcome::NoResponse => Outcome::NoResponse,
            decode::Outcome::Dns(error) => Outcome::Dns(error),
        }
    }

    /// Both steps, for callers without outputs (file import).
    fn decode(&mut self, frame: Bytes, out: &mut Batch) -> Outcome {
        match FrameDecoder::message(frame) {
            Ok(message) => self.decode_message(message.as_ref(), out),
            Err(error) => Outcome::Protobuf(error),
        }
    }
}

impl DnstapStats {
    /// Counts one outcome; returns the decode error to report, if any.
    fn count(&self, outcome: &Outcome, bad_zone: bool) {
        add(&self.frames, 1);
        if !matches!(outcome, Outcome::Protobuf(_)) {
            add(&self.decoded, 1);
        }
        match outcome {
            Outcome::Stored(n) => {
                add(&self.responses, 1);
                add(&self.entries, *n as u64);
                if bad_zone {
                    add(&self.bad_query_zone, 1);
                }
            }
            Outcome::NotStored => add(&self.not_stored, 1),
            Outcome::NoMessage => add(&self.no_message, 1),
            Outcome::NoResponse => add(&self.no_response, 1),
            Outcome::Protobuf(_) => add(&self.protobuf_errors, 1),
            Outcome::Dns(error) => self.dns_error(error.reason()),
        }
    }
}

//---- serve ----

/// Starts the configured dnstap inputs on the runtime of `serve`: binds
/// every listener first (an error starts nothing), then spawns the servers,
/// the clients and the consumer. The returned tasks end after shutdown.
pub async fn start(
    config: &DnstapConfig,
    context: &IngestContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    config.validate()?;
    if !config.has_inputs() {
        return Ok(Vec::new());
    }
    let server_config = config.server_config();
    let metrics = Arc::new(Metrics::default());
    let stats = Arc::new(DnstapStats::default());
    let exported = Arc::clone(&metrics);
    context
        .metrics
        .register_samples(move || exported.snapshot());
    let exported = Arc::clone(&stats);
    context
        .metrics
        .register(Arc::new(move |out: &mut Vec<Sample>| exported.samples(out)));

    // Bind and load everything before spawning anything.
    let tcp = match config.tcp {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for dnstap on tcp {address}"))?,
        ),
        None => None,
    };
    let tls = match config.tls {
        Some(address) => {
            let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
                bail!("dnstap.tls needs dnstap.tls_cert and dnstap.tls_key");
            };
            let tls_config = server::tls_server_config(cert, key, config.tls_client_ca.as_deref())
                .context("dnstap TLS configuration")?;
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen for dnstap on tls {address}"))?;
            Some((listener, tokio_rustls::TlsAcceptor::from(tls_config)))
        }
        None => None,
    };
    let unix = match &config.unix {
        Some(path) => Some((
            server::bind_unix(path, config.unix_mode()?).with_context(|| {
                format!("cannot listen for dnstap on unix socket {}", path.display())
            })?,
            path.clone(),
        )),
        None => None,
    };
    let mut clients = Vec::new();
    for client in &config.clients {
        let tls = match (&client.tls_ca, client.tls) {
            (Some(ca), true) => {
                let cert = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
                let tls_config = server::tls_client_config(ca, cert)
                    .with_context(|| format!("dnstap client {}", client.address))?;
                let name = client
                    .server_name
                    .clone()
                    .unwrap_or_else(|| client.address.ip().to_string());
                let server_name = rustls_pki_types::ServerName::try_from(name.clone())
                    .with_context(|| {
                        format!("dnstap client {}: bad server_name {name:?}", client.address)
                    })?;
                Some(ClientTls {
                    connector: tokio_rustls::TlsConnector::from(tls_config),
                    server_name,
                })
            }
            (None, true) => bail!("dnstap client {}: tls needs tls_ca", client.address),
            _ => None,
        };
        clients.push((client.address, tls));
    }

    let (sink, frames) = mpsc::channel::<DataFrame>(FRAME_CHANNEL);
    let mut handles = Vec::new();
    let stop = || context.shutdown.clone().cancelled_owned();
    if let Some(listener) = tcp {
        let run = server::serve_tcp(
            listener,
            sink.clone(),
            server_config.clone(),
            metrics.clone(),
            stop(),
        );
        handles.push(tokio::spawn(report("tcp", run)));
    }
    if let Some((listener, acceptor)) = tls {
        let run = server::serve_tls(
            listener,
            acceptor,
            sink.clone(),
            server_config.clone(),
            metrics.clone(),
            stop(),
        );
        handles.push(tokio::spawn(report("tls", run)));
    }
    if let Some((listener, path)) = unix {
        let run = server::serve_unix(
            listener,
            sink.clone(),
            server_config.clone(),
            metrics.clone(),
            stop(),
        );
        handles.push(tokio::spawn(async move {
            report("unix", run).await;
            // Leave no socket behind for the next run to trip on.
            let _ = std::fs::remove_file(&path);
        }));
    }
    for (address, tls) in clients {
        let client_config = ClientConfig {
            server: server_config.clone(),
            ..ClientConfig::default()
        };
        handles.push(tokio::spawn(server::connect_tcp(
            address,
            tls,
            sink.clone(),
            client_config,
            metrics.clone(),
            stop(),
        )));
    }
    // The consumer ends once every input has dropped its sender.
    drop(sink);

    let decoder = FrameDecoder::new(config.store_mask()?, config.store, config.additional, None);
    let entries = if config.store {
        context.entries.clone()
    } else {
        None
    };
    handles.push(tokio::spawn(consume(
        frames,
        decoder,
        entries,
        context.outputs.clone(),
        stats,
        metrics,
    )));
    Ok(handles)
}

async fn report(kind: &'static str, run: impl Future<Output = std::io::Result<()>>) {
    match run.await {
        Ok(()) => debug!(kind, "dnstap server stopped"),
        Err(error) => warn!(kind, %error, "dnstap server failed"),
    }
}

async fn consume(
    mut frames: mpsc::Receiver<DataFrame>,
    mut decoder: FrameDecoder,
    mut entries: Option<mpsc::Sender<Batch>>,
    outputs: MessageOutputs,
    stats: Arc<DnstapStats>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Batch::with_capacity(BATCH_ENTRIES + 256);
    let mut received = Vec::with_capacity(RECEIVE_CHUNK);
    let mut ticker = tokio::time::interval(BATCH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            count = frames.recv_many(&mut received, RECEIVE_CHUNK) => {
                if count == 0 {
                    break;
                }
                for frame in received.drain(..) {
                    let outcome = match FrameDecoder::message(frame.data) {
                        Ok(message) => {
                            if let Some(message) = &message
                                && !outputs.is_empty()
                            {
                                outputs.offer(message);
                            }
                            decoder.decode_message(message.as_ref(), &mut batch)
                        }
                        Err(error) => Outcome::Protobuf(error),
                    };
                    stats.count(&outcome, decoder.bad_zone());
                    match &outcome {
                        Outcome::Protobuf(error) => {
                            metrics.record_error(dnsrecall_dnstap::metrics::ErrorReason::Protobuf);
                            debug!(peer = %frame.peer, %error, "dnstap frame is not a dnstap protobuf");
                        }
                        Outcome::Dns(error) => debug!(peer = %frame.peer, %error, "dnstap response does not decode"),
                        _ => {}
                    }
                }
                if batch.len() >= BATCH_ENTRIES {
                    send(&mut entries, &mut batch, &stats).await;
                }
            }
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    send(&mut entries, &mut batch, &stats).await;
                }
            }
        }
    }
    if !batch.is_empty() {
        send(&mut entries, &mut batch, &stats).await;
    }
    stats.log_summary(&metrics);
}

async fn send(entries: &mut Option<mpsc::Sender<Batch>>, batch: &mut Batch, stats: &DnstapStats) {
    let full = std::mem::replace(batch, Batch::with_capacity(BATCH_ENTRIES + 256));
    let Some(sender) = entries else { return };
    if sender.send(full).await.is_err() {
        warn!("the store writer stopped: dnstap records are no longer stored");
        *entries = None;
        return;
    }
    add(&stats.batches, 1);
}

//---- import ----

/// Whether a file starts like a Frame Streams file.
pub fn sniff(head: &[u8]) -> bool {
    // Escape (0) then a control frame length, then START (2).
    head.len() >= 12 && head[..4] == [0, 0, 0, 0] && head[8..12] == [0, 0, 0, 2]
}

/// `import` of a dnstap (Frame Streams) file: every response frame of a
/// storing type (the defaults of `[dnstap]`: every `*_RESPONSE`, additional
/// records in bailiwick) becomes entries. Frames that are not dnstap or
/// whose DNS message does not decode are rejected by reason with their frame
/// number; a Frame Streams error (truncated file, oversized frame) ends the
/// file with an error after everything before it was emitted.
pub fn import_reader(
    reader: Box<dyn std::io::BufRead + Send>,
    path: &std::path::Path,
    import: &super::ImportContext<'_>,
    stats: &mut super::lines::LineStats,
    emit: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    import_frames(
        reader,
        path,
        import.parser.sensor_id.clone(),
        &DnstapConfig::default(),
        import.batch_size,
        stats,
        emit,
    )
}

fn import_frames(
    reader: Box<dyn BufRead + Send>,
    path: &Path,
    sensor_id: Option<Arc<str>>,
    config: &DnstapConfig,
    batch_size: usize,
    stats: &mut super::lines::LineStats,
    emit: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let batch_size = batch_size.max(1);
    let mut decoder = FrameDecoder::new(config.store_mask()?, true, config.additional, sensor_id);
    let mut frames = FileReader::with_config(reader, &config.server_config().frame);
    let mut batch = Batch::with_capacity(batch_size.min(1 << 16));
    let mut number = 0u64;
    let result = loop {
        let frame = match frames.next_data() {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(error) => {
                break Err(anyhow::anyhow!(
                    "{}: Frame Streams error after {number} frames (at frame {}): {error}",
                    path.display(),
                    number + 1
                ));
            }
        };
        number += 1;
        stats.messages += 1;
        stats.bytes += frame.len() as u64;
        match decoder.decode(frame, &mut batch) {
            Outcome::Stored(count) => {
                stats.responses += 1;
                stats.entries += count as u64;
            }
            Outcome::Protobuf(error) => stats.reject(
                "dnstap_protobuf",
                path,
                number,
                &format_args!("frame is not a dnstap protobuf: {error}"),
            ),
            Outcome::Dns(error) => stats.reject(error.reason(), path, number, &error),
            Outcome::NotStored | Outcome::NoMessage | Outcome::NoResponse => {}
        }
        if batch.len() >= batch_size {
            emit(std::mem::replace(
                &mut batch,
                Batch::with_capacity(batch_size.min(1 << 16)),
            ))?;
        }
    };
    if !batch.is_empty() {
        emit(batch)?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_core::Name;
    use dnsrecall_dnstap::FileWriter;
    use dnsrecall_dnstap::proto::{Dnstap, Message, dnstap};
    use prost::Message as _;

    fn response_frame(kind: MessageType, wire: &[u8], zone: Option<&[u8]>) -> Vec<u8> {
        Dnstap {
            identity: Some(Bytes::from_static(b"ns1.test")),
            version: None,
            extra: None,
            r#type: dnstap::Type::Message as i32,
            message: Some(Message {
                r#type: kind as i32,
                response_time_sec: Some(1_700_000_000),
                response_message: Some(Bytes::copy_from_slice(wire)),
                query_zone: zone.map(Bytes::copy_from_slice),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    /// `www.example.test A` → 192.0.2.1, uncompressed.
    fn answer() -> Vec<u8> {
        let mut wire = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        let name = b"\x03www\x07example\x04test\x00";
        wire.extend_from_slice(name);
        wire.extend_from_slice(&[0, 1, 0, 1]);
        wire.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        wire
    }

    #[test]
    fn config_defaults_and_validation() {
        let config = DnstapConfig::default();
        config.validate().unwrap();
        assert_eq!(config.store_mask().unwrap().count_ones(), 7);
        let parsed: DnstapConfig = toml::from_str(
            "unix = \"s.sock\"\nunix_mode = \"0660\"\nstore_types = [\"client_response\"]\nadditional = \"never\"\n\
             [[outputs]]\nformat = \"json\"\ntarget = \"log/x.json\"\n[[clients]]\naddress = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        assert_eq!(parsed.unix_mode().unwrap(), Some(0o660));
        assert_eq!(parsed.store_mask().unwrap(), 1 << 6);
        assert_eq!(parsed.outputs[0].queue_size, 10_000);
        let mut resolved = parsed.clone();
        resolved.resolve_paths(Path::new("/etc/dnsrecall"));
        assert_eq!(
            resolved.unix.as_deref(),
            Some(Path::new("/etc/dnsrecall/s.sock"))
        );
        assert_eq!(resolved.outputs[0].path, "/etc/dnsrecall/log/x.json");
        assert!(toml::from_str::<DnstapConfig>("bogus = 1").is_err());
        let bad = DnstapConfig {
            unix_mode: Some("rw".into()),
            ..DnstapConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = DnstapConfig {
            store_types: vec!["CLIENT_RESP".into()],
            ..DnstapConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = DnstapConfig {
            tls: Some("127.0.0.1:1".parse().unwrap()),
            ..DnstapConfig::default()
        };
        assert!(bad.validate().is_err());
        // The effective configuration prints and reads back.
        let text = toml::to_string(&parsed).unwrap();
        let back: DnstapConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.store_types, parsed.store_types);
    }

    #[test]
    fn decodes_counts_and_skips() {
        let mut decoder = FrameDecoder::new(
            DnstapConfig::default().store_mask().unwrap(),
            true,
            AdditionalPolicy::Always,
            None,
        );
        let mut out = Batch::default();
        let frame = response_frame(
            MessageType::ResolverResponse,
            &answer(),
            Some(b"\x04test\x00"),
        );
        assert!(matches!(
            decoder.decode(Bytes::from(frame), &mut out),
            Outcome::Stored(1)
        ));
        assert_eq!(out.entries[0].seen.sensor_id.as_deref(), Some("ns1.test"));
        assert_eq!(out.entries[0].seen.time_first, 1_700_000_000);
        assert_eq!(
            out.entries[0].record.bailiwick,
            Some(Name::from_presentation("test").unwrap())
        );
        // The response's metadata covers its entry: an upstream answer
        // whose zone is known.
        assert_eq!(out.responses.len(), 1);
        let (meta, n) = &out.responses[0];
        assert_eq!(*n, 1);
        assert!(!meta.recursive);
        assert_eq!(
            meta.query_zone,
            Some(Name::from_presentation("test").unwrap())
        );
        assert_eq!(meta.sensor_id.as_deref(), Some("ns1.test"));
        let frame = response_frame(MessageType::ClientQuery, &answer(), None);
        assert!(matches!(
            decoder.decode(Bytes::from(frame), &mut out),
            Outcome::NotStored
        ));
        assert!(matches!(
            decoder.decode(Bytes::from_static(&[0xff, 0xff]), &mut out),
            Outcome::Protobuf(_)
        ));
        let mut bad = answer();
        let at = bad.len() - 16;
        bad[at + 1] = 0xff; // compression pointer past the end
        let frame = response_frame(MessageType::ClientResponse, &bad, None);
        assert!(matches!(
            decoder.decode(Bytes::from(frame), &mut out),
            Outcome::Dns(_)
        ));
        assert_eq!(out.len(), 1);
        assert_eq!(out.responses.len(), 1);
    }

    #[test]
    fn import_keeps_frames_before_a_cut() {
        let mut writer =
            FileWriter::new(Vec::new(), dnsrecall_dnstap::DNSTAP_CONTENT_TYPE).unwrap();
        for _ in 0..3 {
            writer
                .write_frame(&response_frame(
                    MessageType::ClientResponse,
                    &answer(),
                    None,
                ))
                .unwrap();
        }
        writer.write_frame(b"not protobuf \xff\xff\xff").unwrap();
        let file = writer.finish().unwrap();
        let cut = file[..file.len() - 20].to_vec();
        let mut stats = super::super::lines::LineStats::default();
        let mut emitted = Vec::new();
        let result = import_frames(
            Box::new(std::io::Cursor::new(cut)),
            Path::new("x.dnstap"),
            None,
            &DnstapConfig::default(),
            2,
            &mut stats,
            &mut |batch| {
                emitted.push(batch.len());
                Ok(())
            },
        );
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains("after 3 frames"), "{error}");
        assert_eq!(emitted, [2, 1]);
        assert_eq!((stats.messages, stats.responses, stats.entries), (3, 3, 3));

        let mut stats = super::super::lines::LineStats::default();
        import_frames(
            Box::new(std::io::Cursor::new(file)),
            Path::new("x.dnstap"),
            None,
            &DnstapConfig::default(),
            100,
            &mut stats,
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(stats.rejected.get("dnstap_protobuf"), Some(&1));
        assert!(
            stats.first_rejects[0].starts_with("x.dnstap:4: frame is not a dnstap protobuf"),
            "{:?}",
            stats.first_rejects
        );
    }
}

//! The packet source: pcap/pcapng files for `import`, live capture (and
//! capture files read at start) for `serve`; DNS responses become entries.
//!
//! Packets go through `dnsrecall-capture` (link layers, IP defragmentation,
//! DNS-over-TCP reassembly), every message through its query table (which
//! pairs a response with its query: latency, responding server), becomes a
//! [`DnsMessage`](dnsrecall_core::message::DnsMessage)
//! ([`crate::message::from_capture`]) offered to the message outputs, and
//! every response goes through the shared decode step
//! ([`crate::decode::MessageDecoder`]) with the capture time (seconds), the
//! sensor, no bailiwick (a packet does not say which zone the server was
//! asked about) and the configured additional policy. Each response goes to
//! the pipeline with its `ResponseMeta`: server (source address), client,
//! query name, and `recursive` from the RD bit (the message type: RD set is
//! a client exchange), so answers of authoritative servers to a resolver
//! (RD clear) are verified by bailiwick reconstruction while a resolver's
//! answers to its clients (RD set) are kept unverified.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsrecall_capture::live::{LiveCapture, LiveConfig};
use dnsrecall_capture::pairing::{Observation, QueryTable};
use dnsrecall_capture::{DnsPayload, Metrics, PcapFileReader};
use dnsrecall_core::decode::{AdditionalPolicy, DecodeError};
use dnsrecall_metrics::{Kind, Registry, Sample, Value};
use dnsrecall_pipeline::Batch;
use serde::{Deserialize, Serialize};

use super::ImportContext;
use super::lines::LineStats;
use crate::IngestContext;
use crate::decode::{self, MessageDecoder, RESPONSE_TYPES_MASK};
use crate::message;
use crate::outputs::MessageOutputs;

/// Entries per batch sent to the store writer by `serve`'s capture inputs.
pub const LIVE_BATCH_ENTRIES: usize = 4096;
/// A non-empty batch is sent at the latest after this long.
pub const LIVE_BATCH_AGE: Duration = Duration::from_millis(100);
/// How often a live capture logs its counters.
pub const STATS_INTERVAL: Duration = Duration::from_secs(60);

/// `[capture]`: packet capture inputs (live for `serve`; the decoding keys
/// also apply to `import` of pcap/pcapng files).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interface to capture on (e.g. `eth0`); `--capture IFACE`. Default:
    /// none (no live capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// BPF filter; `--bpf FILTER`. Default: the configured ports plus IP
    /// fragments (`port 53 or (ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)`),
    /// so fragmented responses can be reassembled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf: Option<String>,
    /// Bytes captured per packet. Default 65535.
    pub snaplen: i32,
    /// Promiscuous mode. Default true.
    pub promiscuous: bool,
    /// Kernel capture buffer in bytes. Default 16 MiB.
    pub buffer_size: i32,
    /// UDP/TCP ports carrying DNS (either side). Default `[53]`; add 5353
    /// (mDNS) or 5355 (LLMNR) to opt in.
    pub ports: Vec<u16>,
    /// Sensor identity of captured records. Default: the interface name
    /// (live), the pcapng interface name (files; `import --sensor-id` /
    /// `import.sensor_id` win there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor_id: Option<String>,
    /// Additional-section records to keep: `in-bailiwick` (default; with no
    /// bailiwick known from packets that keeps all of them), `always`, `never`.
    pub additional: AdditionalPolicy,
    /// Capture files (pcap/pcapng, optionally gzip) read by `serve` at start.
    /// Default: none. Relative paths are relative to the configuration file.
    pub files: Vec<PathBuf>,
    /// IP reassembly: datagrams in reassembly at once. Default 4096.
    pub frag_max_datagrams: usize,
    /// IP reassembly: bytes buffered over all datagrams. Default 32 MiB.
    pub frag_max_bytes: usize,
    /// IP reassembly: seconds (packet time) before an incomplete datagram is
    /// dropped. Default 30.
    pub frag_timeout_secs: u64,
    /// TCP: half-streams tracked at once. Default 65536.
    pub tcp_max_streams: usize,
    /// TCP: bytes buffered per half-stream. Default 256 KiB.
    pub tcp_max_stream_bytes: usize,
    /// TCP: bytes buffered over all streams. Default 64 MiB.
    pub tcp_max_bytes: usize,
    /// TCP: seconds (packet time) before an idle half-stream is dropped.
    /// Default 60.
    pub tcp_timeout_secs: u64,
    /// Query/response pairing: outstanding queries kept. Default 100000.
    pub pairing_capacity: usize,
    /// Query/response pairing: seconds before an unanswered query is
    /// forgotten. Default 10.
    pub pairing_timeout_secs: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        use dnsrecall_capture as c;
        CaptureConfig {
            interface: None,
            bpf: None,
            snaplen: c::live::DEFAULT_SNAPLEN,
            promiscuous: true,
            buffer_size: c::live::DEFAULT_BUFFER_SIZE,
            ports: vec![c::DEFAULT_DNS_PORT],
            sensor_id: None,
            additional: AdditionalPolicy::default(),
            files: Vec::new(),
            frag_max_datagrams: c::DEFAULT_FRAG_MAX_DATAGRAMS,
            frag_max_bytes: c::DEFAULT_FRAG_MAX_BYTES,
            frag_timeout_secs: c::DEFAULT_FRAG_TIMEOUT_SECS,
            tcp_max_streams: c::DEFAULT_TCP_MAX_STREAMS,
            tcp_max_stream_bytes: c::DEFAULT_TCP_MAX_STREAM_BYTES,
            tcp_max_bytes: c::DEFAULT_TCP_MAX_BYTES,
            tcp_timeout_secs: c::DEFAULT_TCP_TIMEOUT_SECS,
            pairing_capacity: c::pairing::DEFAULT_PAIRING_CAPACITY,
            pairing_timeout_secs: c::pairing::DEFAULT_PAIRING_TIMEOUT_SECS,
        }
    }
}

impl CaptureConfig {
    /// The decoder settings of the capture crate. Queries are emitted too:
    /// the query table needs them for pairing.
    pub fn decoder_config(&self) -> dnsrecall_capture::CaptureConfig {
        dnsrecall_capture::CaptureConfig {
            ports: self.ports.iter().copied().collect(),
            emit_queries: true,
            tcp: true,
            defrag: true,
            frag_max_datagrams: self.frag_max_datagrams,
            frag_max_bytes: self.frag_max_bytes,
            frag_timeout_secs: self.frag_timeout_secs,
            tcp_max_streams: self.tcp_max_streams,
            tcp_max_stream_bytes: self.tcp_max_stream_bytes,
            tcp_max_bytes: self.tcp_max_bytes,
            tcp_timeout_secs: self.tcp_timeout_secs,
        }
    }

    /// The BPF filter in effect: `bpf`, or the ports plus IP fragments.
    pub fn effective_filter(&self) -> String {
        if let Some(filter) = &self.bpf {
            return filter.clone();
        }
        let ports: Vec<String> = self.ports.iter().map(|p| format!("port {p}")).collect();
        let ports = if ports.is_empty() {
            "port 53".to_string()
        } else {
            ports.join(" or ")
        };
        format!("{ports} or (ip and ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)")
    }

    /// The libpcap settings of the live capture on `interface`.
    pub fn live_config(&self, interface: &str) -> LiveConfig {
        let mut live = LiveConfig::new(interface);
        live.filter = self.effective_filter();
        live.snaplen = self.snaplen;
        live.promiscuous = self.promiscuous;
        live.buffer_size = self.buffer_size;
        live
    }

    /// Makes relative capture file paths relative to `base` (the config
    /// file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for file in &mut self.files {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.ports.is_empty() {
            anyhow::bail!("capture.ports must list at least one port");
        }
        if self.snaplen < 64 {
            anyhow::bail!("capture.snaplen must be at least 64");
        }
        if self.buffer_size < 0 {
            anyhow::bail!("capture.buffer_size must not be negative");
        }
        Ok(())
    }
}

//------------ counting and decoding -------------------------------------------

/// What one capture input did, by reason.
#[derive(Clone, Debug, Default)]
pub struct CaptureCounters {
    /// DNS messages handed over by the capture crate (queries + responses).
    pub messages: u64,
    pub queries: u64,
    pub responses: u64,
    /// Responses whose query was seen.
    pub matched: u64,
    /// Sum of the latencies of matched responses, nanoseconds.
    pub latency_ns_sum: u64,
    /// Entries produced.
    pub entries: u64,
    /// Responses by rcode name (NOERROR included).
    pub rcodes: BTreeMap<&'static str, u64>,
    /// Responses that did not decode, by [`DecodeError::reason`].
    pub decode_errors: BTreeMap<&'static str, u64>,
    /// Records skipped because their class is not IN.
    pub skipped_class: u64,
    /// Additional records skipped by the additional policy.
    pub skipped_additional: u64,
}

impl CaptureCounters {
    /// The counters as `/metrics` samples (summed over capture sources).
    fn samples(&self, out: &mut Vec<Sample>) {
        let counter = |name, help, value| Sample {
            name,
            help,
            kind: Kind::Counter,
            labels: Vec::new(),
            value: Value::Int(value),
        };
        out.push(counter(
            "dnsrecall_ingest_capture_messages_total",
            "DNS messages handed over by the capture (queries and responses).",
            self.messages,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_queries_total",
            "Captured DNS queries.",
            self.queries,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_responses_total",
            "Captured DNS responses.",
            self.responses,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_matched_total",
            "Captured responses whose query was seen.",
            self.matched,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_latency_nanoseconds_total",
            "Sum of the query-response latencies of matched responses.",
            self.latency_ns_sum,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_entries_total",
            "Entries produced from captured responses.",
            self.entries,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_skipped_class_total",
            "Records skipped because their class is not IN.",
            self.skipped_class,
        ));
        out.push(counter(
            "dnsrecall_ingest_capture_skipped_additional_total",
            "Additional records skipped by the additional policy.",
            self.skipped_additional,
        ));
        for (rcode, count) in &self.rcodes {
            out.push(Sample {
                labels: vec![("rcode", (*rcode).to_string())],
                ..counter(
                    "dnsrecall_ingest_capture_rcodes_total",
                    "Captured responses by rcode.",
                    *count,
                )
            });
        }
        for (reason, count) in &self.decode_errors {
            out.push(Sample {
                labels: vec![("reason", (*reason).to_string())],
                ..counter(
                    "dnsrecall_ingest_capture_decode_errors_total",
                    "Captured messages that did not decode, by reason.",
                    *count,
                )
            });
        }
    }

    fn mean_latency_us(&self) -> u64 {
        self.latency_ns_sum.checked_div(self.matched).unwrap_or(0) / 1000
    }

    fn decode_errors_total(&self) -> u64 {
        self.decode_errors.values().sum()
    }
}

/// The rcode mnemonic (RFC 1035/2136/6895 range of the 4-bit header field).
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        _ => "RCODE_OTHER",
    }
}

/// Pairs and decodes messages into a batch of entries.
struct ResponseDecoder {
    table: QueryTable,
    metrics: Arc<Metrics>,
    sensor_id: Option<Arc<str>>,
    /// The shared message → entries step.
    messages: MessageDecoder,
    counters: CaptureCounters,
    /// The counters as `/metrics` last saw them (see [`ResponseDecoder::publish`]).
    published: Arc<std::sync::Mutex<CaptureCounters>>,
}

/// What [`ResponseDecoder::handle`] made of one message.
enum Handled {
    Query,
    Response,
    Malformed(DecodeError),
}

impl ResponseDecoder {
    fn new(config: &CaptureConfig, sensor_id: Option<Arc<str>>, metrics: Arc<Metrics>) -> Self {
        ResponseDecoder {
            table: QueryTable::new(config.pairing_capacity, config.pairing_timeout_secs),
            metrics,
            sensor_id,
            messages: MessageDecoder::new(RESPONSE_TYPES_MASK, config.additional, None),
            counters: CaptureCounters::default(),
            published: Arc::default(),
        }
    }

    /// Registers this decoder's counters with the metrics registry.
    fn export(&self, registry: &Registry) {
        let published = Arc::clone(&self.published);
        registry.register(Arc::new(move |out: &mut Vec<Sample>| {
            if let Ok(counters) = published.lock() {
                counters.samples(out);
            }
        }));
    }

    /// Makes the counters visible to `/metrics` (once per batch: the hot
    /// path counts into plain fields).
    fn publish(&self) {
        if let Ok(mut published) = self.published.lock() {
            published.clone_from(&self.counters);
        }
    }

    /// Pairs one message, offers it to the outputs, and stores it if it
    /// is a response.
    fn handle(
        &mut self,
        payload: &DnsPayload,
        out: &mut Batch,
        outputs: &MessageOutputs,
    ) -> Handled {
        self.counters.messages += 1;
        let observation = self.table.observe(payload, &self.metrics);
        if let Observation::NotDns = observation {
            // The capture crate only emits messages with a header.
            let error = DecodeError::ShortMessage;
            *self
                .counters
                .decode_errors
                .entry(error.reason())
                .or_default() += 1;
            return Handled::Malformed(error);
        }
        let response = matches!(observation, Observation::Response(_));
        if !response && outputs.is_empty() {
            self.counters.queries += 1;
            return Handled::Query;
        }
        let message = message::from_capture(payload, self.sensor_id.as_ref());
        if !outputs.is_empty() {
            outputs.offer(&message);
        }
        let Observation::Response(pair) = observation else {
            self.counters.queries += 1;
            return Handled::Query;
        };
        if let Some(latency) = pair.latency_ns {
            self.counters.matched += 1;
            self.counters.latency_ns_sum = self.counters.latency_ns_sum.saturating_add(latency);
        }
        self.counters.responses += 1;
        match self.messages.decode(&message, out) {
            decode::Outcome::Stored(summary) => {
                self.counters.entries += summary.records as u64;
                self.counters.skipped_class += summary.skipped_class as u64;
                self.counters.skipped_additional += summary.skipped_additional as u64;
                *self
                    .counters
                    .rcodes
                    .entry(rcode_name(summary.rcode))
                    .or_default() += 1;
                Handled::Response
            }
            decode::Outcome::Dns(error) => {
                *self
                    .counters
                    .decode_errors
                    .entry(error.reason())
                    .or_default() += 1;
                Handled::Malformed(error)
            }
            // Every response stores and carries its message.
            decode::Outcome::NotStored | decode::Outcome::NoResponse => Handled::Query,
        }
    }
}

/// The non-zero capture-crate counters, `name=value`.
fn nonzero_metrics(metrics: &Metrics) -> String {
    metrics
        .snapshot()
        .into_iter()
        .filter(|(_, _, value)| *value > 0)
        .map(|(name, _, value)| {
            let short = name
                .trim_start_matches("dnsrecall_capture_")
                .trim_end_matches("_total");
            format!("{short}={value}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn log_counters(source: &str, counters: &CaptureCounters, metrics: &Metrics, last: bool) {
    let get = |name: &str| metrics.get(name).unwrap_or(0);
    tracing::info!(
        source,
        final_report = last,
        packets = get("packets"),
        kernel_received = get("live_received"),
        kernel_dropped = get("live_dropped"),
        interface_dropped = get("live_if_dropped"),
        channel_full = get("live_channel_full"),
        messages = counters.messages,
        queries = counters.queries,
        responses = counters.responses,
        matched = counters.matched,
        mean_latency_us = counters.mean_latency_us(),
        entries = counters.entries,
        decode_errors = counters.decode_errors_total(),
        "capture counters"
    );
    if !counters.decode_errors.is_empty() {
        tracing::info!(source, errors = ?counters.decode_errors, "capture: DNS decode errors by reason");
    }
    tracing::debug!(source, rcodes = ?counters.rcodes, metrics = %nonzero_metrics(metrics), "capture details");
}

//------------ serve -----------------------------------------------------------

/// Starts the configured capture inputs: the live capture on `interface`
/// and the `files`, each on a blocking thread sending batches to
/// `context.entries`. The live capture is opened here, so a bad interface
/// or filter stops `serve` at start.
pub async fn start(
    config: &CaptureConfig,
    context: &IngestContext,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    if config.interface.is_none() && config.files.is_empty() {
        return Ok(tasks);
    }
    config.validate()?;
    let decoder_config = config.decoder_config();
    if let Some(interface) = &config.interface {
        let live = config.live_config(interface);
        let metrics = Arc::new(Metrics::new());
        let exported = Arc::clone(&metrics);
        context
            .metrics
            .register_samples(move || exported.snapshot());
        let capture = LiveCapture::start(&live, &decoder_config, metrics.clone()).map_err(|e| {
            anyhow::anyhow!(
                "cannot capture on {interface} (filter {:?}): {e}",
                live.filter
            )
        })?;
        tracing::info!(interface = %interface, filter = %live.filter, ports = ?config.ports, "live capture started");
        let stop = capture.stop_handle();
        let shutdown = context.shutdown.clone();
        tasks.push(tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.stop();
        }));
        let sensor: Arc<str> = Arc::from(config.sensor_id.as_deref().unwrap_or(interface));
        let decoder = ResponseDecoder::new(config, Some(sensor), metrics);
        decoder.export(&context.metrics);
        let context = context.clone();
        let name = format!("capture:{interface}");
        tasks.push(tokio::task::spawn_blocking(move || {
            run_live(capture, decoder, &context, &name)
        }));
    }
    for path in &config.files {
        let reader =
            PcapFileReader::open_with_metrics(path, &decoder_config, Arc::new(Metrics::new()))
                .map_err(|e| anyhow::anyhow!("capture file {}: {e}", path.display()))?;
        let sensor = config.sensor_id.as_deref().map(Arc::from);
        let exported = Arc::clone(reader.metrics());
        context
            .metrics
            .register_samples(move || exported.snapshot());
        let decoder = ResponseDecoder::new(config, sensor, reader.metrics().clone());
        decoder.export(&context.metrics);
        let context = context.clone();
        let name = format!("capture-file:{}", path.display());
        tasks.push(tokio::task::spawn_blocking(move || {
            run_file(reader, decoder, &context, &name)
        }));
    }
    Ok(tasks)
}

/// Sends a batch; false when the writer is gone.
fn send_batch(context: &IngestContext, batch: &mut Batch) -> bool {
    if batch.is_empty() {
        return true;
    }
    let full = std::mem::replace(batch, Batch::with_capacity(LIVE_BATCH_ENTRIES));
    match &context.entries {
        Some(sender) => sender.blocking_send(full).is_ok(),
        None => true,
    }
}

fn run_live(
    capture: LiveCapture,
    mut decoder: ResponseDecoder,
    context: &IngestContext,
    name: &str,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut batch = Batch::with_capacity(LIVE_BATCH_ENTRIES);
    let mut batch_started = Instant::now();
    let mut last_stats = Instant::now();
    let mut writer_open = true;
    loop {
        match capture.recv_timeout(LIVE_BATCH_AGE) {
            Ok(payload) => {
                if batch.is_empty() {
                    batch_started = Instant::now();
                }
                decoder.handle(&payload, &mut batch, &context.outputs);
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The capture thread ended (stopped, or a libpcap error).
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if writer_open
            && (batch.len() >= LIVE_BATCH_ENTRIES || batch_started.elapsed() >= LIVE_BATCH_AGE)
        {
            writer_open = send_batch(context, &mut batch);
            decoder.publish();
            if !writer_open {
                tracing::warn!(
                    source = name,
                    "the store writer stopped: captured records are dropped"
                );
            }
        }
        if !writer_open {
            batch = Batch::default();
        }
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            log_counters(name, &decoder.counters, &decoder.metrics, false);
        }
    }
    let metrics = decoder.metrics.clone();
    if let Err(error) = capture.stop() {
        tracing::error!(source = name, %error, "live capture failed");
    }
    if writer_open {
        send_batch(context, &mut batch);
    }
    decoder.publish();
    log_counters(name, &decoder.counters, &metrics, true);
}

fn run_file(
    reader: PcapFileReader,
    mut decoder: ResponseDecoder,
    context: &IngestContext,
    name: &str,
) {
    let mut batch = Batch::with_capacity(LIVE_BATCH_ENTRIES);
    for item in reader {
        if context.shutdown.is_cancelled() {
            tracing::warn!(source = name, "shutdown: capture file not read to the end");
            break;
        }
        match item {
            Ok(payload) => {
                decoder.handle(&payload, &mut batch, &context.outputs);
                if batch.len() >= LIVE_BATCH_ENTRIES {
                    let sent = send_batch(context, &mut batch);
                    decoder.publish();
                    if !sent {
                        tracing::warn!(source = name, "the store writer stopped");
                        return;
                    }
                }
            }
            Err(error) => {
                tracing::error!(source = name, %error, "capture file ends early (kept what came before)")
            }
        }
    }
    send_batch(context, &mut batch);
    decoder.publish();
    log_counters(name, &decoder.counters, &decoder.metrics, true);
}

//------------ import ----------------------------------------------------------

/// Whether a file starts like a pcap or pcapng capture (any byte order, plain
/// or gzip'd: `import` undoes gzip before asking, the capture reader would
/// too).
pub fn sniff(head: &[u8]) -> bool {
    dnsrecall_capture::sniff_capture(head).is_some()
}

/// `import` of a pcap or pcapng file: every DNS response becomes entries.
///
/// Counts packets in `stats.messages`, responses in `stats.responses`,
/// entries in `stats.entries`, error rcodes in `stats.error_responses`, and
/// responses that do not decode as rejects (`file:packet: reason`). A
/// truncated or corrupt capture keeps everything before the damage and then
/// returns an error.
pub fn import_reader(
    reader: Box<dyn std::io::BufRead + Send>,
    path: &Path,
    import: &ImportContext<'_>,
    stats: &mut LineStats,
    emit: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let config = import.capture;
    let (parser, batch_size) = (import.parser, import.batch_size);
    config.validate()?;
    let metrics = Arc::new(Metrics::new());
    let mut packets =
        PcapFileReader::from_reader(path, reader, &config.decoder_config(), metrics.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sensor = parser
        .sensor_id
        .clone()
        .or_else(|| config.sensor_id.as_deref().map(Arc::from));
    let mut decoder = ResponseDecoder::new(config, sensor, metrics.clone());
    let batch_size = batch_size.max(1);
    let mut batch = Batch::with_capacity(batch_size.min(1 << 16));
    let mut failure = None;
    let mut counted_packets = 0;
    while let Some(item) = packets.next() {
        let packet = packets.packets();
        stats.messages += packet - counted_packets;
        counted_packets = packet;
        match item {
            Ok(payload) => match decoder.handle(&payload, &mut batch, &MessageOutputs::default()) {
                Handled::Response => stats.responses += 1,
                Handled::Query => {}
                Handled::Malformed(error) => {
                    stats.responses += u64::from(error != DecodeError::ShortMessage);
                    stats.reject(
                        error.reason(),
                        path,
                        packet,
                        &format_args!("packet {packet}: {error}"),
                    );
                }
            },
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
        if batch.len() >= batch_size {
            emit(std::mem::replace(
                &mut batch,
                Batch::with_capacity(batch_size.min(1 << 16)),
            ))?;
        }
    }
    stats.messages += packets.packets() - counted_packets;
    stats.entries += decoder.counters.entries;
    for (rcode, count) in &decoder.counters.rcodes {
        if *rcode != "NOERROR" {
            *stats.error_responses.entry(rcode).or_default() += count;
        }
    }
    if !batch.is_empty() {
        emit(batch)?;
    }
    let counters = &decoder.counters;
    tracing::info!(
        file = %path.display(),
        packets = packets.packets(),
        messages = counters.messages,
        queries = counters.queries,
        responses = counters.responses,
        matched = counters.matched,
        entries = counters.entries,
        decode_errors = counters.decode_errors_total(),
        "capture file read"
    );
    tracing::debug!(file = %path.display(), metrics = %nonzero_metrics(&metrics), "capture counters");
    match failure {
        Some(error) => Err(anyhow::anyhow!("{error} (the records before it were kept)")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_keys() {
        let config: CaptureConfig =
            toml::from_str("ports = [53, 5353]\nadditional = \"never\"\n").unwrap();
        assert_eq!(config.ports, vec![53, 5353]);
        assert_eq!(config.additional, AdditionalPolicy::Never);
        assert_eq!(config.snaplen, 65_535);
        assert!(
            config
                .effective_filter()
                .starts_with("port 53 or port 5353 or ")
        );
        assert!(toml::from_str::<CaptureConfig>("portz = [1]\n").is_err());
        let decoder = config.decoder_config();
        assert!(decoder.ports.contains(5353) && !decoder.ports.contains(5355));
    }

    #[test]
    fn sniffs_captures() {
        assert!(sniff(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]));
        assert!(sniff(&[
            0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a
        ]));
        assert!(!sniff(b"{\"rrname\":1}"));
        assert!(!sniff(b""));
    }
}

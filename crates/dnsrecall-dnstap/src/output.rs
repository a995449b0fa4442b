//! Message logs compatible with python dnstap-receiver, and dnstap file
//! output.
//!
//! A [`Dispatcher`] decodes each frame once into a [`MessageView`] (with
//! query→response latency from a bounded [`LatencyTable`]) and offers it to
//! every output's **bounded** queue with `try_send`: a full queue drops the
//! message and counts it in [`Metrics::output_dropped`], so a slow disk never
//! stalls the receiver. Each output renders and writes on its own blocking
//! thread, to stdout or to a file rotated by size.
//!
//! Formats ([`Format`]): a text line
//! `<datetime> <identity> <TYPE> <rcode> <query-ip> <query-port> <family> <protocol> <length>b <qname> <rrtype> <latency>`,
//! one JSON object per line with dnstap-receiver's keys, YAML documents, or
//! the raw frames as a Frame Streams file.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio_util::codec::Encoder;
use tracing::warn;

use crate::dns;
use crate::framestream::{ControlFrame, ControlType, DNSTAP_CONTENT_TYPE, FrameCodec};
use crate::metrics::{ErrorReason, Metrics};
use crate::proto::{Dnstap, decode_dnstap};

//---- Geo ----

/// GeoIP/ASN enrichment of a message's client, filled by the caller (this
/// crate opens no database). With it, text lines end in `<country> <city>`
/// and JSON/YAML get `country` and `city` as dnstap-receiver's GeoIP
/// support adds them, plus our own `asn`, `as-org` and, when the query
/// carried an EDNS Client Subnet, `ecs` and `ecs-country`/`ecs-city`/
/// `ecs-asn`/`ecs-as-org`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geo {
    /// What `country` shows: the ISO code or the English name (as
    /// configured).
    pub country: Option<String>,
    /// The ISO 3166 code (what country filters compare).
    pub country_iso: Option<String>,
    /// English city name.
    pub city: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    pub organization: Option<String>,
    /// The EDNS Client Subnet of the query (`192.0.2.0/24`), when present.
    pub ecs_subnet: Option<String>,
    /// The enrichment of the ECS address.
    pub ecs: Option<Box<Geo>>,
}

//---- MessageView ----

/// What dnstap-receiver shows of one dnstap message. `None` prints as `-`.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageView {
    /// Server identity (lossy UTF-8).
    pub identity: Option<String>,
    /// Message type name (`CLIENT_QUERY`), or the number if unknown.
    pub message: String,
    /// Odd type: query; even: response.
    pub is_query: bool,
    /// RCODE mnemonic from the DNS header.
    pub rcode: Option<String>,
    /// DNS message ID.
    pub id: Option<u16>,
    /// First question name, with trailing dot.
    pub qname: Option<String>,
    /// First question type mnemonic.
    pub rrtype: Option<String>,
    /// Initiator address.
    pub query_ip: Option<String>,
    /// Initiator port.
    pub query_port: Option<u32>,
    /// Responder address.
    pub response_ip: Option<String>,
    /// Responder port.
    pub response_port: Option<u32>,
    /// `INET` / `INET6`.
    pub family: Option<String>,
    /// `UDP`, `TCP`, `DOT`, ...
    pub protocol: Option<String>,
    /// Length of the DNS message (query for queries, response for responses).
    pub length: Option<usize>,
    /// Event time (query or response time), seconds since the epoch.
    pub timestamp: Option<f64>,
    /// The same time as `2020-09-16T18:51:53.547352+00:00`.
    pub datetime: Option<String>,
    /// Seconds from the matching query to this response, 3 decimals.
    pub latency: Option<f64>,
    /// GeoIP/ASN enrichment, when on.
    pub geo: Option<Geo>,
}

/// Python's `datetime.fromtimestamp(t, tz=timezone.utc).isoformat()` of
/// the same instant: microseconds rounded half to even, the fraction left
/// out when it is zero (`2020-09-16T18:51:53.547352+00:00`).
fn format_datetime(seconds: u64, nanos: u32) -> Option<String> {
    let nanos = nanos.min(999_999_999);
    let (mut micros, rest) = (nanos / 1000, nanos % 1000);
    if rest > 500 || (rest == 500 && micros % 2 == 1) {
        micros += 1;
    }
    let seconds = i64::try_from(seconds).ok()? + i64::from(micros / 1_000_000);
    let micros = micros % 1_000_000;
    let timestamp = jiff::Timestamp::new(seconds, 0).ok()?;
    let civil = timestamp.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second(),
    );
    if micros != 0 {
        text.push_str(&format!(".{micros:06}"));
    }
    text.push_str("+00:00");
    Some(text)
}

/// A float as Python's `str()` prints it (shortest round trip, `.0` on
/// whole numbers): how dnstap-receiver's text line shows the latency.
pub fn python_float(value: f64) -> String {
    let text = format!("{value}");
    if text.contains(['.', 'e', 'E', 'i', 'N']) {
        text
    } else {
        format!("{text}.0")
    }
}

impl MessageView {
    /// Builds the view of `tap`; `None` if it carries no message. With a
    /// latency table, queries are remembered and responses get a latency.
    pub fn new(tap: &Dnstap, latency: Option<&mut LatencyTable>) -> Option<Self> {
        let message = tap.message.as_ref()?;
        let kind = message.kind();
        let is_query = kind.is_query();
        let (payload, seconds, nanos) = if is_query {
            (
                message.query_message.as_ref(),
                message.query_time_sec,
                message.query_time_nsec,
            )
        } else {
            (
                message.response_message.as_ref(),
                message.response_time_sec,
                message.response_time_nsec,
            )
        };
        let summary = payload.and_then(|p| dns::summarize(p));
        let nanos = nanos.unwrap_or(0);
        // dnstap-receiver's arithmetic (`sec + nsec*1e-9`), so both print
        // the same float.
        let timestamp = seconds.map(|s| s as f64 + f64::from(nanos.min(999_999_999)) * 1e-9);
        let mut view = MessageView {
            identity: tap
                .identity
                .as_ref()
                .map(|i| String::from_utf8_lossy(i).into_owned()),
            message: kind.to_string(),
            is_query,
            rcode: summary.as_ref().map(|s| dns::rcode_name(s.rcode)),
            id: summary.as_ref().map(|s| s.id),
            qname: summary.as_ref().and_then(|s| s.qname.clone()),
            rrtype: summary.as_ref().and_then(|s| s.qtype).map(dns::rrtype_name),
            query_ip: message.query_ip().map(|ip| ip.to_string()),
            query_port: message.query_port,
            response_ip: message.response_ip().map(|ip| ip.to_string()),
            response_port: message.response_port,
            family: message.family().map(|f| f.name().to_string()),
            protocol: message.protocol().map(|p| p.name().to_string()),
            length: payload.map(|p| p.len()),
            timestamp,
            datetime: seconds.and_then(|s| format_datetime(s, nanos)),
            latency: None,
            geo: None,
        };
        // As dnstap-receiver: keyed on (query address, port, id), only
        // with an address and a non-zero port; a response does not remove
        // the query (a second response to it gets a latency too).
        let address = message.query_address.as_ref().filter(|a| !a.is_empty());
        let port = message.query_port.filter(|p| *p > 0);
        if let (Some(table), Some(summary), Some(time), Some(address), Some(port)) =
            (latency, summary.as_ref(), timestamp, address, port)
        {
            let key = LatencyKey {
                address: address.clone(),
                port,
                id: summary.id,
            };
            if is_query {
                table.insert_query(key, time);
            } else if let Some(query_time) = table.query_time(&key) {
                // Python's round(x, 3): the decimal nearest the exact
                // binary value, which is what `{:.3}` prints.
                view.latency = format!("{:.3}", time - query_time).parse().ok();
            }
        }
        Some(view)
    }

    /// The text line (no newline).
    pub fn to_text(&self) -> String {
        fn or_dash<T: ToString>(value: &Option<T>) -> String {
            value
                .as_ref()
                .map_or_else(|| "-".to_string(), |v| v.to_string())
        }
        let length = self
            .length
            .map_or_else(|| "-".to_string(), |l| format!("{l}b"));
        let mut fields = vec![
            or_dash(&self.datetime),
            or_dash(&self.identity),
            self.message.clone(),
            or_dash(&self.rcode),
            or_dash(&self.query_ip),
            or_dash(&self.query_port),
            or_dash(&self.family),
            or_dash(&self.protocol),
            length,
            or_dash(&self.qname),
            or_dash(&self.rrtype),
            self.latency.map_or_else(|| "-".to_string(), python_float),
        ];
        if let Some(geo) = &self.geo {
            fields.push(or_dash(&geo.country));
            fields.push(or_dash(&geo.city));
        }
        fields.join(" ")
    }

    /// The fields as dnstap-receiver orders them (missing → `"-"`).
    pub fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::Value;
        fn text(value: &Option<String>) -> Value {
            value.clone().map_or_else(|| Value::from("-"), Value::from)
        }
        fn number<T: Into<Value> + Copy>(value: Option<T>) -> Value {
            value.map_or_else(|| Value::from("-"), Into::into)
        }
        let mut fields = vec![
            ("identity", text(&self.identity)),
            ("qname", text(&self.qname)),
            ("rrtype", text(&self.rrtype)),
            ("query-ip", text(&self.query_ip)),
            ("query-port", number(self.query_port)),
            ("response-ip", text(&self.response_ip)),
            ("response-port", number(self.response_port)),
            ("latency", number(self.latency)),
            ("message", Value::from(self.message.clone())),
            ("family", text(&self.family)),
            ("protocol", text(&self.protocol)),
            ("length", number(self.length.map(|l| l as u64))),
            ("timestamp", number(self.timestamp)),
            (
                "type",
                Value::from(if self.is_query { "query" } else { "response" }),
            ),
            ("rcode", text(&self.rcode)),
            ("id", number(self.id)),
        ];
        if let Some(geo) = &self.geo {
            // dnstap-receiver adds country and city before datetime.
            fields.push(("country", text(&geo.country)));
            fields.push(("city", text(&geo.city)));
            fields.push(("asn", number(geo.asn)));
            fields.push(("as-org", text(&geo.organization)));
            if let Some(subnet) = &geo.ecs_subnet {
                fields.push(("ecs", Value::from(subnet.clone())));
                let ecs = geo.ecs.as_deref();
                fields.push(("ecs-country", text(&ecs.and_then(|e| e.country.clone()))));
                fields.push(("ecs-city", text(&ecs.and_then(|e| e.city.clone()))));
                fields.push(("ecs-asn", number(ecs.and_then(|e| e.asn))));
                fields.push((
                    "ecs-as-org",
                    text(&ecs.and_then(|e| e.organization.clone())),
                ));
            }
        }
        fields.push(("datetime", text(&self.datetime)));
        fields
    }

    /// One JSON object (no newline), keys in dnstap-receiver's order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(400);
        self.write_json(&mut out);
        out
    }

    /// Appends the JSON object (no newline) to `out`, as python's
    /// `json.dumps` writes it: `", "` and `": "` separators, non-ASCII
    /// escaped (`ensure_ascii`), floats as `repr` prints them. Written
    /// directly, without building the [`MessageView::fields`] list: this is
    /// the hot path of a JSON log.
    pub fn write_json(&self, out: &mut String) {
        let mut json = JsonObject { out, first: true };
        json.text("identity", self.identity.as_deref());
        json.text("qname", self.qname.as_deref());
        json.text("rrtype", self.rrtype.as_deref());
        json.text("query-ip", self.query_ip.as_deref());
        json.integer("query-port", self.query_port.map(u64::from));
        json.text("response-ip", self.response_ip.as_deref());
        json.integer("response-port", self.response_port.map(u64::from));
        json.float("latency", self.latency);
        json.text("message", Some(&self.message));
        json.text("family", self.family.as_deref());
        json.text("protocol", self.protocol.as_deref());
        json.integer("length", self.length.map(|l| l as u64));
        json.float("timestamp", self.timestamp);
        json.text(
            "type",
            Some(if self.is_query { "query" } else { "response" }),
        );
        json.text("rcode", self.rcode.as_deref());
        json.integer("id", self.id.map(u64::from));
        if let Some(geo) = &self.geo {
            json.text("country", geo.country.as_deref());
            json.text("city", geo.city.as_deref());
            json.integer("asn", geo.asn.map(u64::from));
            json.text("as-org", geo.organization.as_deref());
            if let Some(subnet) = &geo.ecs_subnet {
                let ecs = geo.ecs.as_deref();
                json.text("ecs", Some(subnet));
                json.text("ecs-country", ecs.and_then(|e| e.country.as_deref()));
                json.text("ecs-city", ecs.and_then(|e| e.city.as_deref()));
                json.integer("ecs-asn", ecs.and_then(|e| e.asn).map(u64::from));
                json.text("ecs-as-org", ecs.and_then(|e| e.organization.as_deref()));
            }
        }
        json.text("datetime", self.datetime.as_deref());
        json.out.push('}');
    }

    /// One YAML document, starting with `---` and ending with a newline.
    /// Strings are double-quoted (JSON escapes are valid YAML escapes).
    pub fn to_yaml(&self) -> String {
        let mut out = String::from("---\n");
        for (key, value) in self.fields() {
            out.push_str(key);
            out.push_str(": ");
            out.push_str(&value.to_string());
            out.push('\n');
        }
        out
    }
}

/// Writes one flat JSON object the way python's `json.dumps` does.
struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl JsonObject<'_> {
    fn key(&mut self, key: &str) {
        self.out.push_str(if self.first { "{\"" } else { ", \"" });
        self.first = false;
        self.out.push_str(key);
        self.out.push_str("\": ");
    }

    /// A string, `"-"` when missing.
    fn text(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        push_json_string(self.out, value.unwrap_or("-"));
    }

    fn integer(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(value) => {
                use std::fmt::Write as _;
                let _ = write!(self.out, "{value}");
            }
            None => self.out.push_str("\"-\""),
        }
    }

    fn float(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        match value {
            Some(value) if value.is_finite() => self.out.push_str(&python_float(value)),
            _ => self.out.push_str("\"-\""),
        }
    }
}

/// A JSON string literal as python's `json.dumps` (`ensure_ascii=True`)
/// writes it.
pub fn push_json_string(out: &mut String, text: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

//---- LatencyTable ----

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LatencyKey {
    address: Bytes,
    port: u32,
    id: u16,
}

/// Remembers query times to compute response latency. Bounded: at most
/// `capacity` queries, each kept at most `ttl`; the oldest go first.
#[derive(Debug)]
pub struct LatencyTable {
    capacity: usize,
    ttl: Duration,
    queries: HashMap<LatencyKey, (f64, Instant)>,
    order: VecDeque<(LatencyKey, Instant)>,
}

impl Default for LatencyTable {
    /// 100 000 queries, 60 s.
    fn default() -> Self {
        LatencyTable::new(100_000, Duration::from_secs(60))
    }
}

impl LatencyTable {
    /// A table of at most `capacity` entries living `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        LatencyTable {
            capacity,
            ttl,
            queries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Queries currently remembered.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether no query is remembered.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((key, inserted)) = self.order.front() {
            let over = self.order.len() > self.capacity;
            if !over && now.duration_since(*inserted) < self.ttl {
                break;
            }
            // The entry may have been replaced or taken since; only remove
            // the map entry if it is this very insertion.
            if self.queries.get(key).is_some_and(|(_, at)| at == inserted) {
                self.queries.remove(key);
            }
            self.order.pop_front();
        }
    }

    fn insert_query(&mut self, key: LatencyKey, time: f64) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        self.queries.insert(key.clone(), (time, now));
        self.order.push_back((key, now));
        self.expire(now);
    }

    fn query_time(&mut self, key: &LatencyKey) -> Option<f64> {
        let now = Instant::now();
        self.expire(now);
        self.queries.get(key).map(|(time, _)| *time)
    }
}

//---- Outputs ----

/// How an output renders messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// dnstap-receiver text lines.
    Text,
    /// One JSON object per line.
    Json,
    /// YAML documents.
    Yaml,
    /// The raw frames as a Frame Streams file (START … STOP).
    Dnstap,
}

/// Where an output writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// A file, rotated by size.
    File {
        /// The file; rotated copies are `<path>.1` (newest) … `<path>.<max_files>`.
        path: PathBuf,
        /// Rotate before a write would make the file larger than this; 0 = never.
        max_size: u64,
        /// Rotated copies kept.
        max_files: usize,
    },
}

/// One output.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// Rendering.
    pub format: Format,
    /// Destination.
    pub target: Target,
    /// Messages queued before new ones are dropped (default 10 000).
    pub queue_size: usize,
}

impl OutputConfig {
    /// An output with the default queue size.
    pub fn new(format: Format, target: Target) -> Self {
        OutputConfig {
            format,
            target,
            queue_size: 10_000,
        }
    }
}

/// A message handed to outputs: the raw frame and its view.
#[derive(Debug)]
pub struct Record {
    /// The dnstap protobuf as received.
    pub frame: Bytes,
    /// Its view; `None` when the frame holds no message.
    pub view: Option<MessageView>,
}

/// Decodes frames once and feeds every output's bounded queue.
pub struct Dispatcher {
    outputs: Vec<mpsc::Sender<Arc<Record>>>,
    latency: LatencyTable,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// A dispatcher without outputs.
    pub fn new(latency: LatencyTable, metrics: Arc<Metrics>) -> Self {
        Dispatcher {
            outputs: Vec::new(),
            latency,
            metrics,
        }
    }

    /// Opens `config`'s target and starts its writer thread. The returned
    /// handle ends (flushing, and writing STOP for dnstap files) once the
    /// dispatcher is dropped. Must be called inside a tokio runtime.
    pub fn add_output(
        &mut self,
        config: OutputConfig,
    ) -> io::Result<tokio::task::JoinHandle<io::Result<()>>> {
        let (sender, receiver) = mpsc::channel(config.queue_size.max(1));
        let writer = OutputWriter::open(&config)?;
        let metrics = self.metrics.clone();
        let handle = tokio::task::spawn_blocking(move || {
            run_output(writer, config.format, receiver, metrics)
        });
        self.outputs.push(sender);
        Ok(handle)
    }

    /// Decodes `frame` and offers it to every output. A frame that is not
    /// dnstap protobuf is counted ([`Metrics::errors_protobuf`]) and returned
    /// as an error.
    pub fn dispatch(&mut self, frame: Bytes) -> Result<(), prost::DecodeError> {
        let tap = match decode_dnstap(frame.clone()) {
            Ok(tap) => tap,
            Err(error) => {
                self.metrics.record_error(ErrorReason::Protobuf);
                return Err(error);
            }
        };
        self.dispatch_tap(frame, &tap);
        Ok(())
    }

    /// Offers an already decoded message (`tap`, whose protobuf is
    /// `frame`) to every output, without decoding `frame` again.
    pub fn dispatch_tap(&mut self, frame: Bytes, tap: &Dnstap) {
        let view = MessageView::new(tap, Some(&mut self.latency));
        let record = Arc::new(Record { frame, view });
        for output in &self.outputs {
            if output.try_send(record.clone()).is_err() {
                Metrics::inc(&self.metrics.output_dropped);
            }
        }
    }
}

/// The bytes of one control frame (START/STOP of a dnstap file).
pub fn control_bytes(control: ControlFrame) -> Vec<u8> {
    let mut out = BytesMut::new();
    // Encoding a fixed, small control frame cannot fail; an empty header on
    // the impossible error is harmless.
    let _ = FrameCodec::default().encode(&control, &mut out);
    out.to_vec()
}

/// A file or stdout, with optional size rotation and header/trailer bytes
/// (START/STOP for dnstap files).
struct OutputWriter {
    sink: BufWriter<Box<dyn Write + Send>>,
    file: Option<(PathBuf, u64, usize)>,
    size: u64,
    header: Vec<u8>,
    trailer: Vec<u8>,
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl OutputWriter {
    fn open(config: &OutputConfig) -> io::Result<Self> {
        let (header, trailer) = if config.format == Format::Dnstap {
            (
                control_bytes(ControlFrame::with_content_type(
                    ControlType::Start,
                    DNSTAP_CONTENT_TYPE,
                )),
                control_bytes(ControlFrame::new(ControlType::Stop)),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut writer = match &config.target {
            Target::Stdout => OutputWriter {
                sink: BufWriter::new(Box::new(io::stdout())),
                file: None,
                size: 0,
                header,
                trailer,
            },
            Target::File {
                path,
                max_size,
                max_files,
            } => {
                // A Frame Streams file cannot be appended to after its STOP:
                // start a fresh one.
                if config.format == Format::Dnstap && path.exists() {
                    rotate(path, *max_files)?;
                }
                let (file, size) = open_append(path)?;
                OutputWriter {
                    sink: BufWriter::new(Box::new(file)),
                    file: Some((path.clone(), *max_size, *max_files)),
                    size,
                    header,
                    trailer,
                }
            }
        };
        let header = writer.header.clone();
        writer.write_raw(&header)?;
        Ok(writer)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sink.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some((path, max_size, max_files)) = &self.file {
            let projected = self.size + bytes.len() as u64 + self.trailer.len() as u64;
            if *max_size > 0 && projected > *max_size && self.size > self.header.len() as u64 {
                let (path, max_files) = (path.clone(), *max_files);
                let trailer = self.trailer.clone();
                self.write_raw(&trailer)?;
                self.sink.flush()?;
                rotate(&path, max_files)?;
                let (file, size) = open_append(&path)?;
                self.sink = BufWriter::new(Box::new(file));
                self.size = size;
                let header = self.header.clone();
                self.write_raw(&header)?;
            }
        }
        self.write_raw(bytes)
    }

    fn close(mut self) -> io::Result<()> {
        let trailer = self.trailer.clone();
        self.write_raw(&trailer)?;
        self.sink.flush()
    }
}

/// `path.(n-1)` → `path.n`, …, `path` → `path.1`; with `max_files == 0` the
/// current file is removed.
fn rotate(path: &Path, max_files: usize) -> io::Result<()> {
    let numbered = |n: usize| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    if max_files == 0 {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    for n in (1..max_files).rev() {
        let from = numbered(n);
        if from.exists() {
            std::fs::rename(&from, numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}

fn render(
    format: Format,
    record: &Record,
    frame_codec: &mut FrameCodec,
    scratch: &mut BytesMut,
) -> Option<Vec<u8>> {
    match format {
        Format::Dnstap => {
            scratch.clear();
            frame_codec.encode(&record.frame[..], scratch).ok()?;
            Some(scratch.to_vec())
        }
        Format::Text => record.view.as_ref().map(|v| {
            let mut line = v.to_text().into_bytes();
            line.push(b'\n');
            line
        }),
        Format::Json => record.view.as_ref().map(|v| {
            let mut line = v.to_json().into_bytes();
            line.push(b'\n');
            line
        }),
        Format::Yaml => record.view.as_ref().map(|v| v.to_yaml().into_bytes()),
    }
}

fn run_output(
    mut writer: OutputWriter,
    format: Format,
    mut receiver: mpsc::Receiver<Arc<Record>>,
    metrics: Arc<Metrics>,
) -> io::Result<()> {
    let mut codec = FrameCodec::new(u32::MAX as usize);
    let mut scratch = BytesMut::new();
    let mut failed = false;
    while let Some(record) = receiver.blocking_recv() {
        let mut next = Some(record);
        // Write everything queued, then flush once.
        while let Some(record) = next {
            if let Some(bytes) = render(format, &record, &mut codec, &mut scratch) {
                match writer.write(&bytes) {
                    Ok(()) => Metrics::inc(&metrics.output_written),
                    Err(error) => {
                        Metrics::inc(&metrics.output_errors);
                        if !failed {
                            warn!(error = %error, "dnstap output write failed");
                            failed = true;
                        }
                    }
                }
            }
            next = receiver.try_recv().ok();
        }
        if let Err(error) = writer.sink.flush() {
            Metrics::inc(&metrics.output_errors);
            if !failed {
                warn!(error = %error, "dnstap output flush failed");
                failed = true;
            }
        }
    }
    writer.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Message, SocketFamily, SocketProtocol, message};

    fn query(id: u16, qname: &[u8]) -> Bytes {
        let mut wire = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(qname);
        wire.extend_from_slice(&[0, 1, 0, 1]);
        Bytes::from(wire)
    }

    fn tap(kind: message::Type, sec: u64, nsec: u32) -> Dnstap {
        let wire = query(7, b"\x03ns2\x06google\x03com\x00");
        let is_query = (kind as i32) % 2 == 1;
        Dnstap {
            identity: Some(Bytes::from_static(b"lb1")),
            r#type: 1,
            message: Some(Message {
                r#type: kind as i32,
                socket_family: Some(SocketFamily::Inet as i32),
                socket_protocol: Some(SocketProtocol::Udp as i32),
                query_address: Some(Bytes::from_static(&[10, 0, 0, 1])),
                query_port: Some(5353),
                query_time_sec: is_query.then_some(sec),
                query_time_nsec: is_query.then_some(nsec),
                response_time_sec: (!is_query).then_some(sec),
                response_time_nsec: (!is_query).then_some(nsec),
                query_message: is_query.then(|| wire.clone()),
                response_message: (!is_query).then_some(wire),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn text_line_and_latency() {
        let mut table = LatencyTable::default();
        let q = MessageView::new(
            &tap(message::Type::ClientQuery, 1600282313, 547352000),
            Some(&mut table),
        )
        .unwrap();
        assert_eq!(
            q.to_text(),
            "2020-09-16T18:51:53.547352+00:00 lb1 CLIENT_QUERY NOERROR 10.0.0.1 5353 INET UDP 32b ns2.google.com. A -"
        );
        let r = MessageView::new(
            &tap(message::Type::ClientResponse, 1600282313, 595352000),
            Some(&mut table),
        )
        .unwrap();
        assert_eq!(r.latency, Some(0.048));
        assert!(r.to_text().ends_with(" 0.048"));
        assert_eq!(python_float(0.0), "0.0");
        assert_eq!(python_float(0.05), "0.05");
        assert_eq!(
            format_datetime(1, 0).as_deref(),
            Some("1970-01-01T00:00:01+00:00")
        );
        assert_eq!(
            format_datetime(1, 999_999_500).as_deref(),
            Some("1970-01-01T00:00:02+00:00"),
            "half to even carries into the next second"
        );
        assert_eq!(
            format_datetime(1, 1_500).as_deref(),
            Some("1970-01-01T00:00:01.000002+00:00")
        );
        assert_eq!(table.len(), 1, "the query stays, as in dnstap-receiver");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let mut escaped = String::new();
        push_json_string(&mut escaped, "a\"\\\u{1}é😀");
        assert_eq!(escaped, r#""a\"\\\u0001\u00e9\ud83d\ude00""#);
        let keys: Vec<&str> = r.fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(json.as_object().unwrap().len(), keys.len());
        assert_eq!(json["type"], "response");
        assert_eq!(json["response-ip"], "-");
        assert!(r.to_yaml().contains("\nqname: \"ns2.google.com.\"\n"));
    }

    #[test]
    fn full_queue_drops_and_counts() {
        use prost::Message as _;
        let metrics = Arc::new(Metrics::default());
        let mut dispatcher = Dispatcher::new(LatencyTable::default(), metrics.clone());
        // A queue of 2 that nobody reads: the 3rd..5th messages are dropped.
        let (sender, _receiver) = mpsc::channel(2);
        dispatcher.outputs.push(sender);
        let frame = Bytes::from(tap(message::Type::ClientQuery, 1, 0).encode_to_vec());
        for _ in 0..5 {
            dispatcher.dispatch(frame.clone()).unwrap();
        }
        assert_eq!(
            metrics.value("dnsrecall_dnstap_output_dropped_total"),
            Some(3)
        );
        assert!(
            dispatcher
                .dispatch(Bytes::from_static(b"\xff\xff"))
                .is_err()
        );
        assert_eq!(
            metrics.value("dnsrecall_dnstap_errors_protobuf_total"),
            Some(1)
        );
    }

    #[test]
    fn latency_table_is_bounded() {
        let mut table = LatencyTable::new(3, Duration::from_secs(60));
        for id in 0..10 {
            table.insert_query(
                LatencyKey {
                    address: Bytes::new(),
                    port: 1,
                    id,
                },
                0.0,
            );
        }
        assert_eq!(table.len(), 3);
        let first = LatencyKey {
            address: Bytes::new(),
            port: 1,
            id: 0,
        };
        assert_eq!(table.query_time(&first), None);
        let mut expiring = LatencyTable::new(10, Duration::ZERO);
        expiring.insert_query(first.clone(), 0.0);
        assert_eq!(expiring.query_time(&first), None);
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let config = OutputConfig::new(
            Format::Text,
            Target::File {
                path: path.clone(),
                max_size: 10,
                max_files: 2,
            },
        );
        let mut writer = OutputWriter::open(&config).unwrap();
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            writer.write(line.as_bytes()).unwrap();
        }
        writer.close().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "dddddd\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log.txt.1")).unwrap(),
            "cccccc\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log.txt.2")).unwrap(),
            "bbbbbb\n"
        );
        assert!(!dir.path().join("log.txt.3").exists());
    }
}

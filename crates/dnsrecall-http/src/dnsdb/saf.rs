//! SAF, DNSDB's Streaming API Framing (`reference/dnsdb.md` §1.5): the
//! rows of a lookup (or its summary) in DNSDB's JSON shape, one per line,
//! between a `begin` and a terminator line; v1's bare lines.
//!
//! The engine runs on the blocking pool ([`run_lookup`],
//! [`run_summarize`]) and sends encoded lines in chunks over a bounded
//! channel; [`saf_body`] frames them as they come, so memory does not grow
//! with the answer and the first line goes out before the scan starts.

use std::ops::ControlFlow;
use std::time::Instant;

use axum::body::{Body, Bytes};
use dnsrecall_core::store::Store;
use dnsrecall_core::{Entry, Name};
use dnsrecall_query::dnsdb::{self, End, Limit, Lookup, Params, Rows};
use serde::Serialize;
use tokio::sync::mpsc;

use super::Failure;

/// Encoded lines are sent in chunks of about this size...
const CHUNK_BYTES: usize = 16 * 1024;
/// ...or after this long, whichever comes first.
const CHUNK_MILLIS: u128 = 100;
/// A keepalive line goes out when nothing was sent for this long.
const KEEPALIVE_SECS: u64 = 10;

//---- documentation of the lines --------------------------------------------

/// One line of a v2 lookup's SAF stream.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
pub enum LookupLine {
    Condition(SafCondition),
    Result { obj: ObjOut },
}

/// One line of a v2 summarize SAF stream.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
pub enum SummarizeLine {
    Condition(SafCondition),
    Result { obj: SummaryOut },
}

/// A SAF condition line (written by hand in `terminator` and `saf_body`;
/// closed, so an unexpected field fails the schemathesis test).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SafCondition {
    pub cond: SafCond,
    /// Why the stream ended early (`limited`, `failed`).
    pub msg: Option<String>,
}

/// `begin` first, `ongoing` as a keepalive, one of the others last.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SafCond {
    Begin,
    Ongoing,
    Succeeded,
    Limited,
    Failed,
}

//---- rows in DNSDB's shape --------------------------------------------------

/// A time: epoch seconds, or RFC 3339 with `humantime`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = DnsdbTime)]
pub enum Time {
    Epoch(u64),
    Human(String),
}

fn time(t: u64, human: bool) -> Time {
    if human {
        match i64::try_from(t)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
        {
            Some(ts) => Time::Human(ts.to_string()),
            None => Time::Epoch(t),
        }
    } else {
        Time::Epoch(t)
    }
}

/// Rdata in presentation format: an array on rrset lookups, a string on
/// rdata lookups in v1.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = DnsdbRdata)]
pub enum RdataOut {
    One(String),
    Many([String; 1]),
}

/// One record in DNSDB's shape: FQDN names (trailing dot), `TYPEnnn` for
/// types without a mnemonic, bailiwick on rrset lookups only.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DnsdbRecord)]
pub struct ObjOut {
    count: u64,
    time_first: Time,
    time_last: Time,
    rrname: String,
    rrtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bailiwick: Option<String>,
    rdata: RdataOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_time_first: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_time_last: Option<Time>,
}

/// One result object in DNSDB's shape: FQDN names, `TYPEnnn` for types
/// without a mnemonic, bailiwick on rrset results only.
fn result_object(entry: &Entry, rrset: bool, rdata_array: bool, human: bool) -> ObjOut {
    let rdata = entry.record.rdata_text();
    let zone = entry.seen.zone_times;
    ObjOut {
        count: entry.seen.count.max(1),
        time_first: time(entry.seen.time_first, human),
        time_last: time(entry.seen.time_last, human),
        rrname: entry.record.rrname.to_fqdn(),
        rrtype: entry.record.rrtype.to_string(),
        bailiwick: if rrset {
            entry.record.bailiwick.as_ref().map(Name::to_fqdn)
        } else {
            None
        },
        rdata: if rdata_array {
            RdataOut::Many([rdata])
        } else {
            RdataOut::One(rdata)
        },
        zone_time_first: zone.map(|z| time(z.0, human)),
        zone_time_last: zone.map(|z| time(z.1, human)),
    }
}

/// A summary: total count, number of records, time span.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DnsdbSummary)]
pub struct SummaryOut {
    count: u64,
    num_results: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_first: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_last: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_time_first: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_time_last: Option<Time>,
}

//---- streaming -------------------------------------------------------------

/// How a stream ended, as its terminator line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Terminator {
    Succeeded,
    Limited(&'static str),
    Failed,
    /// The store's backend cannot answer this lookup
    /// (`StoreError::Unsupported`; the message names the backend that
    /// can). Sent before any row, so the answer is a 501, not a stream.
    Refused(String),
}

impl Terminator {
    /// How a failed lookup ends: refused when the backend cannot answer
    /// it (not a fault, not logged), failed otherwise (logged).
    fn failed(error: dnsrecall_query::QueryError, what: &str) -> Terminator {
        match error {
            dnsrecall_query::QueryError::Store(
                error @ dnsrecall_core::store::StoreError::Unsupported { .. },
            ) => Terminator::Refused(error.to_string()),
            error => {
                tracing::error!(%error, "DNSDB {what} failed");
                Terminator::Failed
            }
        }
    }
}

impl Terminator {
    fn of(end: End) -> Terminator {
        match end {
            // A stopped stream has no reader left to tell.
            End::Succeeded | End::Stopped => Terminator::Succeeded,
            End::Limited(Limit::Results(_)) => Terminator::Limited("Result limit reached"),
            End::Limited(Limit::MaxCount(_)) => Terminator::Limited("Max count reached"),
        }
    }
}

/// What the scanning thread sends.
pub(super) enum Msg {
    Data(Bytes),
    End(Terminator),
}

/// Feeds encoded lines to the channel, in chunks; the engine's [`Rows`].
struct Sink {
    tx: mpsc::Sender<Msg>,
    buffer: Vec<u8>,
    last_send: Instant,
    /// The receiver is gone (the client left): stop the scan.
    gone: bool,
    /// Rows carry a bailiwick (rrset lookups).
    rrset: bool,
    /// rdata as a one-string array (v2, v1 rrset lookups).
    rdata_array: bool,
    /// Rows wrapped as `{"obj":...}` (v2).
    wrap: bool,
    humantime: bool,
    /// The scan has produced something: an empty chunk was sent so the
    /// route commits to a 200 stream without waiting for a full chunk.
    started: bool,
}

impl Sink {
    fn start(&mut self) {
        if !self.started {
            self.started = true;
            if self.tx.blocking_send(Msg::Data(Bytes::new())).is_err() {
                self.gone = true;
            }
        }
    }

    fn push(&mut self, line: &impl Serialize) {
        if self.wrap {
            self.buffer.extend_from_slice(b"{\"obj\":");
        }
        let _ = serde_json::to_writer(&mut self.buffer, line);
        if self.wrap {
            self.buffer.push(b'}');
        }
        self.buffer.push(b'\n');
        if self.buffer.len() >= CHUNK_BYTES || self.last_send.elapsed().as_millis() >= CHUNK_MILLIS
        {
            self.flush();
        }
    }

    fn keepalive(&mut self) {
        if self.buffer.is_empty() && self.last_send.elapsed().as_secs() >= KEEPALIVE_SECS {
            self.buffer.extend_from_slice(b"{\"cond\":\"ongoing\"}\n");
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buffer));
            if self.tx.blocking_send(Msg::Data(chunk)).is_err() {
                self.gone = true;
            }
        }
        self.last_send = Instant::now();
    }

    fn flow(&self) -> ControlFlow<()> {
        if self.gone {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Rows for Sink {
    fn row(&mut self, entry: Entry) -> ControlFlow<()> {
        self.start();
        let object = result_object(&entry, self.rrset, self.rdata_array, self.humantime);
        self.push(&object);
        self.flow()
    }

    fn filtered(&mut self) -> ControlFlow<()> {
        self.start();
        self.keepalive();
        self.flow()
    }
}

/// Lookup: the blocking part. Sends result lines then the end.
pub(super) fn run_lookup(
    store: &dyn Store,
    lookup: &Lookup,
    params: &Params,
    rdata_array: bool,
    wrap: bool,
    tx: mpsc::Sender<Msg>,
) {
    let mut sink = Sink {
        tx,
        buffer: Vec::with_capacity(CHUNK_BYTES + 1024),
        last_send: Instant::now(),
        gone: false,
        rrset: lookup.is_rrset(),
        rdata_array,
        wrap,
        humantime: params.humantime,
        started: false,
    };
    let result = store
        .refresh()
        .map_err(dnsrecall_query::QueryError::from)
        .and_then(|()| dnsdb::lookup(store, lookup, params, &mut sink));
    sink.flush();
    let end = match result {
        Err(error) => Terminator::failed(error, "lookup"),
        Ok(outcome) => Terminator::of(outcome.end),
    };
    let _ = sink.tx.blocking_send(Msg::End(end));
}

/// Summarize: the blocking part. One summary line then the end.
pub(super) fn run_summarize(
    store: &dyn Store,
    lookup: &Lookup,
    params: &Params,
    tx: mpsc::Sender<Msg>,
) {
    let result = store
        .refresh()
        .map_err(dnsrecall_query::QueryError::from)
        .and_then(|()| dnsdb::summarize(store, lookup, params));
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            let _ = tx.blocking_send(Msg::End(Terminator::failed(error, "summarize")));
            return;
        }
    };
    let human = params.humantime;
    let out = SummaryOut {
        count: summary.count,
        num_results: summary.num_results,
        time_first: summary.times.map(|t| time(t.0, human)),
        time_last: summary.times.map(|t| time(t.1, human)),
        zone_time_first: summary.zone_times.map(|z| time(z.0, human)),
        zone_time_last: summary.zone_times.map(|z| time(z.1, human)),
    };
    let mut line = b"{\"obj\":".to_vec();
    let _ = serde_json::to_writer(&mut line, &out);
    line.extend_from_slice(b"}\n");
    if tx.blocking_send(Msg::Data(Bytes::from(line))).is_ok() {
        let _ = tx.blocking_send(Msg::End(Terminator::of(summary.end)));
    }
}

fn terminator(end: &Terminator) -> Bytes {
    Bytes::from(match end {
        Terminator::Succeeded => "{\"cond\":\"succeeded\"}\n".to_string(),
        Terminator::Limited(msg) => format!("{{\"cond\":\"limited\",\"msg\":\"{msg}\"}}\n"),
        Terminator::Failed => "{\"cond\":\"failed\",\"msg\":\"internal error\"}\n".to_string(),
        Terminator::Refused(msg) => format!(
            "{{\"cond\":\"failed\",\"msg\":{}}}\n",
            serde_json::to_string(msg).unwrap_or_default()
        ),
    })
}

/// A SAF body: `begin`, the chunks as they come, the terminator. A
/// scanning thread that dies leaves the stream without terminator, which
/// clients report as truncation. The first message is awaited before the
/// status (the scan sends an empty chunk as soon as it produces anything),
/// so a lookup the store cannot answer is a 501, not a failed stream.
pub(super) async fn saf_body(mut rx: mpsc::Receiver<Msg>) -> Result<Body, Failure> {
    let first = match rx.recv().await {
        Some(Msg::End(Terminator::Refused(message))) => {
            return Err(Failure(axum::http::StatusCode::NOT_IMPLEMENTED, message));
        }
        first => first,
    };
    let begin = futures::stream::once(async {
        Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{\"cond\":\"begin\"}\n"))
    });
    let rest = futures::stream::unfold((first, Some(rx)), |(pending, rx)| async move {
        let mut rx = rx?;
        let message = match pending {
            Some(message) => message,
            None => rx.recv().await?,
        };
        match message {
            Msg::Data(bytes) => Some((Ok(bytes), (None, Some(rx)))),
            Msg::End(end) => Some((Ok(terminator(&end)), (None, None))),
        }
    });
    Ok(Body::from_stream(futures::StreamExt::chain(begin, rest)))
}

/// A v1 body: the bare lines. v1 says "nothing found" with a 404 and a
/// failure with a 500, so the first chunk is awaited before the status.
pub(super) async fn v1_body(mut rx: mpsc::Receiver<Msg>) -> Result<Body, Failure> {
    use axum::http::StatusCode;
    let first = match rx.recv().await {
        Some(Msg::End(Terminator::Refused(message))) => {
            return Err(Failure(StatusCode::NOT_IMPLEMENTED, message));
        }
        None | Some(Msg::End(Terminator::Failed)) => {
            return Err(Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ));
        }
        Some(Msg::End(_)) => {
            return Err(Failure(
                StatusCode::NOT_FOUND,
                "no results found for query.".into(),
            ));
        }
        Some(Msg::Data(bytes)) => bytes,
    };
    let rest = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await? {
            Msg::Data(bytes) => Some((Ok::<Bytes, std::io::Error>(bytes), rx)),
            Msg::End(_) => None,
        }
    });
    let body = futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), rest);
    Ok(Body::from_stream(body))
}

//! Exports: the page's URL plus `format=`, the same query without the
//! page limit (up to the API's `limit=0`, and an export cut there says
//! so).
//!
//! * `json` (DNSDB SAF) and `v1` (DNSDB v1 lines) are the API's own
//!   answers: the request is handed to the API router as
//!   `/dnsdb/v2/lookup/…?limit=0&time_…` (or `/lookup/…`) with the user's
//!   key, so the bytes are the API's by construction.
//! * `csv` and `cof` (COF NDJSON, as `dnsrecall export` writes it) are
//!   written here from the engine's rows, streamed through a bounded
//!   channel; a cut export ends with a line saying so.

use std::ops::ControlFlow;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::Entry;
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_query::dnsdb::{self, End, Limit, Lookup, Params};
use tokio::sync::mpsc;
use tower::ServiceExt as _;

use crate::Ui;
use crate::session::RequestKey;
use crate::view::{PageQuery, api_query, prepare};

/// The formats, with the label of their link.
pub const FORMATS: &[(&str, &str)] = &[
    ("csv", "CSV"),
    ("json", "JSON (DNSDB SAF)"),
    ("v1", "DNSDB v1"),
    ("cof", "COF NDJSON"),
];

/// Bytes gathered before a chunk goes out.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the scan and the response.
const CHUNKS_IN_FLIGHT: usize = 8;

/// The CSV header line.
pub const CSV_HEADER: &str = "time_first,time_last,count,rrname,rrtype,bailiwick,rdata,sensor_id\n";

/// Answers `format=` for a page query.
pub(crate) async fn export(ui: &Ui, key: &RequestKey, query: &PageQuery, format: &str) -> Response {
    let prepared = match prepare(query) {
        Ok(prepared) => prepared,
        Err(error) => {
            return (StatusCode::BAD_REQUEST, format!("Error: {error}\n")).into_response();
        }
    };
    let path = prepared.search.api_path();
    let api_params = api_query(&prepared.params, 0);
    let filename = filename(&query.q, format);
    let mut response = match format {
        "json" | "saf" => api(ui, key, &format!("/dnsdb/v2/lookup/{path}?{api_params}")).await,
        "v1" => api(ui, key, &format!("/lookup/{path}?{api_params}")).await,
        "csv" | "cof" => {
            let mut params = prepared.params.clone();
            params.limit = ui.state.max_results;
            let content_type = if format == "csv" {
                "text/csv; charset=utf-8"
            } else {
                "application/x-ndjson"
            };
            let csv = format == "csv";
            let body = stream(ui, prepared.search.lookup, params, csv);
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "Error: unknown format {format:?} (one of: {})\n",
                    FORMATS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                ),
            )
                .into_response();
        }
    };
    if response.status().is_success()
        && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `dnsrecall-QUERY.EXT`, with only safe characters.
fn filename(q: &str, format: &str) -> String {
    let stem: String = q
        .chars()
        .take(64)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    let ext = match format {
        "csv" => "csv",
        "v1" => "json",
        _ => "ndjson",
    };
    format!("dnsrecall-{stem}.{ext}")
}

/// The API's answer to `uri`, asked with the user's key.
async fn api(ui: &Ui, key: &RequestKey, uri: &str) -> Response {
    let mut request = Request::get(uri);
    if let Some(key) = &key.0
        && let Ok(value) = HeaderValue::from_str(key)
    {
        request = request.header("x-api-key", value);
    }
    let Ok(request) = request.body(Body::empty()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match ui.state.api.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Runs the lookup on the blocking pool and streams its rows as CSV or
/// COF lines.
fn stream(ui: &Ui, lookup: Lookup, params: Params, csv: bool) -> Body {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let store = ui.state.store.clone();
    let origin = ui.state.origin.clone();
    tokio::task::spawn_blocking(move || {
        let mut buffer = Vec::with_capacity(CHUNK_BYTES + 1024);
        if csv {
            buffer.extend_from_slice(CSV_HEADER.as_bytes());
        }
        let style = CofStyle {
            origin: origin.as_deref(),
            ..CofStyle::default()
        };
        let mut gone = false;
        let ran = dnsdb::lookup(store.as_ref(), &lookup, &params, &mut |entry: Entry| {
            if csv {
                csv_line(&entry, &mut buffer);
            } else {
                cof::write_line(&entry, &style, &mut buffer);
            }
            if buffer.len() >= CHUNK_BYTES {
                let chunk = Bytes::from(std::mem::take(&mut buffer));
                if tx.blocking_send(chunk).is_err() {
                    gone = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if gone {
            return;
        }
        match ran {
            Ok(outcome) => {
                if let End::Limited(Limit::Results(n) | Limit::MaxCount(n)) = outcome.end {
                    let note = if csv {
                        format!("# cut at {n} rows: more records match\n")
                    } else {
                        format!("{{\"cut_at\":{n},\"msg\":\"more records match\"}}\n")
                    };
                    buffer.extend_from_slice(note.as_bytes());
                }
            }
            Err(error) => {
                tracing::error!(%error, "export failed");
                buffer.extend_from_slice(b"# export failed: internal error\n");
            }
        }
        let _ = tx.blocking_send(Bytes::from(buffer));
    });
    let chunks = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(Ok::<_, std::convert::Infallible>))
    });
    Body::from_stream(chunks)
}

/// One CSV record (RFC 4180 quoting).
pub fn csv_line(entry: &Entry, out: &mut Vec<u8>) {
    let record = &entry.record;
    let seen = &entry.seen;
    let fields = [
        crate::html::rfc3339(seen.time_first),
        crate::html::rfc3339(seen.time_last),
        seen.count.max(1).to_string(),
        record.rrname.to_fqdn(),
        record.rrtype.to_string(),
        record
            .bailiwick
            .as_ref()
            .map(|b| b.to_fqdn())
            .unwrap_or_default(),
        record.rdata_text(),
        seen.sensor_id.as_deref().unwrap_or("").to_string(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_core::{Name, Rdata, Record, Rtype, Seen};

    #[test]
    fn csv_quotes_what_needs_it() {
        let entry = Entry {
            record: Record {
                rrname: Name::from_presentation("a.example.com").expect("name"),
                rrtype: Rtype::TXT,
                bailiwick: None,
                rdata: Rdata::from_text_lenient(Rtype::TXT, "\"x, y\""),
            },
            seen: Seen::once(0),
        };
        let mut out = Vec::new();
        csv_line(&entry, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "1970-01-01T00:00:00Z,1970-01-01T00:00:00Z,1,a.example.com.,TXT,,\"\"\"x, y\"\"\",\n"
        );
    }

    #[test]
    fn filenames_are_tame() {
        assert_eq!(
            filename("*.example.com", "csv"),
            "dnsrecall-_.example.com.csv"
        );
        assert_eq!(filename("a\"b/c", "json"), "dnsrecall-a_b_c.ndjson");
    }
}

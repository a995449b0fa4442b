//! The D4/CIRCL passive DNS routes (`/query`, `/fquery`, `/info`) and the
//! PyPDNS layout (`/pdns/query`) with dribble pagination.
//!
//! Compatible with analyzer-d4-passivedns and CIRCL's service, minus their
//! bugs (`reference/cof-d4.md` §5): every rrtype is served, nothing is
//! silently cut (a cut answer says so in `x-dribble-errors`), the order is
//! deterministic (time_last descending), names are case-insensitive, only
//! strict addresses are addresses, times and counts are integers, an empty
//! answer is a 200 with an empty body, and `/info` works on an empty store.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::str::FromStr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, TypeFilter};
use dnsrecall_core::{Entry, Name, Rtype};

use crate::{ApiError, AppState};

/// Largest page a PyPDNS client may ask for.
const MAX_PAGE: usize = 10_000;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/query/{*q}", get(query))
        .route("/query/", get(empty))
        .route("/fquery/{*q}", get(fquery))
        .route("/fquery/", get(empty))
        .route("/pdns/query/{*q}", get(query))
        .route("/info", get(info))
}

/// What a query string asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Subject {
    Address(IpAddr),
    Name(Name),
}

/// Strict reading of a query: an IPv4 dotted quad or an IPv6 address is an
/// address (so `123` is a name); anything else must be a domain name.
pub fn parse_subject(text: &str) -> Result<Subject, ApiError> {
    let text = text.trim();
    if let Ok(address) = IpAddr::from_str(text) {
        return Ok(Subject::Address(address));
    }
    Name::from_presentation(text)
        .map(Subject::Name)
        .map_err(|error| ApiError::BadRequest(format!("invalid query {text:?}: {error}")))
}

async fn empty() -> Response {
    ndjson(Vec::new(), HeaderMap::new())
}

fn ndjson(body: Vec<u8>, mut headers: HeaderMap) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    (headers, body).into_response()
}

/// Collected answer with the total seen before the cap.
pub struct Collected {
    pub entries: Vec<Entry>,
    pub total: usize,
}

/// The D4 `/query` answer for `subject`, sorted, at most `cap` records.
pub fn lookup(
    store: &dyn Store,
    subject: &Subject,
    types: TypeFilter,
    cap: usize,
) -> Result<Collected, ApiError> {
    let mut collected = collect_query(store, subject, types, cap)?;
    sort_entries(&mut collected.entries);
    Ok(collected)
}

fn collect_query(
    store: &dyn Store,
    subject: &Subject,
    types: TypeFilter,
    cap: usize,
) -> Result<Collected, ApiError> {
    let mut collected = Collected {
        entries: Vec::new(),
        total: 0,
    };
    let mut visit = |entry: Entry| {
        collected.total += 1;
        if collected.entries.len() < cap {
            collected.entries.push(entry);
        }
        ControlFlow::Continue(())
    };
    match subject {
        Subject::Address(address) => {
            let query = RdataQuery::Address {
                first: *address,
                last: *address,
            };
            store.scan_rdata(&query, &mut visit)?;
        }
        Subject::Name(name) => {
            let query = RrsetQuery {
                name: NameMatch::Exact(name.clone()),
                types,
                bailiwick: None,
            };
            store.scan_rrset(&query, &mut visit)?;
        }
    }
    Ok(collected)
}

/// The old D4 expansion: names whose rdata is the subject, then every
/// record of those names.
fn collect_fquery(store: &dyn Store, subject: &Subject, cap: usize) -> Result<Collected, ApiError> {
    let mut names = BTreeSet::new();
    let mut add_name = |entry: Entry| {
        names.insert(entry.record.rrname);
        ControlFlow::Continue(())
    };
    match subject {
        Subject::Address(address) => store.scan_rdata(
            &RdataQuery::Address {
                first: *address,
                last: *address,
            },
            &mut add_name,
        )?,
        Subject::Name(name) => store.scan_rdata(
            &RdataQuery::Name {
                name: NameMatch::Exact(name.clone()),
                types: TypeFilter::All,
            },
            &mut add_name,
        )?,
    }
    let mut collected = Collected {
        entries: Vec::new(),
        total: 0,
    };
    for name in names {
        let part = collect_query(
            store,
            &Subject::Name(name),
            TypeFilter::All,
            cap.saturating_sub(collected.entries.len()),
        )?;
        collected.total += part.total;
        collected.entries.extend(part.entries);
    }
    Ok(collected)
}

/// Deterministic order: latest first, then by name, type and rdata.
fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        b.seen
            .time_last
            .cmp(&a.seen.time_last)
            .then_with(|| a.record.rrname.cmp(&b.record.rrname))
            .then_with(|| a.record.rrtype.cmp(&b.record.rrtype))
            .then_with(|| a.record.rdata.cmp(&b.record.rdata))
    });
}

/// Runs a blocking store read off the async workers.
///
/// At most one store read per core runs at a time: with a blocking thread
/// per request, 16 concurrent clients meant ~45 threads on 2 cores and a p99
/// dominated by scheduling (bench/runs/2026-11-22-vm/NOTES.md); queued
/// requests wait on the semaphore instead, cheaply.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    static READERS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let readers = READERS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _permit = readers.acquire().await.map_err(|_| ApiError::Task)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::Task)?
}

/// Dribble request headers (PyPDNS).
struct Dribble {
    page_size: Option<usize>,
    cursor: usize,
    filter: Option<Option<Rtype>>,
}

fn dribble(headers: &HeaderMap) -> Result<Dribble, ApiError> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let page_size = match get("dribble-paginate-count") {
        None => None,
        Some(text) => Some(
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("bad dribble-paginate-count {text:?}"))
                })?
                .min(MAX_PAGE),
        ),
    };
    let cursor = match get("dribble-paginate-cursor") {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("bad dribble-paginate-cursor {text:?}")))?,
    };
    // An unknown type filters everything out (PyPDNS documents an empty
    // answer, not an error).
    let filter = get("dribble-filter-rrtype").map(|text| text.parse::<Rtype>().ok());
    Ok(Dribble {
        page_size,
        cursor,
        filter,
    })
}

async fn query(
    State(state): State<AppState>,
    Path(q): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(state, q, headers, false).await
}

async fn fquery(
    State(state): State<AppState>,
    Path(q): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(state, q, headers, true).await
}

async fn answer(
    state: AppState,
    q: String,
    headers: HeaderMap,
    expand: bool,
) -> Result<Response, ApiError> {
    if q.trim().is_empty() {
        return Ok(ndjson(Vec::new(), HeaderMap::new()));
    }
    let subject = parse_subject(&q)?;
    let dribble = dribble(&headers)?;
    let types = match dribble.filter {
        None => TypeFilter::All,
        Some(Some(rtype)) => TypeFilter::Only(rtype),
        Some(None) => return Ok(ndjson(Vec::new(), HeaderMap::new())),
    };
    let cap = state.config.max_results;
    let store = state.store.clone();
    let mut collected = blocking(move || {
        store.refresh()?;
        if expand {
            collect_fquery(store.as_ref(), &subject, cap)
        } else {
            collect_query(store.as_ref(), &subject, types, cap)
        }
    })
    .await?;
    if expand {
        collected.entries.retain(|e| types.accepts(e.record.rrtype));
    }
    sort_entries(&mut collected.entries);
    let mut response_headers = HeaderMap::new();
    if collected.total > collected.entries.len() {
        let errors = serde_json::json!({ "maxset": collected.entries.len(), "total_value": collected.total });
        if let Ok(value) = HeaderValue::from_str(&errors.to_string()) {
            response_headers.insert("x-dribble-errors", value);
        }
    }
    let page: &[Entry] = match dribble.page_size {
        None => &collected.entries,
        Some(size) => {
            let start = dribble.cursor.min(collected.entries.len());
            let end = start.saturating_add(size).min(collected.entries.len());
            if end < collected.entries.len() {
                // The cursor is the offset of the next page: never 0 because
                // a page holds at least one record; absent on the last page.
                response_headers.insert("x-dribble-cursor", HeaderValue::from(end as u64));
            }
            &collected.entries[start..end]
        }
    };
    let style = CofStyle {
        origin: state.config.origin.as_deref(),
        ..CofStyle::default()
    };
    let mut body = Vec::with_capacity(page.len() * 160);
    for entry in page {
        cof::write_line(entry, &style, &mut body);
    }
    Ok(ndjson(body, response_headers))
}

async fn info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let info = blocking(move || {
        store.refresh()?;
        Ok(store.info()?)
    })
    .await?;
    let sensors: Vec<serde_json::Value> = info
        .sensors
        .iter()
        .map(|(sensor, count)| serde_json::json!({ "sensor_id": sensor, "count": count }))
        .collect();
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "software": "dnsrecall",
        "stats": info.observations,
        "sensors": sensors,
        "records": info.records_estimate,
        "disk_bytes": info.disk_bytes,
        "retention_secs": info.retention_secs,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_subjects() {
        assert!(matches!(
            parse_subject("192.0.2.1").unwrap(),
            Subject::Address(_)
        ));
        assert!(matches!(
            parse_subject("2001:DB8::1").unwrap(),
            Subject::Address(_)
        ));
        assert!(matches!(parse_subject("123").unwrap(), Subject::Name(_)));
        assert!(matches!(parse_subject("10.1").unwrap(), Subject::Name(_)));
        assert!(
            matches!(parse_subject("Example.COM.").unwrap(), Subject::Name(n) if n.to_dotless() == "example.com")
        );
        assert!(matches!(
            parse_subject("a..b"),
            Err(ApiError::BadRequest(_))
        ));
    }
}

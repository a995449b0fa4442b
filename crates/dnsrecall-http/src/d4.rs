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

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, TypeFilter};
use dnsrecall_core::{Entry, Name, Rtype};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState, ErrorBody, openapi};

/// Largest page a PyPDNS client may ask for.
const MAX_PAGE: usize = 10_000;

/// The routes of this module, each with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(Schemas::openapi())
        .routes(routes!(query_nothing))
        .routes(routes!(fquery_nothing))
        .routes(routes!(info));
    let router = openapi::rest_routes(router, routes!(query));
    let router = openapi::rest_routes(router, routes!(fquery));
    openapi::rest_routes(router, routes!(pdns_query))
}

// ---------------------------------------------------------------- documentation

/// Schemas named by [`QueryResponses`]: `routes!` collects those of
/// request and response bodies given in `#[utoipa::path]`, not those of
/// `IntoResponses` types.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(CofRecord)))]
struct Schemas;

/// One COF record (draft-dulaunoy-dnsop-passive-dns-cof) as the D4 routes
/// write it, one per line: names without the trailing dot, rdata in
/// presentation format, times in epoch seconds.
///
/// The lines are written by `dnsrecall_core::cof::write_line`; this type
/// only describes them. `deny_unknown_fields` makes the schema closed, so a
/// field added there and not here fails the schemathesis test.
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CofRecord {
    pub time_first: u64,
    pub time_last: u64,
    pub count: u64,
    pub rrtype: CofRrtype,
    #[schema(example = "www.example.com")]
    pub rrname: String,
    #[schema(example = "192.0.2.10")]
    pub rdata: String,
    /// The configured `api.origin`.
    pub origin: Option<String>,
    pub bailiwick: Option<String>,
    pub sensor_id: Option<String>,
    pub zone_time_first: Option<u64>,
    pub zone_time_last: Option<u64>,
}

/// A type mnemonic, or the number of a type without one.
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
pub enum CofRrtype {
    #[schema(example = "A")]
    Mnemonic(String),
    Number(u16),
}

/// PyPDNS dribble request headers.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct DribbleHeaders {
    /// Page size (at most 10,000): answer this many records from the
    /// cursor on; `x-dribble-cursor` names the next page.
    #[param(rename = "dribble-paginate-count", minimum = 1, nullable = false)]
    pub count: Option<u64>,
    /// Offset of the page (a previous answer's `x-dribble-cursor`).
    #[param(rename = "dribble-paginate-cursor", nullable = false)]
    pub cursor: Option<u64>,
    /// Only records of this type (an unknown type answers nothing).
    #[param(rename = "dribble-filter-rrtype", example = "AAAA", nullable = false)]
    pub rrtype: Option<String>,
}

/// Answers of `/query`, `/fquery` and `/pdns/query`.
#[derive(utoipa::IntoResponses)]
pub enum QueryResponses {
    /// COF records, one JSON object per line, latest `time_last` first;
    /// an empty body when nothing is known.
    #[response(
        status = 200,
        content_type = "application/x-ndjson",
        headers(
            ("x-dribble-cursor" = u64, description = "Offset of the next page; absent on the last page"),
            ("x-dribble-errors" = String, description = "`{\"maxset\":N,\"total_value\":M}` when the answer was cut at `api.max_results`")
        )
    )]
    Records(Vec<CofRecord>),
    /// A malformed query or dribble header.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    #[response(status = 401)]
    Unauthorized(#[to_response] Unauthorized),
    #[response(status = 500)]
    Internal(#[to_response] Internal),
    #[response(status = 503)]
    Timeout(#[to_response] Timeout),
}

/// API keys are configured and the request carries none of them.
#[derive(utoipa::ToResponse)]
#[response(
    headers(("www-authenticate" = String, description = "`Basic realm=\"dnsrecall\"`"))
)]
pub struct Unauthorized(pub ErrorBody);

/// The store failed (details in the server log, not in the answer).
#[derive(utoipa::ToResponse)]
pub struct Internal(pub ErrorBody);

/// The request took longer than `api.request_timeout_secs`.
#[derive(utoipa::ToResponse)]
pub struct Timeout;

/// The `/info` answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Info {
    /// dnsrecall's version.
    pub version: &'static str,
    /// Always `dnsrecall`.
    pub software: &'static str,
    /// Observations written since the store was created.
    pub stats: u64,
    /// Observations per sensor, highest first.
    pub sensors: Vec<SensorCount>,
    /// Estimated number of distinct records.
    pub records: u64,
    /// Bytes on disk, if known.
    pub disk_bytes: Option<u64>,
    /// Retention (`store.max_age_days`) in seconds, if set.
    pub retention_secs: Option<u64>,
}

/// Observations of one sensor.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SensorCount {
    pub sensor_id: String,
    pub count: u64,
}

// ---------------------------------------------------------------- routes

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

/// An empty query (answers nothing)
#[utoipa::path(
    get,
    path = "/query/",
    tag = "D4",
    responses(QueryResponses),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn query_nothing() -> Response {
    ndjson(Vec::new(), HeaderMap::new())
}

/// An empty query (answers nothing)
#[utoipa::path(
    get,
    path = "/fquery/",
    tag = "D4",
    responses(QueryResponses),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn fquery_nothing() -> Response {
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

/// Records of a name or an address
///
/// Every record of an owner name (all types), or every A/AAAA record whose
/// address is the query.
#[utoipa::path(
    get,
    path = "/query/{q}",
    tag = "D4",
    params(
        ("q" = String, Path, description = "A name (case-insensitive, may end in a dot) or an IPv4/IPv6 address (strict: `123` is a name)", example = "www.example.com"),
        DribbleHeaders
    ),
    responses(QueryResponses),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn query(
    State(state): State<AppState>,
    q: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(state, query_text(q)?, headers, false).await
}

/// Records of a name or an address (PyPDNS)
///
/// `/query` at the default URL of the `pypdns` client.
#[utoipa::path(
    get,
    path = "/pdns/query/{q}",
    tag = "PyPDNS",
    params(
        ("q" = String, Path, description = "A name or an address, as for `/query`", example = "www.example.com"),
        DribbleHeaders
    ),
    responses(QueryResponses),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn pdns_query(
    State(state): State<AppState>,
    q: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(state, query_text(q)?, headers, false).await
}

/// D4 expansion of a name or an address
///
/// The names whose rdata is the query, then every record of those names.
#[utoipa::path(
    get,
    path = "/fquery/{q}",
    tag = "D4",
    params(
        ("q" = String, Path, description = "A name or an address", example = "192.0.2.10"),
        DribbleHeaders
    ),
    responses(QueryResponses),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn fquery(
    State(state): State<AppState>,
    q: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(state, query_text(q)?, headers, true).await
}

/// The query path segment; one that does not decode (not UTF-8) is a 400
/// in this API's JSON, not axum's text.
fn query_text(q: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    q.map(|Path(q)| q)
        .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
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

/// Store statistics
///
/// Observation and record counts, sensors, size on disk, retention.
#[utoipa::path(
    get,
    path = "/info",
    tag = "D4",
    responses(
        (status = 200, body = Info),
        (status = 401, response = inline(Unauthorized)),
        (status = 500, response = inline(Internal)),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let info = blocking(move || {
        store.refresh()?;
        Ok(store.info()?)
    })
    .await?;
    let body = Info {
        version: env!("CARGO_PKG_VERSION"),
        software: "dnsrecall",
        stats: info.observations,
        sensors: info
            .sensors
            .into_iter()
            .map(|(sensor_id, count)| SensorCount { sensor_id, count })
            .collect(),
        records: info.records_estimate,
        disk_bytes: info.disk_bytes,
        retention_secs: info.retention_secs,
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&body).map_err(|_| ApiError::Task)?,
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

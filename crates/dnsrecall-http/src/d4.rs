//! The D4/CIRCL passive DNS routes (`/query`, `/fquery`, `/info`).
//!
//! Compatible with analyzer-d4-passivedns and CIRCL's service, minus their
//! bugs (`reference/cof-d4.md` §5): every rrtype is served, nothing is
//! silently cut (a cut answer says so in `x-dribble-errors`), the order is
//! deterministic (time_last descending), names are case-insensitive, only
//! strict addresses are addresses, times and counts are integers, an empty
//! answer is a 200 with an empty body, and `/info` works on an empty store.
//! The lookups themselves are `dnsrecall_query::d4`'s; the PyPDNS dribble
//! headers, which these routes honour too, are in [`crate::pypdns`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::Entry;
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_core::store::TypeFilter;
use dnsrecall_query::d4::{self, Subject};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::blocking::blocking;
// `metrics.rs` names the error answers from here.
pub(crate) use crate::error::{Internal, Timeout, Unauthorized};
use crate::pypdns::{DribbleHeaders, dribble};
use crate::{ApiError, AppState, ErrorBody, openapi};

/// The routes of this module, each with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(Schemas::openapi())
        .routes(routes!(query_nothing))
        .routes(routes!(fquery_nothing))
        .routes(routes!(info));
    let router = openapi::rest_routes(router, routes!(query));
    openapi::rest_routes(router, routes!(fquery))
}

//---- documentation ---------------------------------------------------------

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

//---- routes ----------------------------------------------------------------

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
pub(crate) fn query_text(q: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    q.map(|Path(q)| q)
        .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
}

/// The answer of `/query`, `/pdns/query` and (`expand`) `/fquery`: COF
/// lines, paged by the dribble headers.
pub(crate) async fn answer(
    state: AppState,
    q: String,
    headers: HeaderMap,
    expand: bool,
) -> Result<Response, ApiError> {
    if q.trim().is_empty() {
        return Ok(ndjson(Vec::new(), HeaderMap::new()));
    }
    let subject = Subject::parse(&q)?;
    let dribble = dribble(&headers)?;
    let types = match dribble.filter {
        None => TypeFilter::All,
        Some(Some(rtype)) => TypeFilter::Only(rtype),
        Some(None) => return Ok(ndjson(Vec::new(), HeaderMap::new())),
    };
    let cap = state.config.max_results;
    let store = state.store.clone();
    let collected = blocking(move || {
        store.refresh()?;
        Ok(if expand {
            d4::expand(store.as_ref(), &subject, types, cap)?
        } else {
            d4::lookup(store.as_ref(), &subject, types, cap)?
        })
    })
    .await?;
    let mut response_headers = HeaderMap::new();
    if collected.is_cut() {
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

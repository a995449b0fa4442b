//! The documented DNSDB routes: one table ([`lookups!`]) of the paths
//! below `lookup/` with their parameters, each registered as v2 lookup, v2
//! summarize and v1 lookup; `ping` and `rate_limit`; and the two generic
//! handlers ([`v2`], [`v1`]) they all run, which read the raw path.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dnsrecall_query::dnsdb::{Lookup, parse_lookup, split_path};
use tokio::sync::mpsc;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::RateLimitAnswer;
use super::saf::{self, LookupLine, Msg, SummarizeLine};
use super::{Dnsdb, Failure, json, text};

/// Every DNSDB route, documented ones first.
pub(super) fn router() -> OpenApiRouter<Dnsdb> {
    lookup_routes(OpenApiRouter::with_openapi(Schemas::openapi()))
        .routes(routes!(ping))
        .routes(routes!(rate_limit))
        .routes(routes!(v1_rate_limit))
        // The documented paths above are matched first. These catch the
        // lenient forms the generic handlers also read (empty segments, a
        // trailing slash) and answer anything else with DNSDB's text 404.
        .route("/dnsdb/v2/{*rest}", get(v2))
        .route("/dnsdb/v2", get(not_found))
        .route("/dnsdb/v2/", get(not_found))
        .route("/lookup/{*rest}", get(v1))
}

//---- documentation ---------------------------------------------------------

/// Schemas named by the `IntoResponses` types below, which `routes!` does
/// not collect.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(LookupLine, SummarizeLine)))]
struct Schemas;

/// DNSDB's path values, one percent-decoded segment each.
const OWNER: &str = "Owner name: exact, `*.example.com` (the name and every name below it), \
    `www.example.*` (names starting with these labels) or `+.example.com` (exactly one label more)";
const RRTYPE: &str =
    "A type mnemonic in any case, `TYPEnnn`, `ANY` (every type but DNSSEC) or `ANY-DNSSEC`";
const BAILIWICK: &str = "Only records with this bailiwick (the zone that served them)";
const RAW_OWNER: &str =
    "The owner name in DNS wire format, as hex (`0366736902696f00` = `fsi.io.`)";
const RDATA_NAME: &str = "A name inside rdata (NS, CNAME, MX, SRV, PTR, SOA, SVCB targets): \
    exact, `*.example.com` or `www.example.*`";
const ADDRESS: &str = "An IPv4 or IPv6 address, a prefix `ADDR,LEN` (or `ADDR/LEN`, percent-encoded), \
    or a range `FIRST-LAST` of one family";
const ADDRESS_RRTYPE: &str = "`A`, `AAAA` or `ANY`";
const RAW_RDATA: &str = "Rdata in DNS wire format, as hex (`c000020a` = the A record 192.0.2.10)";

/// Declares, for each path below `lookup/`, the three documented
/// operations that share its parameters (v2 lookup, v2 summarize, v1
/// lookup), and [`lookup_routes`] registering them. Each handler runs the
/// generic one ([`v2`], [`v1`]), which reads the raw path itself.
macro_rules! lookups {
    ($(
        $what:literal: ($lookup:ident, $summarize:ident, $legacy:ident)
            $suffix:literal, params($($param:tt)*);
    )*) => {
        $(
            #[utoipa::path(
                get,
                path = concat!("/dnsdb/v2/lookup/", $suffix),
                tag = "DNSDB v2",
                summary = concat!("Look up ", $what),
                params($($param)*, LookupQuery),
                responses(LookupAnswer, DnsdbErrors),
                security(("api_key" = []))
            )]
            async fn $lookup(
                dnsdb: State<Dnsdb>,
                raw: Query<HashMap<String, String>>,
                request: Request,
            ) -> Result<Response, Failure> {
                v2(dnsdb, raw, request).await
            }

            #[utoipa::path(
                get,
                path = concat!("/dnsdb/v2/summarize/", $suffix),
                tag = "DNSDB v2",
                summary = concat!("Summarize ", $what),
                params($($param)*, LookupQuery, SummarizeQuery),
                responses(SummarizeAnswer, DnsdbErrors),
                security(("api_key" = []))
            )]
            async fn $summarize(
                dnsdb: State<Dnsdb>,
                raw: Query<HashMap<String, String>>,
                request: Request,
            ) -> Result<Response, Failure> {
                v2(dnsdb, raw, request).await
            }

            #[utoipa::path(
                get,
                path = concat!("/lookup/", $suffix),
                tag = "DNSDB v1",
                summary = concat!("Look up ", $what, " (v1)"),
                params($($param)*, LookupQuery),
                responses(V1Answer, DnsdbErrors),
                security(("api_key" = []))
            )]
            async fn $legacy(
                dnsdb: State<Dnsdb>,
                raw: Query<HashMap<String, String>>,
                request: Request,
            ) -> Result<Response, Failure> {
                v1(dnsdb, raw, request).await
            }
        )*

        /// Registers the documented lookups.
        fn lookup_routes(router: OpenApiRouter<Dnsdb>) -> OpenApiRouter<Dnsdb> {
            router $(
                .routes(routes!($lookup))
                .routes(routes!($summarize))
                .routes(routes!($legacy))
            )*
        }
    };
}

lookups! {
    "the records of an owner name":
        (lookup_rrset_name, summarize_rrset_name, v1_lookup_rrset_name)
        "rrset/name/{owner}",
        params(("owner" = String, Path, description = OWNER, example = "www.example.com"));
    "the records of an owner name and type":
        (lookup_rrset_name_type, summarize_rrset_name_type, v1_lookup_rrset_name_type)
        "rrset/name/{owner}/{rrtype}",
        params(
            ("owner" = String, Path, description = OWNER, example = "*.example.com"),
            ("rrtype" = String, Path, description = RRTYPE, example = "A")
        );
    "the records of an owner name and type in a bailiwick":
        (lookup_rrset_name_type_bailiwick, summarize_rrset_name_type_bailiwick, v1_lookup_rrset_name_type_bailiwick)
        "rrset/name/{owner}/{rrtype}/{bailiwick}",
        params(
            ("owner" = String, Path, description = OWNER, example = "www.example.com"),
            ("rrtype" = String, Path, description = RRTYPE, example = "ANY"),
            ("bailiwick" = String, Path, description = BAILIWICK, example = "example.com")
        );
    "the records of a raw owner name":
        (lookup_rrset_raw, summarize_rrset_raw, v1_lookup_rrset_raw)
        "rrset/raw/{hex}",
        params(("hex" = String, Path, description = RAW_OWNER, pattern = "^([0-9A-Fa-f]{2})+$",
            example = "03777777076578616d706c6503636f6d00"));
    "the records of a raw owner name and type":
        (lookup_rrset_raw_type, summarize_rrset_raw_type, v1_lookup_rrset_raw_type)
        "rrset/raw/{hex}/{rrtype}",
        params(
            ("hex" = String, Path, description = RAW_OWNER, pattern = "^([0-9A-Fa-f]{2})+$",
                example = "03777777076578616d706c6503636f6d00"),
            ("rrtype" = String, Path, description = RRTYPE, example = "AAAA")
        );
    "the records whose rdata holds a name":
        (lookup_rdata_name, summarize_rdata_name, v1_lookup_rdata_name)
        "rdata/name/{name}",
        params(("name" = String, Path, description = RDATA_NAME, example = "ns1.example.com"));
    "the records of a type whose rdata holds a name":
        (lookup_rdata_name_type, summarize_rdata_name_type, v1_lookup_rdata_name_type)
        "rdata/name/{name}/{rrtype}",
        params(
            ("name" = String, Path, description = RDATA_NAME, example = "*.example.net"),
            ("rrtype" = String, Path, description = RRTYPE, example = "CNAME")
        );
    "the A/AAAA records of addresses":
        (lookup_rdata_ip, summarize_rdata_ip, v1_lookup_rdata_ip)
        "rdata/ip/{ip}",
        params(("ip" = String, Path, description = ADDRESS, example = "192.0.2.0,24"));
    "the A or AAAA records of addresses":
        (lookup_rdata_ip_type, summarize_rdata_ip_type, v1_lookup_rdata_ip_type)
        "rdata/ip/{ip}/{rrtype}",
        params(
            ("ip" = String, Path, description = ADDRESS, example = "192.0.2.10"),
            ("rrtype" = String, Path, description = ADDRESS_RRTYPE,
                pattern = "^([Aa]|[Aa]{4}|[Aa][Nn][Yy])$", example = "A")
        );
    "the records with raw rdata":
        (lookup_rdata_raw, summarize_rdata_raw, v1_lookup_rdata_raw)
        "rdata/raw/{hex}",
        params(("hex" = String, Path, description = RAW_RDATA, pattern = "^([0-9A-Fa-f]{2})+$",
            example = "c000020a"));
    "the records of a type with raw rdata":
        (lookup_rdata_raw_type, summarize_rdata_raw_type, v1_lookup_rdata_raw_type)
        "rdata/raw/{hex}/{rrtype}",
        params(
            ("hex" = String, Path, description = RAW_RDATA, pattern = "^([0-9A-Fa-f]{2})+$",
                example = "c000020a"),
            ("rrtype" = String, Path, description = RRTYPE, example = "A")
        );
}

/// Whether the server is up
///
/// Needs no key.
#[utoipa::path(
    get,
    path = "/dnsdb/v2/ping",
    tag = "DNSDB v2",
    responses(
        (status = 200, description = "`{\"ping\":\"ok\"}`", body = Ping),
        (status = 503, description = "The request took longer than `api.request_timeout_secs`")
    )
)]
async fn ping(
    dnsdb: State<Dnsdb>,
    raw: Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, Failure> {
    v2(dnsdb, raw, request).await
}

/// Quota of the key
///
/// Daily lookups and burst rate (from `api.dnsdb_keys_file`), and the
/// server's result and offset limits.
#[utoipa::path(
    get,
    path = "/dnsdb/v2/rate_limit",
    tag = "DNSDB v2",
    responses(
        (status = 200, body = RateLimitAnswer),
        (status = 403, description = "A missing or unknown `X-API-Key`", body = String, content_type = "text/plain"),
        (status = 503, description = "The request took longer than `api.request_timeout_secs`")
    ),
    security(("api_key" = []))
)]
async fn rate_limit(
    dnsdb: State<Dnsdb>,
    raw: Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, Failure> {
    v2(dnsdb, raw, request).await
}

/// Quota of the key (v1)
///
/// `rate_limit` in the v1 layout (pretty-printed JSON).
#[utoipa::path(
    get,
    path = "/lookup/rate_limit",
    tag = "DNSDB v1",
    responses(
        (status = 200, body = RateLimitAnswer),
        (status = 403, description = "A missing or unknown `X-API-Key`", body = String, content_type = "text/plain"),
        (status = 503, description = "The request took longer than `api.request_timeout_secs`")
    ),
    security(("api_key" = []))
)]
async fn v1_rate_limit(
    dnsdb: State<Dnsdb>,
    raw: Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, Failure> {
    v1(dnsdb, raw, request).await
}

/// Query parameters of lookups and summaries (§1.4); unknown ones are
/// ignored.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// Most results (default 10,000; `0` = the server's maximum,
    /// `api.dnsdb_max_results`).
    pub limit: Option<u64>,
    /// Results to skip first (at most `api.dnsdb_offset_max`, else 416).
    pub offset: Option<u64>,
    /// Only records first seen at or before this time (epoch seconds;
    /// negative: seconds before now).
    pub time_first_before: Option<i64>,
    /// Only records first seen at or after this time.
    pub time_first_after: Option<i64>,
    /// Only records last seen at or before this time.
    pub time_last_before: Option<i64>,
    /// Only records last seen at or after this time.
    pub time_last_after: Option<i64>,
    /// Accepted and ignored: rows are always aggregated.
    #[param(value_type = Option<String>, pattern = "^(t|true|True|TRUE|1|f|false|False|FALSE|0)$")]
    pub aggr: Option<bool>,
    /// Times as RFC 3339 strings instead of epoch seconds.
    #[param(value_type = Option<String>, pattern = "^(t|true|True|TRUE|1|f|false|False|FALSE|0)$")]
    pub humantime: Option<bool>,
    /// Client software name: accepted and ignored.
    pub swclient: Option<String>,
    /// Client software version: accepted and ignored.
    pub version: Option<String>,
    /// Request identifier: accepted and ignored.
    pub id: Option<String>,
}

/// The summarize-only parameter.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummarizeQuery {
    /// Stop (with `limited`) once the counts add up to this.
    #[param(minimum = 1)]
    pub max_count: Option<u64>,
}

/// The `ping` answer.
#[derive(utoipa::ToSchema)]
pub struct Ping {
    /// Always `ok`.
    pub ping: String,
}

/// A v2 lookup answer.
#[derive(utoipa::IntoResponses)]
pub enum LookupAnswer {
    /// A SAF stream, one JSON object per line: `{"cond":"begin"}`, one
    /// `{"obj":...}` per record, then `succeeded`, `limited` (the limit cut
    /// the answer) or `failed` (the scan failed after the status was
    /// sent). Nothing found is `begin` then `succeeded`.
    #[response(status = 200, content_type = "application/x-ndjson")]
    Stream(Vec<LookupLine>),
}

/// A v2 summarize answer.
#[derive(utoipa::IntoResponses)]
pub enum SummarizeAnswer {
    /// A SAF stream: `begin`, one `{"obj":...}` summary, then `succeeded`
    /// or `limited` (`limit` or `max_count` reached).
    #[response(status = 200, content_type = "application/x-ndjson")]
    Stream(Vec<SummarizeLine>),
}

/// A v1 lookup answer.
#[derive(utoipa::IntoResponses)]
pub enum V1Answer {
    /// The records as bare JSON lines, one `DnsdbRecord` per line (rdata as
    /// an array on rrset lookups, a string on rdata lookups); nothing found
    /// is a 404.
    #[response(status = 200, content_type = "application/json")]
    Lines,
}

/// DNSDB's errors: short text bodies, `Error: ...`.
#[derive(utoipa::IntoResponses)]
pub enum DnsdbErrors {
    /// A malformed path segment, value or parameter.
    #[response(status = 400, content_type = "text/plain")]
    BadRequest(String),
    /// A missing or unknown `X-API-Key`.
    #[response(status = 403, content_type = "text/plain")]
    Forbidden(String),
    /// An unknown lookup kind; in v1 also nothing found.
    #[response(status = 404, content_type = "text/plain")]
    NotFound(String),
    /// `offset` beyond `api.dnsdb_offset_max`.
    #[response(status = 416, content_type = "text/plain")]
    OffsetTooLarge(String),
    /// The key's daily quota or burst rate is used up.
    #[response(status = 429, content_type = "text/plain")]
    QuotaExceeded(String),
    /// v1: the scan failed (v2 reports it in the stream).
    #[response(status = 500, content_type = "text/plain")]
    Internal(String),
    /// The request took longer than `api.request_timeout_secs`.
    #[response(status = 503)]
    Timeout,
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Error: unknown path")
}

//---- handlers --------------------------------------------------------------

/// The raw path after `prefix`, split and decoded.
fn segments(uri: &axum::http::Uri, prefix: &str) -> Result<Vec<String>, Failure> {
    let rest = uri.path().strip_prefix(prefix).unwrap_or("");
    Ok(split_path(rest)?)
}

/// Reads a lookup (after its `lookup/` or `summarize/`) and its
/// parameters, then checks the key and charges its quota, in DNSDB's
/// order: a bad query is refused before the key is looked at.
fn admit(
    dnsdb: &Dnsdb,
    segments: &[String],
    raw: &HashMap<String, String>,
    headers: &axum::http::HeaderMap,
) -> Result<(Lookup, dnsrecall_query::Params), Failure> {
    let lookup = parse_lookup(segments)?;
    let params = dnsdb.params(raw)?;
    let key = dnsdb.authenticate(headers)?;
    dnsdb.charge(&key)?;
    Ok((lookup, params))
}

async fn v2(
    State(dnsdb): State<Dnsdb>,
    Query(raw): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, Failure> {
    let segments = segments(request.uri(), "/dnsdb/v2/")?;
    let headers = request.headers();
    let first = segments.first().map(String::as_str).unwrap_or("");
    match first {
        // The OpenAPI spec puts no key on ping.
        "ping" if segments.len() == 1 => return Ok(json(&serde_json::json!({"ping": "ok"}))),
        "rate_limit" if segments.len() == 1 => {
            let key = dnsdb.authenticate(headers)?;
            return Ok(json(&dnsdb.rate(&key)));
        }
        "lookup" | "summarize" => {}
        _ => return Err(Failure(StatusCode::NOT_FOUND, "unknown path".into())),
    }
    let (lookup, params) = admit(&dnsdb, &segments[1..], &raw, headers)?;
    let (tx, rx) = mpsc::channel(16);
    let store = dnsdb.app.store.clone();
    if first == "summarize" {
        tokio::task::spawn_blocking(move || {
            saf::run_summarize(store.as_ref(), &lookup, &params, tx)
        });
    } else {
        tokio::task::spawn_blocking(move || {
            saf::run_lookup(store.as_ref(), &lookup, &params, true, true, tx)
        });
    }
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        saf::saf_body(rx).await?,
    )
        .into_response())
}

async fn v1(
    State(dnsdb): State<Dnsdb>,
    Query(raw): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, Failure> {
    let segments = segments(request.uri(), "/lookup/")?;
    let headers = request.headers();
    if segments.len() == 1 && segments[0] == "rate_limit" {
        let key = dnsdb.authenticate(headers)?;
        let body = serde_json::to_string_pretty(&dnsdb.rate(&key)).unwrap_or_default();
        return Ok(([(header::CONTENT_TYPE, "application/json")], body + "\n").into_response());
    }
    let (lookup, params) = admit(&dnsdb, &segments, &raw, headers)?;
    let (tx, rx) = mpsc::channel::<Msg>(16);
    let store = dnsdb.app.store.clone();
    // v1: rdata is a string on rdata lookups, an array on rrset lookups.
    let rdata_array = lookup.is_rrset();
    tokio::task::spawn_blocking(move || {
        saf::run_lookup(store.as_ref(), &lookup, &params, rdata_array, false, tx)
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        saf::v1_body(rx).await?,
    )
        .into_response())
}

//! The Farsight/DomainTools DNSDB API (`reference/dnsdb.md` §1): v2 under
//! `/dnsdb/v2` with SAF framing, and the legacy v1 layout under `/lookup`.
//!
//! * Paths are split on `/` first, then each segment is percent-decoded
//!   (clients escape `*`, `:`, `/` and `,` inside values).
//! * Answers stream: the store scan runs on the blocking pool and feeds a
//!   bounded channel of encoded lines, so memory does not grow with the
//!   answer and `{"cond":"begin"}` goes out before the scan starts.
//! * Keys come in `X-API-Key`; a missing or wrong key is 403 (DNSDB's
//!   convention). Besides `api.api_keys`, `api.dnsdb_keys_file` holds
//!   SHA-256 digests of keys with optional quotas (`quota=N` lookups per UTC
//!   day, `burst=N/SECONDS`), reloaded when the file changes. Quota counters
//!   live in memory: a restart resets them.
//! * We store aggregated records only, so `aggr=false` is accepted and
//!   answers with the aggregated rows.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, StoreError, TypeFilter};
use dnsrecall_core::{Entry, Name, Rtype};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Default `limit` when a query gives none.
const DEFAULT_LIMIT: u64 = 10_000;
/// Encoded lines are sent in chunks of about this size...
const CHUNK_BYTES: usize = 16 * 1024;
/// ...or after this long, whichever comes first.
const CHUNK_MILLIS: u128 = 100;
/// A keepalive line goes out when nothing was sent for this long.
const KEEPALIVE_SECS: u64 = 10;

/// What the DNSDB handlers share: the application state plus the key file
/// and the quota counters.
#[derive(Clone)]
struct Dnsdb {
    app: AppState,
    keys: Arc<KeyRegistry>,
}

/// The DNSDB routes, with their own authentication (403, quotas), each
/// with its documentation.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let dnsdb = Dnsdb {
        app: state.clone(),
        keys: Arc::new(KeyRegistry::new(state.config.dnsdb_keys_file.clone())),
    };
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
        .with_state(dnsdb)
}

// ---------------------------------------------------------------- documentation

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

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn json(value: &impl Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A request failure with its DNSDB status code.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl Failure {
    fn bad(message: impl Into<String>) -> Failure {
        Failure(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        text(self.0, &format!("Error: {}", self.1))
    }
}

// ---------------------------------------------------------------- paths

/// Percent-decodes one path segment.
pub fn percent_decode(segment: &str) -> Result<String, String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("bad percent escape in {segment:?}"))?;
            let text = std::str::from_utf8(hex)
                .map_err(|_| format!("bad percent escape in {segment:?}"))?;
            out.push(
                u8::from_str_radix(text, 16)
                    .map_err(|_| format!("bad percent escape in {segment:?}"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("segment {segment:?} is not UTF-8"))
}

/// What a lookup path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Forward lookup; `single_label` is DNSDB's `+.name` wildcard.
    Rrset {
        query: RrsetQuery,
        single_label: Option<usize>,
    },
    /// Inverse lookup on a name inside rdata.
    RdataName { name: NameMatch, types: TypeFilter },
    /// Inverse lookup on A/AAAA addresses.
    RdataIp { first: IpAddr, last: IpAddr },
    /// Inverse lookup on exact raw rdata.
    RdataRaw { bytes: Vec<u8>, types: TypeFilter },
}

impl Lookup {
    fn is_rrset(&self) -> bool {
        matches!(self, Lookup::Rrset { .. })
    }
}

/// Parses `rrset/name/…`, `rrset/raw/…`, `rdata/{name,ip,raw}/…` (decoded
/// segments). `Err((404, _))` for an unknown kind, 400 for a bad value.
pub fn parse_lookup(segments: &[String]) -> Result<Lookup, (u16, String)> {
    let bad = |message: String| (400u16, message);
    let (Some(kind), Some(sub)) = (segments.first(), segments.get(1)) else {
        return Err((404, "unknown path".into()));
    };
    let Some(value) = segments.get(2).filter(|v| !v.is_empty()) else {
        return Err(bad("missing lookup value".into()));
    };
    let rrtype = segments
        .get(3)
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let extra = segments
        .get(4)
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    if segments.len() > 5 || (extra.is_some() && kind != "rrset") {
        return Err(bad("too many path segments".into()));
    }
    match (kind.as_str(), sub.as_str()) {
        ("rrset", "name") => {
            let types = parse_types(rrtype).map_err(bad)?;
            let bailiwick = match extra {
                None => None,
                Some(text) => Some(
                    Name::from_presentation(text)
                        .map_err(|e| bad(format!("bad bailiwick {text:?}: {e}")))?,
                ),
            };
            let (name, single_label) = parse_pattern(value).map_err(bad)?;
            Ok(Lookup::Rrset {
                query: RrsetQuery {
                    name,
                    types,
                    bailiwick,
                },
                single_label,
            })
        }
        ("rrset", "raw") => {
            if extra.is_some() {
                return Err(bad("a bailiwick may not be given with raw queries".into()));
            }
            let types = parse_types(rrtype).map_err(bad)?;
            let bytes = parse_hex(value).map_err(bad)?;
            let name = Name::from_wire(&bytes)
                .map_err(|e| bad(format!("raw owner is not a wire name: {e}")))?;
            Ok(Lookup::Rrset {
                query: RrsetQuery {
                    name: NameMatch::Exact(name),
                    types,
                    bailiwick: None,
                },
                single_label: None,
            })
        }
        ("rdata", "name") => {
            let types = parse_types(rrtype).map_err(bad)?;
            let (name, single_label) = parse_pattern(value).map_err(bad)?;
            if single_label.is_some() {
                return Err(bad("the + wildcard is supported on rrset names only".into()));
            }
            Ok(Lookup::RdataName { name, types })
        }
        ("rdata", "ip") => {
            if let Some(t) = rrtype
                && !["A", "AAAA", "ANY"]
                    .iter()
                    .any(|ok| t.eq_ignore_ascii_case(ok))
            {
                return Err(bad(format!(
                    "rrtype {t:?} is not allowed with rdata/ip (A, AAAA or ANY)"
                )));
            }
            let (first, last) = parse_address_range(value).map_err(bad)?;
            Ok(Lookup::RdataIp { first, last })
        }
        ("rdata", "raw") => {
            let types = parse_types(rrtype).map_err(bad)?;
            Ok(Lookup::RdataRaw {
                bytes: parse_hex(value).map_err(bad)?,
                types,
            })
        }
        _ => Err((404, "unknown path".into())),
    }
}

/// `ANY` (default), `ANY-DNSSEC`, a mnemonic in any case, `TYPEnnn`.
pub fn parse_types(text: Option<&str>) -> Result<TypeFilter, String> {
    let Some(text) = text else {
        return Ok(TypeFilter::AnyNonDnssec);
    };
    if text.eq_ignore_ascii_case("ANY") {
        return Ok(TypeFilter::AnyNonDnssec);
    }
    if text.eq_ignore_ascii_case("ANY-DNSSEC") {
        return Ok(TypeFilter::Dnssec);
    }
    match Rtype::from_str(text) {
        Ok(Rtype::ANY) => Ok(TypeFilter::AnyNonDnssec),
        Ok(rtype) => Ok(TypeFilter::Only(rtype)),
        Err(_) => Err(format!("unknown rrtype {text:?}")),
    }
}

/// A name with an optional wildcard: `*.example.com` (the name and below),
/// `www.example.*` (names starting with these labels), `+.example.com`
/// (exactly one label more; returns the label count wanted).
pub fn parse_pattern(text: &str) -> Result<(NameMatch, Option<usize>), String> {
    let bad = |e: dnsrecall_core::name::NameError| format!("bad name {text:?}: {e}");
    if text == "*" || text == "*." || text == "+" || text == "+." {
        return Err("a wildcard needs at least one label".into());
    }
    if let Some(rest) = text.strip_prefix("*.") {
        return Ok((
            NameMatch::Subtree(Name::from_presentation(rest).map_err(bad)?),
            None,
        ));
    }
    if let Some(rest) = text.strip_prefix("+.") {
        let name = Name::from_presentation(rest).map_err(bad)?;
        let labels = name.label_count() + 1;
        return Ok((NameMatch::Subtree(name), Some(labels)));
    }
    if let Some(rest) = text.strip_suffix(".*") {
        let name = Name::from_presentation(rest).map_err(bad)?;
        let labels = name.labels().map(|l| l.to_ascii_lowercase()).collect();
        return Ok((NameMatch::Prefix(labels), None));
    }
    if text.contains('*') && !text.contains("\\*") {
        return Err(format!(
            "bad name {text:?}: a wildcard must be the first or last label"
        ));
    }
    Ok((
        NameMatch::Exact(Name::from_presentation(text).map_err(bad)?),
        None,
    ))
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return Err(format!(
            "raw value {text:?} must be an even number of hex digits"
        ));
    }
    hex::decode(text).map_err(|_| format!("raw value {text:?} is not hex"))
}

/// `addr`, `addr,prefix` (or `addr/prefix`), `first-last`.
pub fn parse_address_range(text: &str) -> Result<(IpAddr, IpAddr), String> {
    let address = |t: &str| IpAddr::from_str(t.trim()).map_err(|_| format!("bad address {t:?}"));
    if let Some((a, b)) = text.split_once('-') {
        let (first, last) = (address(a)?, address(b)?);
        if first.is_ipv4() != last.is_ipv4() {
            return Err("a range must not mix IPv4 and IPv6".into());
        }
        if first > last {
            return Err("a range must start at its lower address".into());
        }
        return Ok((first, last));
    }
    if let Some((a, len)) = text.split_once(',').or_else(|| text.split_once('/')) {
        let base = address(a)?;
        let len: u32 = len
            .trim()
            .parse()
            .map_err(|_| format!("bad prefix length {len:?}"))?;
        return match base {
            IpAddr::V4(v4) => {
                if len > 32 {
                    return Err(format!("prefix length {len} > 32"));
                }
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                let first = u32::from(v4) & mask;
                Ok((IpAddr::V4(first.into()), IpAddr::V4((first | !mask).into())))
            }
            IpAddr::V6(v6) => {
                if len > 128 {
                    return Err(format!("prefix length {len} > 128"));
                }
                let mask = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                let first = u128::from(v6) & mask;
                Ok((IpAddr::V6(first.into()), IpAddr::V6((first | !mask).into())))
            }
        };
    }
    let single = address(text)?;
    Ok((single, single))
}

// ---------------------------------------------------------------- params

/// Query parameters (§1.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub limit: u64,
    pub offset: u64,
    pub time_first_before: Option<u64>,
    pub time_first_after: Option<u64>,
    pub time_last_before: Option<u64>,
    pub time_last_after: Option<u64>,
    pub humantime: bool,
    pub max_count: Option<u64>,
}

/// DNSDB's lenient booleans.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "t" | "true" | "True" | "TRUE" | "1" => Some(true),
        "f" | "false" | "False" | "FALSE" | "0" => Some(false),
        _ => None,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads the parameters; unknown ones are ignored.
pub fn parse_params(
    raw: &HashMap<String, String>,
    max_results: u64,
    now: u64,
) -> Result<Params, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        raw.get(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad {name} {v:?}"))
            })
            .transpose()
    };
    let time = |name: &str| -> Result<Option<u64>, String> {
        raw.get(name)
            .map(|v| {
                let t = v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("bad {name} {v:?}"))?;
                Ok(if t < 0 {
                    now.saturating_sub(t.unsigned_abs())
                } else {
                    t as u64
                })
            })
            .transpose()
    };
    let boolean = |name: &str| -> Result<Option<bool>, String> {
        raw.get(name)
            .map(|v| parse_bool(v.trim()).ok_or_else(|| format!("bad {name} {v:?}")))
            .transpose()
    };
    let limit = match number("limit")? {
        None => DEFAULT_LIMIT.min(max_results),
        Some(0) => max_results,
        Some(n) => n.min(max_results),
    };
    let _aggregated = boolean("aggr")?;
    let max_count = number("max_count")?;
    if max_count == Some(0) {
        return Err("max_count must be at least 1".into());
    }
    Ok(Params {
        limit,
        offset: number("offset")?.unwrap_or(0),
        time_first_before: time("time_first_before")?,
        time_first_after: time("time_first_after")?,
        time_last_before: time("time_last_before")?,
        time_last_after: time("time_last_after")?,
        humantime: boolean("humantime")?.unwrap_or(false),
        max_count,
    })
}

impl Params {
    /// Whether a record passes the time fences (all inclusive).
    pub fn fences(&self, entry: &Entry) -> bool {
        let (first, last) = (entry.seen.time_first, entry.seen.time_last);
        self.time_first_before.is_none_or(|t| first <= t)
            && self.time_first_after.is_none_or(|t| first >= t)
            && self.time_last_before.is_none_or(|t| last <= t)
            && self.time_last_after.is_none_or(|t| last >= t)
    }
}

// ---------------------------------------------------------------- output

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

// ---------------------------------------------------------------- scanning

/// How a scan ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    Succeeded,
    Limited(&'static str),
    Failed,
}

/// What the scanning thread sends.
enum Msg {
    Data(Bytes),
    End(End),
}

/// Runs the store scans of `lookup`, visiting matching entries in store
/// order.
pub fn scan(
    store: &dyn Store,
    lookup: &Lookup,
    visit: &mut dyn FnMut(Entry) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    match lookup {
        Lookup::Rrset {
            query,
            single_label,
        } => {
            let mut filtered = |entry: Entry| match single_label {
                Some(n) if entry.record.rrname.label_count() != *n => ControlFlow::Continue(()),
                _ => visit(entry),
            };
            store.scan_rrset(query, &mut filtered)
        }
        Lookup::RdataName { name, types } => store.scan_rdata(
            &RdataQuery::Name {
                name: name.clone(),
                types: *types,
            },
            visit,
        ),
        Lookup::RdataIp { first, last } => store.scan_rdata(
            &RdataQuery::Address {
                first: *first,
                last: *last,
            },
            visit,
        ),
        Lookup::RdataRaw { bytes, types } => {
            let stopped = std::cell::Cell::new(false);
            let mut exact = |entry: Entry| {
                if entry.record.rdata.wire() != Some(bytes.as_slice())
                    || !types.accepts(entry.record.rrtype)
                {
                    return ControlFlow::Continue(());
                }
                let flow = visit(entry);
                stopped.set(flow.is_break());
                flow
            };
            // Addresses and names inside rdata live in their own indexes.
            let address = match bytes.len() {
                4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(bytes.as_slice())
                    .ok()
                    .map(IpAddr::from),
                _ => None,
            };
            if let Some(address) = address {
                store.scan_rdata(
                    &RdataQuery::Address {
                        first: address,
                        last: address,
                    },
                    &mut exact,
                )?;
            }
            if !stopped.get()
                && let Ok(name) = Name::from_wire(bytes)
            {
                store.scan_rdata(
                    &RdataQuery::Name {
                        name: NameMatch::Exact(name),
                        types: *types,
                    },
                    &mut exact,
                )?;
            }
            if !stopped.get() {
                store.scan_rdata(
                    &RdataQuery::Raw {
                        prefix: bytes.clone(),
                        types: *types,
                    },
                    &mut exact,
                )?;
            }
            Ok(())
        }
    }
}

/// Feeds encoded lines to the channel, in chunks.
struct Sink {
    tx: mpsc::Sender<Msg>,
    buffer: Vec<u8>,
    last_send: Instant,
    gone: bool,
}

impl Sink {
    fn push(&mut self, line: &impl Serialize, wrap: bool) {
        if wrap {
            self.buffer.extend_from_slice(b"{\"obj\":");
        }
        let _ = serde_json::to_writer(&mut self.buffer, line);
        if wrap {
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
}

/// Lookup: the blocking part. Sends result lines then the end.
fn run_lookup(
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
    };
    let rrset = lookup.is_rrset();
    let mut skipped = 0u64;
    let mut sent = 0u64;
    let mut limited = false;
    let result = store.refresh().and_then(|()| {
        scan(store, lookup, &mut |entry: Entry| {
            if !params.fences(&entry) {
                sink.keepalive();
                return if sink.gone {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                };
            }
            if skipped < params.offset {
                skipped += 1;
                return ControlFlow::Continue(());
            }
            if sent >= params.limit {
                // One more row exists: the limit cut the answer.
                limited = true;
                return ControlFlow::Break(());
            }
            sent += 1;
            sink.push(
                &result_object(&entry, rrset, rdata_array, params.humantime),
                wrap,
            );
            if sink.gone {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
    });
    sink.flush();
    let end = match result {
        Err(error) => {
            tracing::error!(%error, "DNSDB lookup failed");
            End::Failed
        }
        Ok(()) if limited => End::Limited("Result limit reached"),
        Ok(()) => End::Succeeded,
    };
    let _ = sink.tx.blocking_send(Msg::End(end));
}

/// Summarize: the blocking part. One summary line then the end.
fn run_summarize(store: &dyn Store, lookup: &Lookup, params: &Params, tx: mpsc::Sender<Msg>) {
    let mut count = 0u64;
    let mut num_results = 0u64;
    let mut times: Option<(u64, u64)> = None;
    let mut zone: Option<(u64, u64)> = None;
    let mut end = End::Succeeded;
    let result = store.refresh().and_then(|()| {
        scan(store, lookup, &mut |entry: Entry| {
            if !params.fences(&entry) {
                return ControlFlow::Continue(());
            }
            if num_results >= params.limit {
                end = End::Limited("Result limit reached");
                return ControlFlow::Break(());
            }
            if params.max_count.is_some_and(|max| count >= max) {
                end = End::Limited("Max count reached");
                return ControlFlow::Break(());
            }
            num_results += 1;
            count = count.saturating_add(entry.seen.count.max(1));
            let s = &entry.seen;
            times = Some(times.map_or((s.time_first, s.time_last), |(a, b)| {
                (a.min(s.time_first), b.max(s.time_last))
            }));
            if let Some((zf, zl)) = s.zone_times {
                zone = Some(zone.map_or((zf, zl), |(a, b)| (a.min(zf), b.max(zl))));
            }
            ControlFlow::Continue(())
        })
    });
    if let Err(error) = result {
        tracing::error!(%error, "DNSDB summarize failed");
        let _ = tx.blocking_send(Msg::End(End::Failed));
        return;
    }
    let human = params.humantime;
    let summary = SummaryOut {
        count,
        num_results,
        time_first: times.map(|t| time(t.0, human)),
        time_last: times.map(|t| time(t.1, human)),
        zone_time_first: zone.map(|z| time(z.0, human)),
        zone_time_last: zone.map(|z| time(z.1, human)),
    };
    let mut line = b"{\"obj\":".to_vec();
    let _ = serde_json::to_writer(&mut line, &summary);
    line.extend_from_slice(b"}\n");
    if tx.blocking_send(Msg::Data(Bytes::from(line))).is_ok() {
        let _ = tx.blocking_send(Msg::End(end));
    }
}

fn terminator(end: &End) -> Bytes {
    Bytes::from(match end {
        End::Succeeded => "{\"cond\":\"succeeded\"}\n".to_string(),
        End::Limited(msg) => format!("{{\"cond\":\"limited\",\"msg\":\"{msg}\"}}\n"),
        End::Failed => "{\"cond\":\"failed\",\"msg\":\"internal error\"}\n".to_string(),
    })
}

/// A SAF body: `begin`, the chunks as they come, the terminator. A
/// scanning thread that dies leaves the stream without terminator, which
/// clients report as truncation.
fn saf_body(rx: mpsc::Receiver<Msg>) -> Body {
    let begin = futures::stream::once(async {
        Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{\"cond\":\"begin\"}\n"))
    });
    let rest = futures::stream::unfold(Some(rx), |state| async move {
        let mut rx = state?;
        match rx.recv().await? {
            Msg::Data(bytes) => Some((Ok(bytes), Some(rx))),
            Msg::End(end) => Some((Ok(terminator(&end)), None)),
        }
    });
    Body::from_stream(futures::StreamExt::chain(begin, rest))
}

// ---------------------------------------------------------------- handlers

/// The raw path after `prefix`, split and decoded.
fn segments(uri: &axum::http::Uri, prefix: &str) -> Result<Vec<String>, Failure> {
    let rest = uri.path().strip_prefix(prefix).unwrap_or("");
    rest.split('/')
        .map(|s| percent_decode(s).map_err(Failure::bad))
        .collect()
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
    let lookup = parse_lookup(&segments[1..]).map_err(|(code, msg)| Failure(status(code), msg))?;
    let params = dnsdb.params(&raw)?;
    let key = dnsdb.authenticate(headers)?;
    dnsdb.keys.charge(&key)?;
    let (tx, rx) = mpsc::channel(16);
    let store = dnsdb.app.store.clone();
    if first == "summarize" {
        tokio::task::spawn_blocking(move || run_summarize(store.as_ref(), &lookup, &params, tx));
    } else {
        tokio::task::spawn_blocking(move || {
            run_lookup(store.as_ref(), &lookup, &params, true, true, tx)
        });
    }
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        saf_body(rx),
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
    let lookup = parse_lookup(&segments).map_err(|(code, msg)| Failure(status(code), msg))?;
    let params = dnsdb.params(&raw)?;
    let key = dnsdb.authenticate(headers)?;
    dnsdb.keys.charge(&key)?;
    let (tx, mut rx) = mpsc::channel(16);
    let store = dnsdb.app.store.clone();
    // v1: rdata is a string on rdata lookups, an array on rrset lookups.
    let rdata_array = lookup.is_rrset();
    tokio::task::spawn_blocking(move || {
        run_lookup(store.as_ref(), &lookup, &params, rdata_array, false, tx)
    });
    // v1 says "nothing found" with a 404, so wait for the first chunk.
    let first = match rx.recv().await {
        None | Some(Msg::End(End::Failed)) => {
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
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

impl Dnsdb {
    fn params(&self, raw: &HashMap<String, String>) -> Result<Params, Failure> {
        let params =
            parse_params(raw, self.app.config.dnsdb_max_results, now()).map_err(Failure::bad)?;
        if params.offset > self.app.config.dnsdb_offset_max {
            return Err(Failure(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "offset beyond offset_max ({})",
                    self.app.config.dnsdb_offset_max
                ),
            ));
        }
        Ok(params)
    }

    /// The key's identity (its digest; empty when the API is open), or 403.
    fn authenticate(&self, headers: &HeaderMap) -> Result<String, Failure> {
        let file = self.keys.current();
        if !self.app.keys.enabled() && file.is_empty() {
            return Ok(String::new());
        }
        let denied = || Failure(StatusCode::FORBIDDEN, "missing or invalid API key".into());
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .ok_or_else(denied)?;
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        if file.contains_key(&digest) || self.app.keys.accepts(key) {
            Ok(digest)
        } else {
            Err(denied())
        }
    }

    fn rate(&self, key: &str) -> RateLimitAnswer {
        let config = &self.app.config;
        let limits = self.keys.current().get(key).copied().unwrap_or_default();
        let (reset, limit, remaining) = match limits.quota {
            Some(quota) => {
                let used = self.keys.used_today(key);
                (
                    Quota::Number(next_midnight(now())),
                    Quota::Number(quota),
                    Quota::Number(quota.saturating_sub(used)),
                )
            }
            None => (
                Quota::Text("n/a"),
                Quota::Text("unlimited"),
                Quota::Text("n/a"),
            ),
        };
        RateLimitAnswer {
            rate: RateLimit {
                reset,
                limit,
                remaining,
                burst_size: limits.burst.map(|(size, _)| size),
                burst_window: limits.burst.map(|(_, window)| window),
                results_max: config.dnsdb_max_results,
                offset_max: config.dnsdb_offset_max,
            },
        }
    }
}

/// The `rate_limit` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimitAnswer {
    pub rate: RateLimit,
}

/// A key's quota and the server's limits.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimit {
    /// When the daily quota resets (epoch seconds), `n/a` without a quota.
    pub reset: Quota,
    /// Lookups per UTC day, or `unlimited`.
    pub limit: Quota,
    /// Lookups left today, `n/a` without a quota.
    pub remaining: Quota,
    /// Lookups allowed per burst window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_size: Option<u64>,
    /// Burst window in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_window: Option<u64>,
    /// Most results one query may return.
    pub results_max: u64,
    /// Largest `offset` accepted.
    pub offset_max: u64,
}

/// A number, or a word where there is none (`n/a`, `unlimited`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Quota {
    Number(u64),
    Text(&'static str),
}

fn next_midnight(now: u64) -> u64 {
    (now / 86_400 + 1) * 86_400
}

// ---------------------------------------------------------------- keys

/// Per-key limits from the keys file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Lookups per UTC day.
    pub quota: Option<u64>,
    /// `(requests, window seconds)`.
    pub burst: Option<(u64, u64)>,
}

/// Parses a keys file: `sha256hex [quota=N] [burst=N/SECONDS]` per line,
/// `#` comments. Errors name the line.
pub fn parse_keys_file(text: &str) -> Result<HashMap<String, Limits>, String> {
    let mut keys = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", number + 1);
        let mut fields = line.split_whitespace();
        let digest = fields.next().unwrap_or("").to_ascii_lowercase();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("expected a SHA-256 digest (64 hex digits)"));
        }
        let mut limits = Limits::default();
        for field in fields {
            if let Some(n) = field.strip_prefix("quota=") {
                limits.quota = Some(n.parse().map_err(|_| bad("bad quota"))?);
            } else if let Some(burst) = field.strip_prefix("burst=") {
                let (size, window) = burst
                    .split_once('/')
                    .ok_or_else(|| bad("burst must be N/SECONDS"))?;
                let size = size.parse().map_err(|_| bad("bad burst size"))?;
                let window: u64 = window.parse().map_err(|_| bad("bad burst window"))?;
                if window == 0 {
                    return Err(bad("burst window must be at least 1 second"));
                }
                limits.burst = Some((size, window));
            } else {
                return Err(bad(&format!("unknown field {field:?}")));
            }
        }
        keys.insert(digest, limits);
    }
    Ok(keys)
}

/// Modification time and size of the keys file when last read.
type FileStamp = Option<(SystemTime, u64)>;

#[derive(Default)]
struct Usage {
    day: u64,
    used: u64,
    recent: VecDeque<u64>,
}

/// The keys file, reloaded when its modification time or size changes, and
/// the in-memory quota counters.
struct KeyRegistry {
    path: Option<PathBuf>,
    loaded: Mutex<(FileStamp, Arc<HashMap<String, Limits>>)>,
    usage: Mutex<HashMap<String, Usage>>,
}

impl KeyRegistry {
    fn new(path: Option<PathBuf>) -> KeyRegistry {
        KeyRegistry {
            path,
            loaded: Mutex::new((None, Arc::new(HashMap::new()))),
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// The current keys, reloading the file if it changed (a file that does
    /// not parse keeps the previous keys).
    fn current(&self) -> Arc<HashMap<String, Limits>> {
        let Ok(mut loaded) = self.loaded.lock() else {
            return Arc::new(HashMap::new());
        };
        let Some(path) = &self.path else {
            return loaded.1.clone();
        };
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_some() && stamp != loaded.0 {
            loaded.0 = stamp;
            match std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_keys_file(&t))
            {
                Ok(keys) => {
                    tracing::info!(file = %path.display(), keys = keys.len(), "DNSDB keys file loaded");
                    loaded.1 = Arc::new(keys);
                }
                Err(error) => {
                    tracing::error!(file = %path.display(), %error, "DNSDB keys file not loaded; keeping the previous keys")
                }
            }
        }
        loaded.1.clone()
    }

    fn used_today(&self, key: &str) -> u64 {
        let today = now() / 86_400;
        self.usage
            .lock()
            .ok()
            .and_then(|u| u.get(key).filter(|u| u.day == today).map(|u| u.used))
            .unwrap_or(0)
    }

    /// Counts one lookup against the key's quotas, or 429.
    fn charge(&self, key: &str) -> Result<(), Failure> {
        let Some(limits) = self.current().get(key).copied() else {
            return Ok(());
        };
        let Ok(mut usage) = self.usage.lock() else {
            return Ok(());
        };
        let now = now();
        let usage = usage.entry(key.to_string()).or_default();
        if usage.day != now / 86_400 {
            usage.day = now / 86_400;
            usage.used = 0;
        }
        if let Some(quota) = limits.quota
            && usage.used >= quota
        {
            return Err(Failure(
                StatusCode::TOO_MANY_REQUESTS,
                "daily quota exceeded".into(),
            ));
        }
        if let Some((size, window)) = limits.burst {
            while usage.recent.front().is_some_and(|t| *t + window <= now) {
                usage.recent.pop_front();
            }
            if usage.recent.len() as u64 >= size {
                return Err(Failure(
                    StatusCode::TOO_MANY_REQUESTS,
                    "burst quota exceeded".into(),
                ));
            }
            usage.recent.push_back(now);
        }
        usage.used += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .map(|s| percent_decode(s).unwrap())
            .collect()
    }

    #[test]
    fn paths_and_wildcards() {
        let Lookup::Rrset { query, .. } =
            parse_lookup(&segs("rrset/name/%2A.example.com/a")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            query.name,
            NameMatch::Subtree(Name::from_presentation("example.com").unwrap())
        );
        assert_eq!(query.types, TypeFilter::Only(Rtype::A));
        let Lookup::Rrset { query, .. } = parse_lookup(&segs("rrset/name/www.example.*")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            query.name,
            NameMatch::Prefix(vec![b"www".to_vec(), b"example".to_vec()])
        );
        assert_eq!(query.types, TypeFilter::AnyNonDnssec);
        let Lookup::Rrset { query, .. } =
            parse_lookup(&segs("rrset/name/a%5C.b.example/ANY-DNSSEC/example.")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            query.name,
            NameMatch::Exact(Name::from_presentation("a\\.b.example").unwrap())
        );
        assert_eq!(query.types, TypeFilter::Dnssec);
        assert!(query.bailiwick.is_some());
        assert_eq!(
            parse_lookup(&segs("rrset/raw/0366736902696f00/A/io"))
                .unwrap_err()
                .0,
            400
        );
        assert!(parse_lookup(&segs("rrset/raw/0366736902696f00/TYPE1")).is_ok());
        assert_eq!(
            parse_lookup(&segs("rrset/name/example.com/BOGUS"))
                .unwrap_err()
                .0,
            400
        );
        assert_eq!(
            parse_lookup(&segs("rdata/ip/10.0.0.1/MX")).unwrap_err().0,
            400
        );
        assert_eq!(parse_lookup(&segs("rdata/bogus/x")).unwrap_err().0, 404);
        assert_eq!(
            parse_lookup(&segs("rrset/name/a.*.com")).unwrap_err().0,
            400
        );
    }

    #[test]
    fn address_ranges() {
        let v4 = |s: &str| IpAddr::from_str(s).unwrap();
        assert_eq!(
            parse_address_range("10.0.0.0,24").unwrap(),
            (v4("10.0.0.0"), v4("10.0.0.255"))
        );
        assert_eq!(
            parse_address_range("10.1.2.3,0").unwrap(),
            (v4("0.0.0.0"), v4("255.255.255.255"))
        );
        assert_eq!(
            parse_address_range("10.1.2.3,32").unwrap(),
            (v4("10.1.2.3"), v4("10.1.2.3"))
        );
        assert_eq!(
            parse_address_range("2001:db8::1,128").unwrap(),
            (v4("2001:db8::1"), v4("2001:db8::1"))
        );
        assert_eq!(
            parse_address_range("::ffff:1.2.3.4").unwrap().0,
            v4("::ffff:1.2.3.4")
        );
        assert!(parse_address_range("::ffff:1.2.3.4").unwrap().0.is_ipv6());
        assert!(parse_address_range("10.0.0.2-10.0.0.1").is_err());
        assert!(parse_address_range("10.0.0.0,33").is_err());
        assert!(parse_address_range("10.0.0.1-::1").is_err());
    }

    #[test]
    fn params_and_keys() {
        let raw: HashMap<String, String> = [
            ("limit", "0"),
            ("aggr", "False"),
            ("time_last_after", "-100"),
            ("swclient", "x"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let params = parse_params(&raw, 1_000_000, 1_000).unwrap();
        assert_eq!(params.limit, 1_000_000);
        assert_eq!(params.time_last_after, Some(900));
        let raw: HashMap<String, String> = [("humantime".to_string(), "maybe".to_string())].into();
        assert!(parse_params(&raw, 10, 0).is_err());
        let keys = parse_keys_file(&format!(
            "# comment\n{} quota=5 burst=2/60\n",
            "ab".repeat(32)
        ))
        .unwrap();
        assert_eq!(
            keys.values().next(),
            Some(&Limits {
                quota: Some(5),
                burst: Some((2, 60))
            })
        );
        assert!(parse_keys_file("nothex").unwrap_err().starts_with("line 1"));
    }
}

//! The traffic statistics routes: dnstap-receiver's API (`GET /counters`,
//! `GET /tables`, `GET /streams`, `DELETE /reset`, with its `stream`, `n`
//! and `more` parameters, so its dashboard and scripts work unchanged) and
//! ours under `/stats/` (windows, percentiles, errors of the approximate
//! values, memory). Behind the same API keys as every other route.
//!
//! The statistics are `dnsrecall_stats::Stats`, reached through an axum
//! [`Extension`]: `serve` adds `router(state).layer(Extension(stats))`
//! when `[stats]` is enabled. Without it these routes answer 404
//! (`statistics are not enabled`). What is counted and how is the stats
//! crate's; this module reads parameters and renders its answers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dnsrecall_stats::report::ReportError;
use dnsrecall_stats::{Stats, Window};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Timeout, Unauthorized};
use crate::{AppState, ErrorBody};

/// Largest `n` accepted (a table never holds more rows than its capacity
/// anyway).
pub const MAX_N: usize = 100_000;

/// The routes of this module, each with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(counters))
        .routes(routes!(tables))
        .routes(routes!(streams))
        .routes(routes!(reset))
        .routes(routes!(stats_counters))
        .routes(routes!(stats_tables))
        .routes(routes!(stats_streams))
}

/// The Prometheus text of the statistics, for `/metrics` to append.
pub fn metrics_text(stats: Option<&Stats>) -> String {
    stats.map(Stats::prometheus).unwrap_or_default()
}

type Params = Query<HashMap<String, String>>;
type Enabled = Option<Extension<Arc<Stats>>>;

fn not_enabled() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "statistics are not enabled"})),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// dnstap-receiver's `more`: a comma-separated list added to the defaults.
fn with_more(defaults: &[String], params: &HashMap<String, String>) -> Vec<String> {
    let mut names = defaults.to_vec();
    if let Some(more) = params.get("more") {
        names.extend(more.split(',').map(str::to_string));
    }
    names
}

/// `n`, or the message of a 400.
fn parse_n(params: &HashMap<String, String>, default: usize) -> Result<usize, String> {
    match params.get("n") {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n <= MAX_N => Ok(n),
            _ => Err(format!(
                "n must be an integer from 0 to {MAX_N}, not {text:?}"
            )),
        },
    }
}

//---- dnstap-receiver's routes ----------------------------------------------

/// dnstap-receiver's query parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompatParams {
    /// A stream (dnstap identity or capture sensor); absent or unknown:
    /// all streams.
    #[param(nullable = false)]
    pub stream: Option<String>,
    /// Comma-separated names added to the configured defaults: counters
    /// (`query/a`, `response/latency0_1`, …) for `/counters`, domain tables
    /// (`<hit|length|noerror|nxdomain|servfail|refused>/<query|response>`)
    /// for `/tables`.
    #[param(nullable = false, example = "query/aaaa,response/servfail")]
    pub more: Option<String>,
    /// Rows per table (`/tables` only; default `stats.top_n`).
    #[param(nullable = false, minimum = 0, maximum = 100000)]
    pub n: Option<u64>,
}

/// Counters (dnstap-receiver)
///
/// `{"stream": …, "counters": {name: value}}` for the configured default
/// counters plus `more`. `clients` and `domains` are HyperLogLog estimates.
#[utoipa::path(
    get,
    path = "/counters",
    tag = "stats",
    params(CompatParams),
    responses(
        (status = 200, description = "Counters", body = Object,
            example = json!({"stream": null, "counters": {"clients": 3, "domains": 42, "query": 120, "response": 118, "qps": 2, "response/noerror": 100, "response/nxdomain": 18}})),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn counters(stats: Enabled, Query(params): Params) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    let names = with_more(&stats.config().default_counters, &params);
    Json(stats.compat_counters(params.get("stream").map(String::as_str), &names)).into_response()
}

/// Top tables (dnstap-receiver)
///
/// Top `n` TLDs, domains (the configured default tables plus `more`),
/// clients, rcodes and rrtypes, as `[key, count]` pairs, heaviest first.
#[utoipa::path(
    get,
    path = "/tables",
    tag = "stats",
    params(CompatParams),
    responses(
        (status = 200, description = "Tables", body = Object,
            example = json!({"stream": null, "tables": {"tlds": {"hit/query": [["query/com", 10]], "hit/response": []}, "domains": {"noerror/query": [["www.example.com.", 8]], "nxdomain/response": []}, "clients": {"hit/ip": [["192.0.2.1", 20]], "length/ip": [["192.0.2.1", 1400]]}, "rcodes": {"hit/query": [["query/noerror", 10]], "hit/response": []}, "rrtypes": {"hit/query": [["query/a", 10]], "hit/response": []}}})),
        (status = 400, description = "`n` is not an integer", body = ErrorBody),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn tables(stats: Enabled, Query(params): Params) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    let n = match parse_n(&params, stats.config().top_n) {
        Ok(n) => n,
        Err(message) => return bad_request(message),
    };
    let filters = with_more(&stats.config().default_top, &params);
    Json(stats.compat_tables(params.get("stream").map(String::as_str), n, &filters)).into_response()
}

/// Streams (dnstap-receiver)
///
/// The streams seen, in order of first sight.
#[utoipa::path(
    get,
    path = "/streams",
    tag = "stats",
    responses(
        (status = 200, description = "Stream names", body = Object,
            example = json!({"streams": ["resolver1", "resolver2"]})),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn streams(stats: Enabled) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    Json(stats.compat_streams()).into_response()
}

/// Reset (dnstap-receiver)
///
/// Forgets every counter and table (the streams stay listed).
#[utoipa::path(
    delete,
    path = "/reset",
    tag = "stats",
    responses(
        (status = 204, description = "Reset"),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn reset(stats: Enabled) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    stats.reset();
    StatusCode::NO_CONTENT.into_response()
}

//---- our routes ------------------------------------------------------------

/// Parameters of `/stats/counters` and `/stats/tables`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// A stream; absent: all streams. An unknown stream is a 404.
    #[param(nullable = false)]
    pub stream: Option<String>,
    /// `/stats/tables`: `minute` (the last 50 to 60 s), `hour` (50 to 60
    /// min) or `since_start` (default). Windows are kept for the global
    /// tables only, except the tables by bytes.
    #[param(nullable = false, example = "minute")]
    pub window: Option<String>,
    /// `/stats/tables`: rows per table (default `stats.top_n`).
    #[param(nullable = false, minimum = 0, maximum = 100000)]
    pub n: Option<u64>,
    /// `/stats/tables`: only this table (`tlds/query`,
    /// `registered_domains/query`, `qnames/query`, `qname_bytes/response`,
    /// `qnames_nxdomain/response`, `qnames_servfail/response`, `clients`,
    /// `client_bytes`, `qtypes/query`, `rcodes/response`, …).
    #[param(nullable = false, example = "qnames_nxdomain/response")]
    pub table: Option<String>,
}

fn report_error(error: ReportError) -> Response {
    let status = match error {
        ReportError::UnknownStream(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": error.to_string()}))).into_response()
}

/// Counters, rates, estimates and latency
///
/// Every counter of a stream (or of all): queries, responses, bytes,
/// transports, families, rcodes (exact), qps/rps (last second, moving 60 s
/// mean), unique clients and domains (HyperLogLog, with their relative
/// standard error, `approximate: true`), latency ranges and p50/p95/p99;
/// for all streams also the pairing table and the memory bound, plan and
/// use.
#[utoipa::path(
    get,
    path = "/stats/counters",
    tag = "stats",
    params(StatsParams),
    responses(
        (status = 200, description = "Counters", body = Object),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled, or no such stream", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn stats_counters(stats: Enabled, Query(params): Params) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    match stats.report_counters(params.get("stream").map(String::as_str)) {
        Ok(report) => Json(report).into_response(),
        Err(error) => report_error(error),
    }
}

/// Top-N tables over a window
///
/// Each table: rows `{key, count, error}` heaviest first (the true count
/// is within `[count - error, count]`), `exact`/`approximate`, the total
/// counted and `unlisted_max` (no key left out weighs more).
#[utoipa::path(
    get,
    path = "/stats/tables",
    tag = "stats",
    params(StatsParams),
    responses(
        (status = 200, description = "Tables", body = Object),
        (status = 400, description = "Unknown window or table, bad `n`, or a window not kept for a stream", body = ErrorBody),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled, or no such stream", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn stats_tables(stats: Enabled, Query(params): Params) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    let n = match parse_n(&params, stats.config().top_n) {
        Ok(n) => n,
        Err(message) => return bad_request(message),
    };
    let window = match params.get("window").map(String::as_str) {
        None => Window::SinceStart,
        Some(name) => match Window::from_name(name) {
            Some(window) => window,
            None => {
                return bad_request(format!(
                    "window must be minute, hour or since_start, not {name:?}"
                ));
            }
        },
    };
    match stats.report_tables(
        params.get("stream").map(String::as_str),
        window,
        n,
        params.get("table").map(String::as_str),
    ) {
        Ok(report) => Json(report).into_response(),
        Err(error) => report_error(error),
    }
}

/// Streams, tables and the memory plan
///
/// The streams seen, the table names `/stats/tables` knows, and how the
/// memory bound was shared out.
#[utoipa::path(
    get,
    path = "/stats/streams",
    tag = "stats",
    responses(
        (status = 200, description = "Streams and plan", body = Object),
        (status = 401, response = inline(Unauthorized)),
        (status = 404, description = "Statistics are not enabled", body = ErrorBody),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn stats_streams(stats: Enabled) -> Response {
    let Some(Extension(stats)) = stats else {
        return not_enabled();
    };
    let answer: Value = json!({
        "streams": stats.streams(),
        "tables": dnsrecall_stats::report::table_names(),
        "windows": Window::ALL.map(Window::name),
        "plan": stats.plan(),
        "used_bytes": stats.used_bytes(),
    });
    Json(answer).into_response()
}

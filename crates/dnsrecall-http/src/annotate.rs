//! `POST /annotate`: which names pointed at addresses at a given time.
//!
//! The lookup is the query engine's (`dnsrecall_query::annotate`:
//! `sightings`, `names_at`), shared with `dnsrecall annotate`:
//!
//! ```text
//! POST /annotate  {"ips": ["192.0.2.1", ...], "time": 1700000000, "max_names": 5}
//! →               {"192.0.2.1": ["www.example.com", ...], ...}
//! ```
//!
//! `time` is optional (without it every name that ever pointed at the
//! address qualifies) and so are `max_names` (default 5, at most
//! [`MAX_NAMES_CAP`]) and `slack` (seconds the sighting window is widened
//! by on both sides, default [`DEFAULT_SLACK_SECS`]). Bodies are limited to
//! [`MAX_BODY_BYTES`] and [`MAX_IPS`] addresses; anything malformed is 400.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dnsrecall_query::annotate::{names_at, sightings};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Internal, Timeout, Unauthorized};
use crate::{ApiError, AppState, ErrorBody};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most addresses in one request.
pub const MAX_IPS: usize = 10_000;
/// Names per address when the request gives no `max_names`.
pub const DEFAULT_MAX_NAMES: usize = 5;
/// Largest `max_names` accepted (keeps answers bounded: 10,000 × 100 names).
pub const MAX_NAMES_CAP: usize = 100;
pub use dnsrecall_query::annotate::DEFAULT_SLACK_SECS;

/// The batch route (behind the same authentication as the D4 routes).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(annotate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// A batch of addresses to annotate.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnotateRequest {
    /// IPv4 or IPv6 addresses (at most 10,000).
    #[schema(max_items = 10_000, example = json!(["192.0.2.10"]))]
    pub ips: Vec<String>,
    /// Epoch seconds: only names whose sighting window holds this time;
    /// without it every name that ever pointed at the address qualifies.
    #[schema(minimum = 0)]
    pub time: Option<i64>,
    /// Names per address, most recently seen first (default 5).
    #[schema(minimum = 1, maximum = 100)]
    pub max_names: Option<usize>,
    /// Seconds the sighting window is widened by on both sides (default
    /// 3600).
    pub slack: Option<u64>,
}

/// A checked request: addresses (as given, parsed) in request order,
/// time, names per address, slack.
struct Checked {
    ips: Vec<(String, IpAddr)>,
    time: Option<u64>,
    max_names: usize,
    slack: u64,
}

/// Checks a body; the addresses come back parsed, in request order.
fn parse_request(body: &[u8]) -> Result<Checked, ApiError> {
    let request: AnnotateRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("bad annotate request: {e}")))?;
    if request.ips.len() > MAX_IPS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_IPS} ips per request"
        )));
    }
    let time = match request.time {
        Some(t) if t < 0 => return Err(ApiError::BadRequest(format!("bad time {t}"))),
        Some(t) => Some(t.unsigned_abs()),
        None => None,
    };
    let max_names = request.max_names.unwrap_or(DEFAULT_MAX_NAMES);
    if max_names == 0 || max_names > MAX_NAMES_CAP {
        return Err(ApiError::BadRequest(format!(
            "max_names must be 1..={MAX_NAMES_CAP}"
        )));
    }
    let ips = request
        .ips
        .into_iter()
        .map(|text| match IpAddr::from_str(text.trim()) {
            Ok(ip) => Ok((text, ip)),
            Err(_) => Err(ApiError::BadRequest(format!("bad address {text:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checked {
        ips,
        time,
        max_names,
        slack: request.slack.unwrap_or(DEFAULT_SLACK_SECS),
    })
}

/// Names that pointed at addresses
///
/// For each address, the owner names of the A/AAAA records that pointed at
/// it at `time` (or ever), most recently seen first.
#[utoipa::path(
    post,
    path = "/annotate",
    tag = "annotate",
    request_body(content = AnnotateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Each address as given, with its names", body = BTreeMap<String, Vec<String>>,
            example = json!({"192.0.2.10": ["www.example.com"]})),
        (status = 400, description = "A malformed body, address or value, or more than 10,000 addresses", body = ErrorBody),
        (status = 401, response = inline(Unauthorized)),
        (status = 413, description = "A body over 1 MiB", body = String, content_type = "text/plain"),
        (status = 500, response = inline(Internal)),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn annotate(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let Checked {
        ips,
        time,
        max_names,
        slack,
    } = parse_request(&body)?;
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        store.refresh()?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (text, ip) in ips {
            if out.contains_key(&text) {
                continue;
            }
            let found = sightings(store.as_ref(), ip)?;
            let names = names_at(&found, time, slack, max_names);
            out.insert(text, names.iter().map(|n| n.to_string()).collect());
        }
        serde_json::to_string(&out).map_err(|_| ApiError::Task)
    })
    .await
    .map_err(|_| ApiError::Task)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks() {
        assert!(
            parse_request(br#"{"ips":["192.0.2.1","2001:db8::1"],"time":5,"max_names":2}"#).is_ok()
        );
        for bad in [
            &br#"{"ips":["nope"]}"#[..],
            br#"{"ips":"192.0.2.1"}"#,
            br#"{"ips":[],"time":-1}"#,
            br#"{"ips":[],"max_names":0}"#,
            br#"{"ips":[],"extra":1}"#,
            b"not json",
        ] {
            assert!(
                matches!(parse_request(bad), Err(ApiError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

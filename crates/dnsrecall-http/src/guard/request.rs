//! The per-request checks, as an axum middleware outside every route.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::rate::Client;
use super::{Limits, METRICS, RateLimiter, RateLimits, inc};
use crate::ApiKeys;
use crate::auth::Identity;
use crate::quota::{QuotaExceeded, QuotaLedger};

/// What the middleware needs: the limits, the buckets, the keys and users
/// (a request with an accepted key is limited per key, a verified user per
/// user, others per address) and the quota ledger (users' quotas).
pub(crate) struct Guard {
    pub limits: Limits,
    pub rate: RateLimiter,
    pub keys: Arc<ApiKeys>,
    pub quotas: Arc<QuotaLedger>,
}

impl Guard {
    pub fn new(
        limits: Limits,
        rate_limits: RateLimits,
        keys: Arc<ApiKeys>,
        quotas: Arc<QuotaLedger>,
    ) -> Guard {
        Guard {
            limits,
            rate: RateLimiter::new(rate_limits),
            keys,
            quotas,
        }
    }
}

/// A refusal: status, a one-line reason, and the connection closed after it
/// (what follows a refused head or body cannot be trusted to frame).
fn refuse(status: StatusCode, reason: &'static str) -> Response {
    let mut response = (status, format!("{reason}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The middleware: limits, then who the request is, the rate limit and the
/// user's quota, then the route (with its body read in full under the body
/// limits, and the [`Identity`] in its extensions).
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    mut request: Request,
    next: Next,
) -> Response {
    let limits = &guard.limits;

    let target = request
        .uri()
        .path_and_query()
        .map_or(request.uri().path().len(), |p| p.as_str().len());
    if target > limits.max_uri_bytes {
        inc(&METRICS.uri_too_long);
        return refuse(StatusCode::URI_TOO_LONG, "request target too long");
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > limits.max_headers || header_bytes > limits.max_header_bytes {
        inc(&METRICS.headers_too_large);
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large",
        );
    }

    // A user's password not verified lately costs an argon2 run: it is
    // charged to the address's bucket before it runs, so guessing is rate
    // limited per address (and a failed login counts there only).
    let address = address_of(&request);
    let now = Instant::now();
    let charged_address = guard.keys.needs_verification(request.headers());
    if charged_address && let Err(wait) = guard.rate.take(address, now) {
        return rate_limited(wait);
    }
    let identity = guard.keys.identify(request.headers()).await;
    let client = match &identity {
        Identity::Key(digest) => Client::Key(*digest),
        Identity::User { name, .. } => Client::User(Sha256::digest(name).into()),
        Identity::Anonymous => address,
    };
    if !(charged_address && client == address)
        && let Err(wait) = guard.rate.take(client, now)
    {
        return rate_limited(wait);
    }
    if let Identity::User {
        name,
        limits: quotas,
    } = &identity
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(exceeded) = guard.quotas.charge(&format!("user:{name}"), *quotas, now) {
            let seconds = match (exceeded, quotas.burst) {
                (QuotaExceeded::Burst, Some((_, window))) => window,
                _ => (now / 86_400 + 1) * 86_400 - now,
            };
            return too_many(
                seconds,
                match exceeded {
                    QuotaExceeded::Daily => "daily quota exceeded",
                    QuotaExceeded::Burst => "burst quota exceeded",
                },
            );
        }
    }
    request.extensions_mut().insert(identity);

    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        inc(&METRICS.body_too_large);
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let has_body = declared.is_some_and(|n| n > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(request).await;
    }

    // Read the body here, under both limits, so that no route can be held
    // by a slow or endless body.
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, limits.max_body_bytes);
    let bytes = match tokio::time::timeout(limits.body_timeout(), read).await {
        Err(_) => {
            inc(&METRICS.body_timeouts);
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            );
        }
        Ok(Err(_)) => {
            // Over the limit while streaming (chunked), or the client went away.
            inc(&METRICS.body_too_large);
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        Ok(Ok(bytes)) => bytes,
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 429 for the rate limit, with `Retry-After` in whole seconds.
fn rate_limited(wait: std::time::Duration) -> Response {
    inc(&METRICS.rate_limited);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    too_many(seconds, "rate limit exceeded")
}

/// 429 with `Retry-After: seconds`; a limited client keeps its connection.
fn too_many(seconds: u64, reason: &'static str) -> Response {
    let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, reason);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response.headers_mut().remove(header::CONNECTION);
    response
}

/// The bucket of the request's client address (for requests without
/// accepted credentials).
fn address_of(request: &Request) -> Client {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    Client::Address(canonical(address))
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

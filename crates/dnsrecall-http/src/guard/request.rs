//! The per-request checks, as an axum middleware outside every route.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::rate::Client;
use super::{Limits, METRICS, RateLimiter, RateLimits, inc};
use crate::ApiKeys;

/// What the middleware needs: the limits, the buckets and the keys (a
/// request with an accepted key is limited per key, others per address).
pub(crate) struct Guard {
    pub limits: Limits,
    pub rate: RateLimiter,
    pub keys: Arc<ApiKeys>,
}

impl Guard {
    pub fn new(limits: Limits, rate_limits: RateLimits, keys: Arc<ApiKeys>) -> Guard {
        Guard {
            limits,
            rate: RateLimiter::new(rate_limits),
            keys,
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

/// The middleware: limits, then the rate limit, then the route (with its
/// body read in full under the body limits).
pub(crate) async fn check(
    State(guard): State<Arc<Guard>>,
    request: Request,
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

    let client = client_of(&guard.keys, &request);
    if let Err(wait) = guard.rate.take(client, Instant::now()) {
        inc(&METRICS.rate_limited);
        let mut response = refuse(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        // A limited client may keep its connection.
        response.headers_mut().remove(header::CONNECTION);
        return response;
    }

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

/// The bucket a request counts against: its key's when it carries an
/// accepted one, its address's otherwise.
fn client_of(keys: &ApiKeys, request: &Request) -> Client {
    let headers = request.headers();
    if keys.enabled() && keys.authorizes(headers) {
        let credential = headers
            .get("x-api-key")
            .or_else(|| headers.get(header::AUTHORIZATION))
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        return Client::Key(Sha256::digest(credential).into());
    }
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

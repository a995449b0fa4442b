//! The request guard: limits that keep one client from exhausting the
//! server, on every route and every connection.
//!
//! * Connections ([`serve_with`], `connection.rs`): at most
//!   [`Limits::max_connections`] open (more get `503` and are closed); a
//!   request head must arrive within [`Limits::header_timeout_secs`]
//!   (slowloris: `408` when part of a request was sent, otherwise the idle
//!   connection is just closed); hyper's read buffer is bounded, so a head
//!   beyond it is refused with `431` before it is buffered.
//! * Requests (`request.rs`, a middleware [`crate::router`] puts outside
//!   every route): the URI (`414`), the header block (`431`), the body
//!   (`413` by `Content-Length` or while it streams; `408` when it is sent
//!   too slowly), and rate limits per API key or user or, for requests
//!   without accepted credentials, per client address (`429` with
//!   `Retry-After`); a user's own quotas from `api.users_file` are charged
//!   here too ([`crate::quota`]). Each request is identified once
//!   ([`crate::auth::ApiKeys::identify`]) and carries its
//!   [`crate::auth::Identity`] to the routes.
//!
//! Every refusal is counted by reason in [`GuardMetrics`], which `/metrics`
//! reports as `dnsrecall_http_refused_total{...}`-style counters.
//!
//! What this module must not know: what a route means or which API it
//! belongs to (the guard answers with plain-text bodies, the same for all).

mod connection;
mod rate;
mod request;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use connection::serve_with;
pub use rate::RateLimiter;
pub(crate) use request::{Guard, check};

//---- Limits -----------------------------------------------------------------

/// `[api.limits]`: size and time limits of every request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest request target (path and query) in bytes; longer: `414`.
    pub max_uri_bytes: usize,
    /// Largest header block (names, values and separators) in bytes;
    /// larger: `431`.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more: `431`.
    pub max_headers: usize,
    /// Largest request body in bytes; larger: `413`.
    pub max_body_bytes: usize,
    /// Seconds a client has to send a complete request head (request line
    /// and headers), and the longest a connection may sit idle between
    /// requests. Slower: `408` and the connection is closed.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request body once its head arrived;
    /// slower: `408`.
    pub body_timeout_secs: u64,
    /// Most client connections open at once; more are answered `503` and
    /// closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri_bytes: 8 << 10,
            max_header_bytes: 16 << 10,
            max_headers: 100,
            max_body_bytes: 16 << 20,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl Limits {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs.max(1))
    }

    /// hyper's read buffer: a request head that does not fit is refused
    /// (`431`) before the middleware sees it. Large enough for every head
    /// the middleware's own limits would let through.
    pub(crate) fn read_buffer_bytes(&self) -> usize {
        self.max_uri_bytes
            .saturating_add(self.max_header_bytes)
            .saturating_add(1024)
            .max(8192)
    }
}

//---- RateLimits -------------------------------------------------------------

/// `[api.rate_limits]`: token buckets per API key and per client address.
/// A rate of 0 turns that limit off (the default: an operator opening the
/// API to the network sets them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Requests per second each accepted API key, or each verified user,
    /// may make (0: unlimited).
    pub per_key_per_second: f64,
    /// Requests a key may make at once after being idle.
    pub per_key_burst: u32,
    /// Requests per second each client address may make when it presents
    /// no accepted key or user (0: unlimited).
    pub per_address_per_second: f64,
    /// Requests an address may make at once after being idle.
    pub per_address_burst: u32,
    /// Most keys and addresses tracked at once; beyond it, full buckets are
    /// forgotten first, then the oldest (counted as evictions).
    pub max_tracked: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_key_per_second: 0.0,
            per_key_burst: 20,
            per_address_per_second: 0.0,
            per_address_burst: 20,
            max_tracked: 100_000,
        }
    }
}

//---- GuardMetrics -----------------------------------------------------------

/// Refusals by reason. One set per process: the connection loop and the
/// request middleware are built at different places (the binary's serve
/// command and [`crate::router`]) and both report here, and `/metrics`
/// reads it; the counters are plain atomics, so sharing costs nothing.
#[derive(Debug, Default)]
pub struct GuardMetrics {
    pub uri_too_long: AtomicU64,
    pub headers_too_large: AtomicU64,
    pub body_too_large: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub rate_limited: AtomicU64,
    pub connections_refused: AtomicU64,
    pub idle_closed: AtomicU64,
    pub rate_evictions: AtomicU64,
}

/// The process's guard counters.
pub static METRICS: GuardMetrics = GuardMetrics {
    uri_too_long: AtomicU64::new(0),
    headers_too_large: AtomicU64::new(0),
    body_too_large: AtomicU64::new(0),
    header_timeouts: AtomicU64::new(0),
    body_timeouts: AtomicU64::new(0),
    rate_limited: AtomicU64::new(0),
    connections_refused: AtomicU64::new(0),
    idle_closed: AtomicU64::new(0),
    rate_evictions: AtomicU64::new(0),
};

pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The guard's samples for `/metrics`.
pub fn samples() -> Vec<dnsrecall_metrics::LegacySample> {
    let m = &METRICS;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    vec![
        (
            "dnsrecall_http_uri_too_long_total",
            "Requests refused with 414 (request target over api.limits.max_uri_bytes)",
            get(&m.uri_too_long),
        ),
        (
            "dnsrecall_http_headers_too_large_total",
            "Requests refused with 431 (header block or count over api.limits)",
            get(&m.headers_too_large),
        ),
        (
            "dnsrecall_http_body_too_large_total",
            "Requests refused with 413 (body over api.limits.max_body_bytes)",
            get(&m.body_too_large),
        ),
        (
            "dnsrecall_http_header_timeouts_total",
            "Requests refused with 408: head not complete within api.limits.header_timeout_secs",
            get(&m.header_timeouts),
        ),
        (
            "dnsrecall_http_body_timeouts_total",
            "Requests refused with 408: body not complete within api.limits.body_timeout_secs",
            get(&m.body_timeouts),
        ),
        (
            "dnsrecall_http_rate_limited_total",
            "Requests refused with 429 by api.rate_limits",
            get(&m.rate_limited),
        ),
        (
            "dnsrecall_http_connections_refused_total",
            "Connections refused with 503: api.limits.max_connections open",
            get(&m.connections_refused),
        ),
        (
            "dnsrecall_http_idle_closed_total",
            "Idle connections closed after api.limits.header_timeout_secs without a request",
            get(&m.idle_closed),
        ),
        (
            "dnsrecall_http_rate_evictions_total",
            "Rate-limit buckets forgotten because api.rate_limits.max_tracked were tracked",
            get(&m.rate_evictions),
        ),
    ]
}

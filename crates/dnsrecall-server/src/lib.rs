//! dnsrecall-server: the HTTP query APIs.
//!
//! It owns the routes and their compatibility rules: the D4/CIRCL COF
//! server ([`d4`]: `/query`, `/fquery`, `/info`), the PyPDNS layout with
//! dribble pagination ([`d4`]: `/pdns/query`), authentication ([`auth`]),
//! and the server loop with graceful shutdown ([`serve`]).
//!
//! It reads through the [`Store`] trait only: it knows nothing of RocksDB,
//! Redis or how records were collected.

pub mod annotate;
pub mod auth;
pub mod d4;
pub mod dnsdb;
mod error;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use dnsrecall_core::store::Store;
use tokio::net::TcpListener;

pub use auth::ApiKeys;
pub use error::ApiError;

/// Settings of the query APIs.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// `origin` written into every COF record, if set (a URI naming this
    /// server, per the COF draft).
    pub origin: Option<String>,
    /// Most records one D4/PyPDNS answer holds; beyond it the answer is cut
    /// and `x-dribble-errors` says so.
    pub max_results: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// DNSDB API: most results one query may return (`limit=0`).
    pub dnsdb_max_results: u64,
    /// DNSDB API: largest `offset` accepted (beyond: 416).
    pub dnsdb_offset_max: u64,
    /// DNSDB API: file of SHA-256 key digests with optional quotas.
    pub dnsdb_keys_file: Option<std::path::PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            origin: None,
            max_results: 100_000,
            request_timeout: Duration::from_secs(30),
            dnsdb_max_results: 1_000_000,
            dnsdb_offset_max: 3_000_000,
            dnsdb_keys_file: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ApiConfig>,
    pub keys: Arc<ApiKeys>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    d4::routes()
        .merge(annotate::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .merge(dnsdb::routes(&state))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .with_state(state)
}

/// Serves `app` on an already-bound listener until `shutdown` completes,
/// then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

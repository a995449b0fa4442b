//! dnsrecall-http: the HTTP query APIs.
//!
//! It owns the routes and their compatibility rules, one module per API:
//! the D4/CIRCL COF server ([`d4`]: `/query`, `/fquery`, `/info`), the
//! PyPDNS layout with dribble pagination ([`pypdns`]: `/pdns/query`), the
//! DNSDB API ([`dnsdb`]: routes, SAF framing, keys and quotas), flow
//! annotation ([`annotate`]: `POST /annotate`), `/metrics` ([`metrics`]);
//! authentication ([`auth`]: API keys, and the user accounts of [`users`]),
//! quotas per key and user whose daily counters survive a restart
//! ([`quota`]), errors as each API's clients expect them
//! ([`error`]), the OpenAPI document of all of them ([`openapi`]:
//! `/openapi.json`), and the server loop with graceful shutdown
//! ([`serve`]).
//!
//! What a query means and how it is answered is the query engine's
//! (`dnsrecall-query`): this crate reads requests, calls the engine on the
//! blocking pool and frames its answers. It must not know RocksDB, Redis or
//! how records were collected (it reads through the [`Store`] trait), nor
//! parse a query's grammar itself. A new route goes in its API's module
//! (e.g. a DNSDB path is one line of `dnsdb/routes.rs`'s `lookups!` table;
//! a new API is a new module merged in [`router`]).

pub mod annotate;
pub mod auth;
mod blocking;
pub mod d4;
pub mod dnsdb;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod openapi;
pub mod pypdns;
pub mod quota;
pub mod stats;
mod ui;
pub mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router};
use dnsrecall_core::store::Store;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::ApiKeys;
pub use error::{ApiError, ErrorBody};

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
    /// Size and time limits of every request ([`guard`]).
    pub limits: guard::Limits,
    /// Rate limits per key and per client address ([`guard`]).
    pub rate_limits: guard::RateLimits,
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
            limits: guard::Limits::default(),
            rate_limits: guard::RateLimits::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ApiConfig>,
    pub keys: Arc<ApiKeys>,
    /// What `/metrics` renders.
    pub metrics: Arc<dnsrecall_metrics::Registry>,
    /// Quota counters of DNSDB keys and users ([`quota`]); the binary opens
    /// it on the state file and saves it on a timer and at shutdown.
    pub quotas: Arc<quota::QuotaLedger>,
}

/// The whole HTTP application.
///
/// Every route sits behind the [`guard`] (URI, header, body and time limits,
/// rate limits), whose counters `/metrics` reports.
pub fn router(state: AppState) -> Router {
    let timeout = state.config.request_timeout;
    let guard = Arc::new(guard::Guard::new(
        state.config.limits.clone(),
        state.config.rate_limits.clone(),
        state.keys.clone(),
        state.quotas.clone(),
    ));
    state.metrics.register_samples(guard::samples);
    let quotas = state.quotas.clone();
    state.metrics.register_samples(move || quotas.samples());
    if let Some(users) = state.keys.users().cloned() {
        state.metrics.register_samples(move || users.samples());
    }
    let (router, openapi) = documented_routes(&state).split_for_parts();
    ui::mount(&state, router)
        .layer(Extension(openapi::Document::new(&openapi)))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(guard, guard::check))
        .with_state(state)
}

/// Every route with its documentation (see [`openapi`]).
fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::frame())
        .merge(d4::routes())
        .merge(pypdns::routes())
        .merge(annotate::routes())
        .merge(metrics::routes())
        .merge(stats::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .merge(dnsdb::routes(state))
        .routes(routes!(openapi::document))
}

/// The OpenAPI document [`router`] serves at `/openapi.json`.
pub fn api_document(state: &AppState) -> utoipa::openapi::OpenApi {
    documented_routes(state).into_openapi()
}

/// Serves `app` on an already-bound listener until `shutdown` completes,
/// then stops accepting and lets in-flight requests finish; connections
/// under the default [`guard::Limits`] (use [`guard::serve_with`] to pass
/// the configured ones). Sets TCP_NODELAY: answers are written in more than
/// one segment, and with Nagle's algorithm the last one waited for the
/// client's delayed ACK, ~40 ms per DNSDB lookup (found by
/// bench/dnsdb/run.sh with strace).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    guard::serve_with(listener, app, &guard::Limits::default(), shutdown).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use dnsrecall_query::testing::MemoryStore;
    use serde_json::Value;
    use tower::ServiceExt as _;

    use super::*;

    /// A store with nothing in it.
    fn state() -> AppState {
        AppState {
            store: Arc::new(MemoryStore::empty()),
            config: Arc::new(ApiConfig::default()),
            keys: Arc::new(ApiKeys::default()),
            metrics: Arc::default(),
            quotas: Arc::default(),
        }
    }

    fn document() -> Value {
        serde_json::to_value(api_document(&state())).expect("document as JSON")
    }

    /// Routes registered without documentation, on purpose: the lenient
    /// forms of documented DNSDB paths and DNSDB's text 404 for the rest.
    const UNDOCUMENTED: &[&str] = &[
        "/dnsdb/v2/{*rest}",
        "/dnsdb/v2",
        "/dnsdb/v2/",
        "/lookup/{*rest}",
    ];

    /// `routes!` registers a handler and documents it in one call; axum's
    /// plain `route` registers a path the document does not know. So every
    /// path literal given to `route` in this crate's sources must be either
    /// documented or listed in [`UNDOCUMENTED`].
    #[test]
    fn every_route_is_documented() {
        let document = document();
        let paths = document["paths"].as_object().expect("paths");
        let source_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut literal_routes = Vec::new();
        for file in source_files(&source_dir) {
            let text = std::fs::read_to_string(&file).expect("source");
            // Split so this test's own text is not taken for a call.
            for (at, pattern) in text.match_indices(concat!(".rou", "te(")) {
                let rest = text[at + pattern.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    let end = literal.find('"').expect("closing quote");
                    literal_routes.push((file.clone(), literal[..end].to_string()));
                }
            }
        }
        assert!(!literal_routes.is_empty(), "no .route calls found");
        for (file, path) in literal_routes {
            let documented = path.replace("{*", "{");
            assert!(
                paths.contains_key(&documented) || UNDOCUMENTED.contains(&path.as_str()),
                "{}: route {path} is not in the OpenAPI document",
                file.display()
            );
        }
    }

    /// Every `.rs` file under `dir`, subfolders included.
    fn source_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                files.extend(source_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        files
    }

    /// Every documented operation reaches a handler: no 404 from the
    /// router's fallback, no 405.
    #[tokio::test]
    async fn every_documented_operation_is_routed() {
        let document = document();
        let app = router(state()).fallback(|| async { StatusCode::IM_A_TEAPOT });
        let mut count = 0;
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item") {
                let uri = path
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') {
                            "x"
                        } else {
                            segment
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                let request = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&uri)
                    .body(Body::from("{\"ips\":[]}"))
                    .expect("request");
                let status = app.clone().oneshot(request).await.expect("answer").status();
                assert!(
                    status != StatusCode::IM_A_TEAPOT && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} ({uri}) is not routed: {status}"
                );
                count += 1;
            }
        }
        assert!(count > 30, "only {count} operations documented");
    }

    /// The document is OpenAPI 3.x: every operation answers something, every
    /// path parameter is declared, every `$ref` resolves.
    #[test]
    fn document_is_consistent() {
        let document = document();
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.")),
            "{}",
            document["openapi"]
        );
        assert!(document["info"]["title"].is_string());
        assert!(document["info"]["version"].is_string());
        let mut operation_ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            let template: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, operation) in item.as_object().expect("path item") {
                assert!(
                    operation_ids.insert(operation["operationId"].as_str().unwrap_or_default()),
                    "{method} {path}: duplicate operationId"
                );
                let responses = operation["responses"].as_object().expect("responses");
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: no success response"
                );
                let declared: BTreeSet<&str> = operation["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, template, "{method} {path}: path parameters");
            }
        }
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.strip_prefix('#').expect("local reference");
            assert!(
                document.pointer(pointer).is_some(),
                "unresolved $ref {reference}"
            );
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    out.push(reference.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    /// Users authenticate with HTTP Basic beside keys; a user's daily quota
    /// is charged by the guard on every route, and keys are unaffected.
    #[tokio::test]
    async fn users_and_their_quotas_through_the_router() {
        use base64::Engine as _;
        let hash = users::hash_password("pw-of-alice").expect("hash");
        let users = users::Users::from_text(&format!("alice {hash} quota=2\n")).expect("users");
        let mut state = state();
        state.keys = Arc::new(ApiKeys::new(["a-configured-key"]).with_users(Arc::new(users)));
        let app = router(state.clone());
        let status = |credentials: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            let request = Request::builder()
                .uri("/query/example.com")
                .header("authorization", format!("Basic {encoded}"))
                .body(Body::empty())
                .expect("request");
            let app = app.clone();
            async move { app.oneshot(request).await.expect("answer").status() }
        };
        assert_eq!(status("alice:wrong").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status("bob:pw-of-alice").await, StatusCode::UNAUTHORIZED);
        assert_eq!(status("alice:pw-of-alice").await, StatusCode::OK);
        assert_eq!(status("alice:pw-of-alice").await, StatusCode::OK);
        assert_eq!(
            status("alice:pw-of-alice").await,
            StatusCode::TOO_MANY_REQUESTS
        );
        for _ in 0..5 {
            assert_eq!(status("anyone:a-configured-key").await, StatusCode::OK);
        }
        let now = dnsrecall_query::dnsdb::now();
        assert_eq!(state.quotas.used_today("user:alice", now), 2);
    }

    /// `/openapi.json` serves the document, without a key.
    #[tokio::test]
    async fn document_is_served_without_a_key() {
        let mut state = state();
        state.keys = Arc::new(ApiKeys::new(["a-configured-key"]));
        let answer = router(state)
            .oneshot(
                Request::builder()
                    .uri("/openapi.json")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .expect("body");
        let served: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(served, document());
    }
}

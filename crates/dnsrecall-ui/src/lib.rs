//! dnsrecall-ui: the web UI, one more client of the query engine.
//!
//! It owns the pages an analyst uses in a browser, all server-rendered
//! from askama templates compiled into the binary, with htmx and a small
//! script (`assets/ui.js`) vendored and embedded:
//!
//! * [`view`]: the search page `GET /?q=…&type=…&after=…&before=…&strict=…`
//!   — the parsed query and its API URL, the result table (every name and
//!   address a pivot link), the SVG timeline whose brush writes the time
//!   fence, the label tree of a wildcard, the breadcrumb of pivots, and an
//!   explicit "cut at N" banner; with `format=` the same rows as an export
//!   ([`export`]). A long view streams: its rows are rendered by the scan
//!   on the blocking pool (`rows`) and sent as they are found.
//! * [`session`]: the login form that turns an API key into an HttpOnly,
//!   SameSite=Strict session cookie (the key never goes into a URL or the
//!   browser's storage).
//! * [`status`]: store size, records, sensors, ingest rate and drops per
//!   input, from the store and the `/metrics` sources.
//!
//! What a query means and which rows answer it is `dnsrecall-query`'s
//! ([`Search::parse`](dnsrecall_query::Search::parse),
//! [`dnsdb::lookup`](dnsrecall_query::dnsdb::lookup)): this crate never
//! parses a lookup or scans a store itself. It must not know RocksDB, how
//! records are collected, or the API's framing: the JSON exports are the
//! API's own answers, asked of the API router handed in [`UiState::api`],
//! so they are byte-equal to what a client of the API gets.
//!
//! `dnsrecall-http` builds a [`UiState`] from its `AppState` and merges
//! [`router`] into its own.

pub mod export;
pub mod session;
pub mod status;
pub mod view;

mod assets;
mod html;
mod rows;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use dnsrecall_core::store::Store;

/// One metrics sample: name, help text, value (as `/metrics` has them).
pub type Sample = (&'static str, &'static str, u64);

/// A source of samples, called whenever the status page is drawn.
pub type MetricsSource = Arc<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// The API keys, as the HTTP APIs check them.
pub trait Keys: Send + Sync + 'static {
    /// Whether any key is configured (none: the UI is open).
    fn enabled(&self) -> bool;
    /// Whether `key` is one of them.
    fn accepts(&self, key: &str) -> bool;
    /// Whether the request headers carry an accepted key (`X-API-Key`,
    /// `Authorization`), as the APIs accept them.
    fn authorizes(&self, headers: &HeaderMap) -> bool;
}

/// No keys: everything is open.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAccess;

impl Keys for OpenAccess {
    fn enabled(&self) -> bool {
        false
    }
    fn accepts(&self, _: &str) -> bool {
        true
    }
    fn authorizes(&self, _: &HeaderMap) -> bool {
        true
    }
}

/// What the UI needs from the server that mounts it.
#[derive(Clone)]
pub struct UiState {
    /// The passive DNS store, read through the query engine.
    pub store: Arc<dyn Store>,
    /// The same keys as the APIs.
    pub keys: Arc<dyn Keys>,
    /// The sources `/metrics` reads (status page).
    pub metrics: Vec<MetricsSource>,
    /// The API router (its state applied): `format=json` and `format=v1`
    /// exports are its answers to the equivalent DNSDB request.
    pub api: Router,
    /// Most rows an export may hold (the DNSDB API's `limit=0`).
    pub max_results: u64,
    /// `origin` written into COF exports, as the D4 API writes it.
    pub origin: Option<String>,
}

/// [`UiState`] plus what the UI keeps between requests.
#[derive(Clone)]
pub(crate) struct Ui {
    pub(crate) state: UiState,
    pub(crate) sessions: Arc<session::Sessions>,
    pub(crate) rates: Arc<status::Rates>,
}

/// The UI's routes: `/` (search, exports), `/ui/login`, `/ui/logout`,
/// `/ui/status` and `/ui/assets/*`. Pages need a key when keys are
/// configured (a session cookie or the API's headers); the login form and
/// the assets do not.
pub fn router<S: Clone + Send + Sync + 'static>(state: UiState) -> Router<S> {
    let ui = Ui {
        state,
        sessions: Arc::new(session::Sessions::default()),
        rates: Arc::new(status::Rates::default()),
    };
    let pages = Router::new()
        .route("/", get(view::page))
        .route("/ui/status", get(status::page))
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            session::require_login,
        ));
    Router::new()
        .merge(pages)
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", axum::routing::post(session::logout))
        .route("/ui/assets/{file}", get(assets::serve))
        .with_state(ui)
}

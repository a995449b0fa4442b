//! Logging in with an API key: the login form checks the key against the
//! APIs' keys and answers with a random session token in an HttpOnly,
//! SameSite=Strict cookie. The key stays on the server (in [`Sessions`]),
//! never in a URL, a page or the browser's storage; the exports forward it
//! to the API as `X-API-Key`.
//!
//! Requests that carry the APIs' own headers (`X-API-Key`, `Authorization`)
//! are let in as well, so `curl` reaches the pages and exports as it
//! reaches the APIs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::Ui;
use crate::html::{self, Theme};

/// Name of the session cookie.
pub const COOKIE: &str = "dnsrecall_session";
/// Most sessions held; beyond, the oldest is dropped (counted).
const MAX_SESSIONS: usize = 10_000;
/// A session ends this long after login.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Longest key the form accepts.
const MAX_KEY_LEN: usize = 1024;

//---- Sessions ---------------------------------------------------------------

/// Live sessions: token → the key that opened it.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    /// Sessions dropped because the table was full.
    evicted: AtomicU64,
}

struct Session {
    key: String,
    created: Instant,
}

impl Sessions {
    /// A new session for `key`; `None` if no random token could be made.
    pub fn open(&self, key: &str) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).ok()?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(t, _)| t.clone())
        {
            map.remove(&oldest);
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        map.insert(
            token.clone(),
            Session {
                key: key.to_string(),
                created: Instant::now(),
            },
        );
        Some(token)
    }

    /// The key of a live session.
    pub fn key(&self, token: &str) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let session = map.get(token)?;
        if session.created.elapsed() >= SESSION_TTL {
            map.remove(token);
            return None;
        }
        Some(session.key.clone())
    }

    /// Ends a session.
    pub fn close(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }

    /// Sessions dropped because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// A cookie's value from the request headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

//---- the key a request carries -----------------------------------------------

/// The key a request was let in with (forwarded by exports to the API);
/// empty when no keys are configured.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestKey(pub(crate) Option<String>);

/// The key in the APIs' headers: `X-API-Key`, `Authorization: Bearer KEY`
/// or a bare `Authorization: KEY` (HTTP Basic is left to the APIs).
fn header_key(headers: &HeaderMap) -> Option<String> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_string());
    }
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if authorization.starts_with("Basic ") {
        return None;
    }
    Some(
        authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization)
            .trim()
            .to_string(),
    )
}

/// Middleware: lets a request in with a session cookie or the APIs'
/// headers; sends a browser to the login form otherwise.
pub(crate) async fn require_login(
    State(ui): State<Ui>,
    mut request: Request,
    next: Next,
) -> Response {
    let keys = &ui.state.keys;
    if !keys.enabled() {
        request.extensions_mut().insert(RequestKey(None));
        return next.run(request).await;
    }
    if let Some(key) = cookie(request.headers(), COOKIE).and_then(|t| ui.sessions.key(t)) {
        request.extensions_mut().insert(RequestKey(Some(key)));
        return next.run(request).await;
    }
    if keys.authorizes(request.headers()) {
        let key = header_key(request.headers());
        request.extensions_mut().insert(RequestKey(key));
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let location = format!("/ui/login?next={}", html::encode_query(wanted));
    let mut response = Redirect::to(&location).into_response();
    // 401 for clients that do not follow redirects; browsers get the form.
    if request.headers().contains_key("x-api-key")
        || request.headers().contains_key(header::AUTHORIZATION)
    {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    response
}

//---- the login form ------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    theme: Theme,
    next: String,
    failed: bool,
    logged_in: bool,
    keys: bool,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Only a local path is a place to go back to (no `//host`, no scheme).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// `GET /ui/login`.
pub(crate) async fn login_form(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let logged_in = cookie(&headers, COOKIE).is_some_and(|t| ui.sessions.key(t).is_some());
    html::render(
        StatusCode::OK,
        &LoginPage {
            theme: Theme::of(&headers),
            next: safe_next(query.next.as_deref()),
            failed: false,
            logged_in,
            keys: ui.state.keys.enabled(),
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
    next: Option<String>,
}

/// `POST /ui/login`: a right key opens a session and goes on to `next`.
pub(crate) async fn login(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let key = form.key.trim();
    let accepted = key.len() <= MAX_KEY_LEN && ui.state.keys.accepts(key);
    if !accepted {
        return html::render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                theme: Theme::of(&headers),
                next,
                failed: true,
                logged_in: false,
                keys: ui.state.keys.enabled(),
            },
        );
    }
    let Some(token) = ui.sessions.open(key) else {
        tracing::error!("no random session token: the system's random source failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = Redirect::to(&next).into_response();
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub(crate) async fn logout(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, COOKIE) {
        ui.sessions.close(token);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_find_and_close() {
        let sessions = Sessions::default();
        let token = sessions.open("k1").expect("token");
        assert_eq!(token.len(), 64);
        assert_eq!(sessions.key(&token).as_deref(), Some("k1"));
        assert_ne!(sessions.open("k1").expect("token"), token);
        sessions.close(&token);
        assert_eq!(sessions.key(&token), None);
        assert_eq!(sessions.key("forged"), None);
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/?q=example.com")), "/?q=example.com");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; dnsrecall_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}

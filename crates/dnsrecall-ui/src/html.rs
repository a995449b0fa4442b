//! Small pieces every page uses: rendering a template into a response,
//! the theme cookie, links and times as people read them.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters kept as they are in a query-string value: enough to keep
/// `/?q=*.example.com` and `/?q=192.0.2.0/24` readable.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'*')
    .remove(b':')
    .remove(b'/');

/// A query-string value, percent-encoded (`+` and `&` included).
pub(crate) fn encode_query(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// The headers of every page: HTML, no sniffing, same-origin referrers,
/// and a Content-Security-Policy allowing only the UI's own scripts and
/// styles.
const PAGE_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    ),
];

/// A page whose body is `body` (a whole page, or one streamed in parts).
pub(crate) fn respond(status: StatusCode, body: impl IntoResponse) -> Response {
    (status, PAGE_HEADERS, body).into_response()
}

/// A rendered page; a template failure is a logged 500.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => respond(status, body),
        Err(error) => {
            tracing::error!(%error, "page template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The colour scheme asked for by the `theme` cookie (set by the toggle);
/// without it the page follows `prefers-color-scheme`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    pub(crate) fn of(headers: &HeaderMap) -> Theme {
        match crate::session::cookie(headers, "theme") {
            Some("dark") => Theme::Dark,
            Some("light") => Theme::Light,
            _ => Theme::System,
        }
    }

    /// The `data-theme` attribute value (empty: follow the system).
    pub(crate) fn attr(&self) -> &'static str {
        match self {
            Theme::System => "",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// `2024-05-01 12:34:56` (UTC).
pub(crate) fn datetime(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// RFC 3339, `2024-05-01T12:34:56Z`.
pub(crate) fn rfc3339(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.to_string())
        .unwrap_or_else(|| t.to_string())
}

/// `2024-05-01`.
pub(crate) fn date(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// A span as people say it: `3d 4h`, `5m`, `0s`.
pub(crate) fn span(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A byte count as people read it.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_search_syntax_readable() {
        assert_eq!(encode_query("*.example.com"), "*.example.com");
        assert_eq!(encode_query("192.0.2.0/24"), "192.0.2.0/24");
        assert_eq!(encode_query("+.a b&c=d"), "%2B.a%20b%26c%3Dd");
        assert_eq!(encode_query("<x>\""), "%3Cx%3E%22");
    }

    #[test]
    fn times_and_spans() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(rfc3339(86_400), "1970-01-02T00:00:00Z");
        assert_eq!(date(86_399), "1970-01-01");
        assert_eq!(span(59), "59s");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(span(2 * 3600 + 60), "2h 1m");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10), "10 B");
    }
}

//! The search page, `GET /`: one box, and every view a GET URL.
//!
//! `/?q=*.example.com&type=A&after=2024-01-01&before=-86400&strict=1&limit=1000`
//! reads `q` with [`Search::parse`], `type` with [`Search::with_type`],
//! `after`/`before`/`strict` with [`TimeFence::parse`], and runs
//! [`dnsdb::lookup`] with the page limit on the blocking pool. The rows
//! come back in store order, as the DNSDB API gives them; one more
//! matching row than the limit shows a "cut at N" banner. With `format=`
//! the same query, without the page limit, is an export ([`crate::export`]).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::store::NameMatch;
use dnsrecall_core::{Entry, Name, Rtype};
use dnsrecall_query::dnsdb::{self, End, Limit, Lookup, Params, TimeFence};
use dnsrecall_query::{QueryError, Search};
use tokio::sync::mpsc;

use crate::html::{self, Theme, encode_query};
use crate::rows::{self, TIMELINE_ROWS};
use crate::session::RequestKey;
use crate::{Ui, export};

/// Rows on a page when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: u64 = 1_000;
/// Most rows a page may show (`limit` above it is lowered).
pub const MAX_PAGE_LIMIT: u64 = 100_000;
/// How long the page waits for the lookup before it sends the head and
/// streams the rest of the rows.
const HEAD_WAIT: Duration = Duration::from_millis(150);
/// Rows held back for the head, at most (then it goes out at once).
const HEAD_ROWS: usize = 5_000;
/// Entries in the breadcrumb trail (cookie).
const TRAIL_LEN: usize = 8;
/// Longest trail cookie value kept.
const TRAIL_BYTES: usize = 2048;
/// Longest `q` accepted.
const MAX_QUERY_LEN: usize = 2048;

//---- the request ---------------------------------------------------------------

/// The page's parameters, as given (every view is a GET URL).
#[derive(Clone, Debug, Default)]
pub struct PageQuery {
    pub q: String,
    pub rrtype: String,
    pub after: String,
    pub before: String,
    pub strict: bool,
    pub limit: Option<u64>,
    pub format: Option<String>,
}

impl PageQuery {
    /// Reads the query string's pairs; unknown names are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<PageQuery, QueryError> {
        let mut query = PageQuery::default();
        for (name, value) in pairs {
            match name.as_str() {
                "q" => query.q = value.trim().to_string(),
                "type" => query.rrtype = value.trim().to_string(),
                "after" => query.after = value.trim().to_string(),
                "before" => query.before = value.trim().to_string(),
                "strict" => query.strict = dnsdb::parse_bool(value.trim()).unwrap_or(false),
                "limit" if !value.trim().is_empty() => {
                    query.limit =
                        Some(value.trim().parse().map_err(|_| QueryError::BadParameter {
                            name: "limit",
                            value: value.clone(),
                        })?)
                }
                "format" if !value.trim().is_empty() => {
                    query.format = Some(value.trim().to_ascii_lowercase())
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// The rows a page shows.
    pub fn page_limit(&self) -> u64 {
        match self.limit {
            None | Some(0) => DEFAULT_PAGE_LIMIT,
            Some(n) => n.min(MAX_PAGE_LIMIT),
        }
    }

    /// This view's URL with other parameters: `q` replaced, `format` set.
    pub fn url(&self, q: &str, format: Option<&str>) -> String {
        let mut url = format!("/?q={}", encode_query(q));
        for (name, value) in [
            ("type", self.rrtype.as_str()),
            ("after", self.after.as_str()),
            ("before", self.before.as_str()),
        ] {
            if !value.is_empty() {
                url.push_str(&format!("&{name}={}", encode_query(value)));
            }
        }
        if self.strict {
            url.push_str("&strict=1");
        }
        if let Some(limit) = self.limit
            && format.is_none()
        {
            url.push_str(&format!("&limit={limit}"));
        }
        if let Some(format) = format {
            url.push_str(&format!("&format={format}"));
        }
        url
    }

    /// A pivot: another `q` with no type (a pivot changes the subject),
    /// keeping the time fence.
    pub fn pivot(&self, q: &str) -> String {
        PageQuery {
            rrtype: String::new(),
            limit: None,
            ..self.clone()
        }
        .url(q, None)
    }
}

/// A parsed, runnable query: the search, its fence and the DNSDB
/// parameters they mean.
pub struct Prepared {
    pub search: Search,
    pub fence: TimeFence,
    /// Fences as DNSDB parameters (limit set by the caller).
    pub params: Params,
}

/// Reads the search, type and fence of a page query.
pub fn prepare(query: &PageQuery) -> Result<Prepared, QueryError> {
    if query.q.len() > MAX_QUERY_LEN {
        return Err(QueryError::BadParameter {
            name: "q",
            value: format!("{}…", &query.q[..query.q.floor_char_boundary(64)]),
        });
    }
    let search = Search::parse(&query.q)?.with_type(&query.rrtype)?;
    let fence = TimeFence::parse(
        Some(&query.after),
        Some(&query.before),
        query.strict,
        dnsdb::now(),
    )?;
    let mut params = Params::default();
    fence.apply(&mut params);
    Ok(Prepared {
        search,
        fence,
        params,
    })
}

/// The DNSDB API query string of `params` (times as epoch seconds).
pub fn api_query(params: &Params, limit: u64) -> String {
    let mut query = format!("limit={limit}");
    for (name, value) in [
        ("time_first_before", params.time_first_before),
        ("time_first_after", params.time_first_after),
        ("time_last_before", params.time_last_before),
        ("time_last_after", params.time_last_after),
    ] {
        if let Some(value) = value {
            query.push_str(&format!("&{name}={value}"));
        }
    }
    query
}

//---- the page -------------------------------------------------------------------

/// A piece of a cell: text, a link when it names something to pivot to.
pub struct Piece {
    pub text: String,
    pub href: Option<String>,
    /// A second, smaller link after it (an address's /24, a name's
    /// "shared" rdata search).
    pub extra: Option<(String, String, String)>,
}

impl Piece {
    fn text(text: impl Into<String>) -> Piece {
        Piece {
            text: text.into(),
            href: None,
            extra: None,
        }
    }
}

/// One result row.
pub struct Row {
    pub first: String,
    pub first_iso: String,
    pub last: String,
    pub last_iso: String,
    pub duration: String,
    pub count: u64,
    pub rrname: String,
    pub rrname_href: String,
    pub rrtype: String,
    pub rdata: Vec<Piece>,
    pub bailiwick: Option<(String, String)>,
    pub sensor: String,
}

/// A label of the wildcard tree: a name one label below the base, with
/// what was found under it.
pub struct Branch {
    pub name: String,
    pub href: String,
    pub subtree_href: String,
    pub rows: u64,
    pub names: u64,
    pub count: u64,
    pub first: String,
    pub last: String,
}

/// One crumb of the trail of pivots.
pub struct Crumb {
    pub q: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
pub(crate) struct SearchPage {
    pub theme: Theme,
    pub query: PageQuery,
    pub logged_in: bool,
    /// The parsed query in words.
    pub description: String,
    pub fence_text: String,
    pub api_url: String,
    pub curl: String,
    pub error: Option<String>,
    /// A streamed view's search failed after its head went out.
    pub failure: Option<String>,
    /// The rows, rendered (`templates/rows.html`).
    pub rows_html: String,
    /// Rows in the view (a streamed page's head: so far).
    pub total_rows: u64,
    /// The rows follow the head as they are found; the summary, cut
    /// notice and label tree come after them.
    pub streamed: bool,
    pub cut: Option<u64>,
    pub limit: u64,
    pub exports: Vec<(&'static str, String)>,
    pub more_href: String,
    pub timeline: Option<crate::view::Timeline>,
    pub tree: Vec<Branch>,
    /// Branches not shown (beyond the busiest 200).
    pub tree_hidden: usize,
    pub tree_base: String,
    pub trail: Vec<Crumb>,
    pub presets: Vec<(&'static str, String)>,
    pub summary: Option<String>,
}

/// `GET /`: the search page, or with `format=` an export.
///
/// The lookup runs on the blocking pool ([`rows::spawn`]). The page waits
/// up to [`HEAD_WAIT`] for it: a lookup that ends by then (a name's view)
/// is one page, with its summary, cut notice and label tree above the
/// rows; a longer one is streamed (`stream`): the head and the rows so far
/// go out at once, the rest of the rows as the scan finds them, and the
/// summary, cut notice and label tree after the table.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(key): Extension<RequestKey>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let theme = Theme::of(&headers);
    let logged_in = key.0.is_some() && ui.state.keys.enabled();
    let query = match PageQuery::from_pairs(&pairs) {
        Ok(query) => query,
        Err(error) => {
            return error_page(theme, logged_in, PageQuery::default(), &error);
        }
    };
    if let Some(format) = query.format.clone() {
        return export::export(&ui, &key, &query, &format).await;
    }
    if query.q.is_empty() {
        return html::render(
            StatusCode::OK,
            &empty_page(theme, logged_in, query, &headers),
        );
    }
    let prepared = match prepare(&query) {
        Ok(prepared) => prepared,
        Err(error) => return error_page(theme, logged_in, query, &error),
    };
    let limit = query.page_limit();
    let mut params = prepared.params.clone();
    params.limit = limit;
    let mut scan = rows::spawn(
        ui.state.store.clone(),
        prepared.search.lookup.clone(),
        params,
        query.clone(),
    );

    // The head: what comes before the deadline.
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    let mut head = rows::Batch::default();
    let mut ended = None;
    while ended.is_none() && head.rows < HEAD_ROWS {
        match tokio::time::timeout_at(deadline, scan.recv()).await {
            Ok(Some(rows::Message::Batch(batch))) => {
                head.html.push_str(&batch.html);
                head.rows += batch.rows;
                head.entries.extend(batch.entries);
            }
            Ok(Some(rows::Message::End(end))) => ended = Some(end),
            Ok(None) => {
                tracing::error!("search task ended without an answer");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Err(_) => break,
        }
    }
    let ending = match ended {
        Some(Err(error)) => return error_page(theme, logged_in, query, &error),
        Some(Ok(ending)) => Some(ending),
        None => None,
    };
    let trail = trail(&headers, &query);
    let mut page = SearchPage {
        theme,
        logged_in,
        description: prepared.search.description(),
        fence_text: fence_text(&prepared.fence),
        api_url: format!(
            "/dnsdb/v2/lookup/{}?{}",
            prepared.search.api_path(),
            api_query(&prepared.params, limit)
        ),
        curl: format!(
            "curl -H 'X-API-Key: …' 'http://HOST/dnsdb/v2/lookup/{}?{}'",
            prepared.search.api_path(),
            api_query(&prepared.params, 0)
        ),
        error: None,
        failure: None,
        summary: None,
        timeline: Timeline::of(
            &head.entries,
            ending.as_ref().map(|e| e.outcome.rows),
            &query,
            &prepared.fence,
        ),
        tree_base: tree_base(&prepared.search.lookup),
        tree: Vec::new(),
        tree_hidden: 0,
        rows_html: std::mem::take(&mut head.html),
        total_rows: head.rows as u64,
        streamed: ending.is_none(),
        cut: None,
        limit,
        exports: exports(&query),
        more_href: PageQuery {
            limit: Some((limit * 10).min(MAX_PAGE_LIMIT)),
            ..query.clone()
        }
        .url(&query.q, None),
        presets: presets(&query),
        trail: trail.0,
        query,
    };
    let mut response = match ending {
        Some(ending) => {
            page.end(ending);
            html::render(StatusCode::OK, &page)
        }
        None => stream(page, scan),
    };
    if let Ok(value) = HeaderValue::from_str(&trail.1) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Where a streamed page's later rows go: the head is rendered up to it,
/// the tail from it.
const MORE_ROWS: &str = "<!--dnsrecall:more-rows-->";

impl SearchPage {
    /// Fills in what the whole view's rows say.
    fn end(&mut self, ending: rows::Ending) {
        self.cut = match ending.outcome.end {
            End::Limited(Limit::Results(n)) => Some(n),
            _ => None,
        };
        self.total_rows = ending.totals.rows();
        self.summary = ending.totals.text(self.cut.is_some());
        (self.tree, self.tree_hidden) = ending.tree.branches(&self.query);
    }

    /// The page rendered and cut at [`MORE_ROWS`]: what comes before it,
    /// or what follows it.
    fn part(&self, before: bool) -> Option<String> {
        let page = self
            .render()
            .map_err(|error| tracing::error!(%error, "page template failed"))
            .ok()?;
        let at = page.find(MORE_ROWS)?;
        Some(if before {
            page[..at].to_string()
        } else {
            page[at + MORE_ROWS.len()..].to_string()
        })
    }
}

/// A streamed page: the head with the rows so far, then each batch of rows
/// as the scan sends it, then the tail (the end of the table, the summary,
/// the cut notice and the label tree, or what went wrong).
fn stream(mut page: SearchPage, scan: mpsc::Receiver<rows::Message>) -> Response {
    let Some(head) = page.part(true) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // The tail is cut from a second rendering: its top is not sent.
    page.rows_html.clear();
    page.timeline = None;
    enum Next {
        Head(String, Tail),
        Rows(Tail),
        Done,
    }
    struct Tail {
        page: SearchPage,
        scan: mpsc::Receiver<rows::Message>,
        rows: u64,
    }
    let rows = page.total_rows;
    let start = Next::Head(head, Tail { page, scan, rows });
    let chunks = futures::stream::unfold(start, |next| async move {
        let (text, next) = match next {
            Next::Head(head, tail) => (head, Next::Rows(tail)),
            Next::Rows(mut tail) => match tail.scan.recv().await {
                Some(rows::Message::Batch(batch)) => {
                    tail.rows += batch.rows as u64;
                    (batch.html, Next::Rows(tail))
                }
                Some(rows::Message::End(Ok(ending))) => {
                    tail.page.end(ending);
                    (tail.page.part(false).unwrap_or_default(), Next::Done)
                }
                ended => {
                    let why = match ended {
                        Some(rows::Message::End(Err(QueryError::Store(error)))) => {
                            tracing::error!(%error, "search failed");
                            "internal error".to_string()
                        }
                        Some(rows::Message::End(Err(error))) => error.to_string(),
                        _ => {
                            tracing::error!("search task ended without an answer");
                            "internal error".to_string()
                        }
                    };
                    tail.page.failure = Some(format!(
                        "The search stopped after {} rows: {why}. The rows above are not all the records that match.",
                        tail.rows
                    ));
                    tail.page.total_rows = tail.rows;
                    (tail.page.part(false).unwrap_or_default(), Next::Done)
                }
            },
            Next::Done => return None,
        };
        Some((Ok::<_, Infallible>(Bytes::from(text)), next))
    });
    html::respond(StatusCode::OK, Body::from_stream(chunks))
}

fn empty_page(theme: Theme, logged_in: bool, query: PageQuery, headers: &HeaderMap) -> SearchPage {
    SearchPage {
        theme,
        logged_in,
        description: String::new(),
        fence_text: String::new(),
        api_url: String::new(),
        curl: String::new(),
        error: None,
        failure: None,
        rows_html: String::new(),
        total_rows: 0,
        streamed: false,
        cut: None,
        limit: query.page_limit(),
        exports: Vec::new(),
        more_href: String::new(),
        timeline: None,
        tree: Vec::new(),
        tree_hidden: 0,
        tree_base: String::new(),
        trail: trail_of(headers)
            .into_iter()
            .map(|q| Crumb {
                href: query.pivot(&q),
                q,
                current: false,
            })
            .collect(),
        presets: Vec::new(),
        summary: None,
        query,
    }
}

/// A query the engine refused: the page with the reason, 400 (a store
/// failure: 500, logged, no details).
fn error_page(theme: Theme, logged_in: bool, query: PageQuery, error: &QueryError) -> Response {
    let (status, text) = match error {
        QueryError::Store(_) => {
            tracing::error!(%error, "search failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_string(),
            )
        }
        _ => (StatusCode::BAD_REQUEST, error.to_string()),
    };
    let mut page = empty_page(theme, logged_in, query, &HeaderMap::new());
    page.error = Some(text);
    html::render(status, &page)
}

fn fence_text(fence: &TimeFence) -> String {
    let mode = if fence.strict { "strict" } else { "loose" };
    match (fence.after, fence.before) {
        (None, None) => "any time".to_string(),
        (Some(a), None) => format!("seen after {} ({mode})", html::datetime(a)),
        (None, Some(b)) => format!("seen before {} ({mode})", html::datetime(b)),
        (Some(a), Some(b)) => format!(
            "seen between {} and {} ({mode})",
            html::datetime(a),
            html::datetime(b)
        ),
    }
}

fn exports(query: &PageQuery) -> Vec<(&'static str, String)> {
    export::FORMATS
        .iter()
        .map(|(format, label)| (*label, query.url(&query.q, Some(format))))
        .collect()
}

fn presets(query: &PageQuery) -> Vec<(&'static str, String)> {
    [
        ("24 h", "-86400"),
        ("7 d", "-604800"),
        ("30 d", "-2592000"),
        ("1 y", "-31536000"),
    ]
    .into_iter()
    .map(|(label, after)| {
        (
            label,
            PageQuery {
                after: after.to_string(),
                before: String::new(),
                ..query.clone()
            }
            .url(&query.q, None),
        )
    })
    .chain(std::iter::once((
        "any time",
        PageQuery {
            after: String::new(),
            before: String::new(),
            ..query.clone()
        }
        .url(&query.q, None),
    )))
    .collect()
}

//---- rows and pivots ---------------------------------------------------------------

/// The search text of a name (no trailing dot; root as `.`).
pub(crate) fn name_q(name: &Name) -> String {
    if name.is_root() {
        ".".to_string()
    } else {
        name.to_dotless()
    }
}

pub(crate) fn row(entry: &Entry, query: &PageQuery) -> Row {
    let record = &entry.record;
    let seen = &entry.seen;
    let rrname = name_q(&record.rrname);
    Row {
        first: html::datetime(seen.time_first),
        first_iso: html::rfc3339(seen.time_first),
        last: html::datetime(seen.time_last),
        last_iso: html::rfc3339(seen.time_last),
        duration: html::span(seen.time_last.saturating_sub(seen.time_first)),
        count: seen.count.max(1),
        rrname_href: query.pivot(&rrname),
        rrname: record.rrname.to_fqdn(),
        rrtype: record.rrtype.to_string(),
        rdata: rdata_pieces(record.rrtype, &record.rdata_text(), query),
        bailiwick: record
            .bailiwick
            .as_ref()
            .map(|zone| (zone.to_fqdn(), query.pivot(&format!("*.{}", name_q(zone))))),
        sensor: seen.sensor_id.as_deref().unwrap_or("").to_string(),
    }
}

/// An address's /24 (IPv4) or /48 (IPv6).
fn network_of(text: &str) -> Option<String> {
    match text.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// rdata split into pieces, with the names and addresses in it linked:
/// an address to its own view (and its network), a name to its view (and
/// to the records that share it in their rdata).
fn rdata_pieces(rrtype: Rtype, text: &str, query: &PageQuery) -> Vec<Piece> {
    let name_piece = |token: &str| -> Piece {
        let bare = token.strip_suffix('.').unwrap_or(token);
        if bare.is_empty() || bare.contains('"') {
            return Piece::text(token);
        }
        Piece {
            text: token.to_string(),
            href: Some(query.pivot(bare)),
            extra: Some((
                "shared".to_string(),
                query.pivot(&format!("rdata:{bare}")),
                format!("records whose rdata names {bare}"),
            )),
        }
    };
    // Which whitespace-separated tokens of the presentation form are names.
    let name_tokens: &[usize] = match rrtype.to_string().as_str() {
        "A" | "AAAA" => {
            return match network_of(text) {
                Some(network) => vec![Piece {
                    text: text.to_string(),
                    href: Some(query.pivot(text)),
                    extra: Some((
                        network
                            .rsplit('/')
                            .next()
                            .map(|l| format!("/{l}"))
                            .unwrap_or_default(),
                        query.pivot(&network),
                        format!("records in {network}"),
                    )),
                }],
                None => vec![Piece::text(text)],
            };
        }
        "NS" | "CNAME" | "PTR" | "DNAME" => &[0],
        "MX" | "KX" | "AFSDB" | "RT" => &[1],
        "SRV" => &[3],
        "SOA" => &[0, 1],
        "NAPTR" => &[5],
        "SVCB" | "HTTPS" => &[1],
        _ => &[],
    };
    if name_tokens.is_empty() {
        return vec![Piece::text(text)];
    }
    let tokens: Vec<&str> = text.split(' ').collect();
    let mut pieces = Vec::with_capacity(tokens.len() * 2);
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            pieces.push(Piece::text(" "));
        }
        if name_tokens.contains(&i) {
            pieces.push(name_piece(token));
        } else {
            pieces.push(Piece::text(*token));
        }
    }
    pieces
}

//---- wildcard browse ---------------------------------------------------------------

fn tree_base(lookup: &Lookup) -> String {
    match lookup {
        Lookup::Rrset { query, .. } => match &query.name {
            NameMatch::Subtree(base) => format!("*.{}", name_q(base)),
            NameMatch::Prefix(labels) => {
                let mut text = String::new();
                for label in labels {
                    dnsrecall_core::name::write_label(label, &mut text);
                    text.push('.');
                }
                text.push('*');
                text
            }
            NameMatch::Exact(_) => String::new(),
        },
        _ => String::new(),
    }
}

//---- breadcrumb ------------------------------------------------------------------

fn trail_of(headers: &HeaderMap) -> Vec<String> {
    crate::session::cookie(headers, "dnsrecall_trail")
        .map(|value| {
            value
                .split('|')
                .filter_map(|q| {
                    percent_encoding::percent_decode_str(q)
                        .decode_utf8()
                        .ok()
                        .map(|q| q.into_owned())
                })
                .filter(|q| !q.is_empty())
                .take(TRAIL_LEN)
                .collect()
        })
        .unwrap_or_default()
}

/// The breadcrumb with this view's `q` at its end (going back to a crumb
/// cuts what followed it), and the cookie that remembers it.
fn trail(headers: &HeaderMap, query: &PageQuery) -> (Vec<Crumb>, String) {
    let mut qs = trail_of(headers);
    if let Some(at) = qs.iter().position(|q| *q == query.q) {
        qs.truncate(at);
    }
    qs.push(query.q.clone());
    while qs.len() > TRAIL_LEN {
        qs.remove(0);
    }
    let mut value: String = qs
        .iter()
        .map(|q| encode_query(q).replace('|', "%7C"))
        .collect::<Vec<_>>()
        .join("|");
    if value.len() > TRAIL_BYTES {
        value = encode_query(&query.q);
        qs = vec![query.q.clone()];
    }
    let cookie = format!("dnsrecall_trail={value}; Path=/; HttpOnly; SameSite=Strict");
    let last = qs.len() - 1;
    let crumbs = qs
        .into_iter()
        .enumerate()
        .map(|(i, q)| Crumb {
            href: query.pivot(&q),
            q,
            current: i == last,
        })
        .collect();
    (crumbs, cookie)
}

//---- timeline ------------------------------------------------------------------------

/// Width of the timeline's drawing, in SVG units.
const TIMELINE_WIDTH: f64 = 1000.0;
const TIMELINE_LEFT: f64 = 60.0;
const TIMELINE_RIGHT: f64 = 990.0;
const LANE: f64 = 14.0;
const AXIS: f64 = 28.0;

/// The SVG timeline: one bar per record from first to last seen, heavier
/// by count, a dot for a single sighting, lanes grouped by type; the
/// brush (`assets/ui.js`) maps a drag back to times with `t0`/`t1`.
pub struct Timeline {
    pub t0: u64,
    pub t1: u64,
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    /// x, label, text-anchor.
    pub ticks: Vec<(f64, String, &'static str)>,
    pub left: f64,
    pub right: f64,
    /// The current fence, shaded.
    pub fence: Option<(f64, f64)>,
    /// Rows not drawn (beyond [`TIMELINE_ROWS`]); none when the rest of
    /// the view was still being read (a streamed page).
    pub hidden: Option<u64>,
    /// The URL the brush starts from (`after`/`before` replaced by it).
    pub base_url: String,
    pub lanes: Vec<(f64, String)>,
}

pub struct Bar {
    pub x1: f64,
    pub x2: f64,
    pub y: f64,
    pub weight: f64,
    pub dot: bool,
    pub title: String,
    pub row: usize,
}

impl Timeline {
    /// The timeline of a view's first rows (`entries`), of `total` rows
    /// in all when that is known.
    fn of(
        entries: &[Entry],
        total: Option<u64>,
        query: &PageQuery,
        fence: &TimeFence,
    ) -> Option<Timeline> {
        if entries.is_empty() {
            return None;
        }
        let shown = &entries[..entries.len().min(TIMELINE_ROWS)];
        let t0 = shown.iter().map(|e| e.seen.time_first).min()?;
        let mut t1 = shown.iter().map(|e| e.seen.time_last).max()?;
        if t1 <= t0 {
            t1 = t0 + 3600;
        }
        let x = |t: u64| {
            TIMELINE_LEFT
                + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64
                    * (TIMELINE_RIGHT - TIMELINE_LEFT)
        };
        let mut order: Vec<usize> = (0..shown.len()).collect();
        order.sort_by_key(|&i| (shown[i].record.rrtype.to_string(), shown[i].seen.time_first));
        let mut bars = Vec::with_capacity(order.len());
        let mut lanes = Vec::new();
        let mut current_type = String::new();
        for (lane, &i) in order.iter().enumerate() {
            let entry = &shown[i];
            let y = AXIS + lane as f64 * LANE + LANE / 2.0;
            let rrtype = entry.record.rrtype.to_string();
            if rrtype != current_type {
                lanes.push((y - LANE / 2.0, rrtype.clone()));
                current_type = rrtype.clone();
            }
            let count = entry.seen.count.max(1);
            let x1 = x(entry.seen.time_first);
            let x2 = x(entry.seen.time_last);
            bars.push(Bar {
                x1,
                x2: x2.max(x1 + 1.0),
                y,
                weight: (2.0 + (count as f64).log10() * 2.0).min(10.0),
                dot: entry.seen.time_first == entry.seen.time_last,
                title: format!(
                    "{} {} {}: {} → {}, {} sightings",
                    entry.record.rrname,
                    rrtype,
                    entry.record.rdata_text(),
                    html::datetime(entry.seen.time_first),
                    html::datetime(entry.seen.time_last),
                    count
                ),
                row: i,
            });
        }
        let ticks = (0..=4)
            .map(|k| {
                let t = t0 + (t1 - t0) / 4 * k;
                let anchor = match k {
                    0 => "start",
                    4 => "end",
                    _ => "middle",
                };
                (x(t), html::date(t), anchor)
            })
            .collect();
        let fence_box = fence.is_set().then(|| {
            let a = fence.after.map_or(TIMELINE_LEFT, |t| x(t.max(t0).min(t1)));
            let b = fence
                .before
                .map_or(TIMELINE_RIGHT, |t| x(t.max(t0).min(t1)));
            (a, (b - a).max(0.0))
        });
        Some(Timeline {
            t0,
            t1,
            width: TIMELINE_WIDTH,
            left: TIMELINE_LEFT,
            right: TIMELINE_RIGHT,
            height: AXIS + bars.len() as f64 * LANE + 6.0,
            bars,
            ticks,
            fence: fence_box,
            hidden: total.map(|total| total.saturating_sub(shown.len() as u64)),
            base_url: PageQuery {
                after: String::new(),
                before: String::new(),
                ..query.clone()
            }
            .url(&query.q, None),
            lanes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> PageQuery {
        PageQuery {
            q: q.to_string(),
            ..PageQuery::default()
        }
    }

    #[test]
    fn urls_keep_the_view_and_pivots_drop_the_type() {
        let q = PageQuery {
            rrtype: "A".into(),
            after: "-86400".into(),
            strict: true,
            limit: Some(50),
            ..query("*.example.com")
        };
        assert_eq!(
            q.url("*.example.com", None),
            "/?q=*.example.com&type=A&after=-86400&strict=1&limit=50"
        );
        assert_eq!(
            q.url("*.example.com", Some("csv")),
            "/?q=*.example.com&type=A&after=-86400&strict=1&format=csv"
        );
        assert_eq!(q.pivot("192.0.2.1"), "/?q=192.0.2.1&after=-86400&strict=1");
    }

    #[test]
    fn reads_parameters() {
        let pairs: Vec<(String, String)> = [
            ("q", " www.example.com "),
            ("type", "A"),
            ("strict", "true"),
            ("limit", "20"),
            ("format", "CSV"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let q = PageQuery::from_pairs(&pairs).expect("query");
        assert_eq!(q.q, "www.example.com");
        assert!(q.strict);
        assert_eq!(q.page_limit(), 20);
        assert_eq!(q.format.as_deref(), Some("csv"));
        let bad = [("limit".to_string(), "x".to_string())];
        assert!(PageQuery::from_pairs(&bad).is_err());
    }

    #[test]
    fn api_query_carries_the_fence() {
        let prepared = prepare(&PageQuery {
            after: "100".into(),
            before: "200".into(),
            ..query("example.com")
        })
        .expect("prepared");
        assert_eq!(
            api_query(&prepared.params, 0),
            "limit=0&time_first_before=200&time_last_after=100"
        );
        let strict = prepare(&PageQuery {
            after: "100".into(),
            strict: true,
            ..query("example.com")
        })
        .expect("prepared");
        assert_eq!(api_query(&strict.params, 5), "limit=5&time_first_after=100");
    }

    #[test]
    fn rdata_names_and_addresses_are_linked() {
        let q = query("x");
        let mx = rdata_pieces(Rtype::MX, "10 mail.example.net.", &q);
        let linked: Vec<_> = mx.iter().filter_map(|p| p.href.as_deref()).collect();
        assert_eq!(linked, ["/?q=mail.example.net"]);
        let a = rdata_pieces(Rtype::A, "192.0.2.7", &q);
        assert_eq!(a[0].href.as_deref(), Some("/?q=192.0.2.7"));
        assert_eq!(
            a[0].extra.as_ref().map(|e| e.1.as_str()),
            Some("/?q=192.0.2.0/24")
        );
        let txt = rdata_pieces(Rtype::TXT, "\"<script>\"", &q);
        assert!(txt.iter().all(|p| p.href.is_none()));
    }
}

//! HTML-level tests of the web UI, through the whole HTTP application
//! (`dnsrecall_http::router`, which mounts the UI beside the APIs) over the
//! query engine's vector store (the RocksDB store runs under the browser
//! tests, `tests/browser/`): the rows of a page equal the DNSDB API's answer to
//! the same query, every name and address is a pivot link that works,
//! `format=` exports are byte-equal to the API, hostile names and TXT
//! rdata are rendered as text, and the login cookie guards the pages as
//! the keys guard the APIs.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_http::{ApiConfig, ApiKeys, AppState};
use dnsrecall_query::Search;
use scraper::{Html, Selector};
use serde_json::Value;
use tower::ServiceExt as _;

/// The query engine's store over a vector, which follows the `Store`
/// contract plainly (its own unit tests' store, shared through its
/// `testing` feature rather than written again).
use dnsrecall_query::testing;

const HOSTILE_TXT: &str = "\"<script>alert('txt')</script>\"";

fn entry(name: &str, rrtype: Rtype, rdata: &str, first: u64, last: u64, count: u64) -> Entry {
    Entry {
        record: Record {
            rrname: Name::from_presentation(name).expect("name"),
            rrtype,
            bailiwick: Some(Name::from_presentation("example.com").expect("zone")),
            rdata: Rdata::from_text_lenient(rrtype, rdata),
        },
        seen: Seen {
            time_first: first,
            time_last: last,
            count,
            zone_times: None,
            sensor_id: Some(Arc::from("sensor-1")),
        },
    }
}

/// The fixture: a small zone with addresses, names in rdata, a TXT with a
/// script and a name whose label is markup.
fn fixture() -> Vec<Entry> {
    let day = 86_400;
    let t = 1_700_000_000;
    let mut hostile = entry("x.example.com", Rtype::A, "192.0.2.66", t, t + day, 3);
    hostile.record.rrname =
        Name::from_labels([&b"<img src=x onerror=alert(1)>"[..], b"example", b"com"])
            .expect("name");
    vec![
        entry(
            "www.example.com",
            Rtype::A,
            "192.0.2.1",
            t,
            t + 30 * day,
            120,
        ),
        entry(
            "www.example.com",
            Rtype::A,
            "192.0.2.2",
            t + 10 * day,
            t + 40 * day,
            40,
        ),
        entry(
            "www.example.com",
            Rtype::AAAA,
            "2001:db8::1",
            t + 5 * day,
            t + 6 * day,
            2,
        ),
        entry("mail.example.com", Rtype::A, "192.0.2.25", t, t, 1),
        entry(
            "example.com",
            Rtype::MX,
            "10 mail.example.com.",
            t,
            t + 50 * day,
            9,
        ),
        entry(
            "example.com",
            Rtype::NS,
            "ns1.example.net.",
            t,
            t + 60 * day,
            70,
        ),
        entry(
            "alias.example.com",
            Rtype::CNAME,
            "www.example.com.",
            t + day,
            t + 2 * day,
            5,
        ),
        entry("txt.example.com", Rtype::TXT, HOSTILE_TXT, t, t + day, 1),
        entry(
            "www.example.net",
            Rtype::A,
            "198.51.100.7",
            t,
            t + 3 * day,
            4,
        ),
        hostile,
    ]
}

struct App {
    router: Router,
}

fn app_with_keys(keys: &[&str]) -> App {
    let store = testing::MemoryStore::new(fixture());
    let metrics = Arc::new(dnsrecall_metrics::Registry::default());
    metrics.register_samples(|| {
        vec![
            ("dnsrecall_dnstap_frames_total", "Frames read.", 1234),
            ("dnsrecall_dnstap_dropped_total", "Frames dropped.", 7),
            ("dnsrecall_ingest_dnstap_entries_total", "Entries.", 500),
            ("dnsrecall_pipeline_in_total", "Entries in.", 99),
        ]
    });
    let state = AppState {
        store: Arc::new(store),
        config: Arc::new(ApiConfig::default()),
        keys: Arc::new(ApiKeys::new(keys.iter().copied())),
        metrics,
        quotas: Default::default(),
    };
    App {
        router: dnsrecall_http::router(state),
    }
}

fn app() -> App {
    app_with_keys(&[])
}

#[tokio::test]
async fn a_store_failure_is_a_500_without_details() {
    let state = AppState {
        store: Arc::new(testing::FailingStore),
        config: Arc::new(ApiConfig::default()),
        keys: Arc::new(ApiKeys::default()),
        metrics: Arc::new(dnsrecall_metrics::Registry::default()),
        quotas: Default::default(),
    };
    let app = App {
        router: dnsrecall_http::router(state),
    };
    let page = get(&app, "/?q=www.example.com").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = page.text();
    assert!(body.contains("internal error"), "{body}");
    assert!(
        !body.contains("disk on fire"),
        "store details stay in the log"
    );
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
    fn html(&self) -> Html {
        Html::parse_document(&self.text())
    }
}

async fn get_with(app: &App, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(app: &App, uri: &str) -> Answer {
    get_with(app, uri, &[]).await
}

fn sel(css: &str) -> Selector {
    Selector::parse(css).expect("selector")
}

/// The rows of a result page: rrname, rrtype, rdata, count, first, last
/// (epoch seconds).
fn page_rows(html: &Html) -> Vec<(String, String, String, u64, u64, u64)> {
    let row = sel("#results tbody tr");
    let cell = sel("td");
    let time = sel("time");
    html.select(&row)
        .map(|tr| {
            let cells: Vec<_> = tr.select(&cell).collect();
            let text = |i: usize| cells[i].text().collect::<String>();
            let epoch = |i: usize| {
                let iso = cells[i]
                    .select(&time)
                    .next()
                    .and_then(|t| t.value().attr("datetime"))
                    .expect("time");
                iso.parse::<jiff::Timestamp>()
                    .expect("rfc 3339")
                    .as_second() as u64
            };
            (
                text(4),
                text(5),
                text(6),
                text(3).parse().expect("count"),
                epoch(0),
                epoch(1),
            )
        })
        .collect()
}

/// The rows of a SAF answer that succeeded, in the same shape.
fn saf_rows(body: &str) -> Vec<(String, String, String, u64, u64, u64)> {
    saf_rows_ending(body, "succeeded")
}

/// The rows of a SAF answer ending with `cond`.
fn saf_rows_ending(body: &str, cond: &str) -> Vec<(String, String, String, u64, u64, u64)> {
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("SAF line"))
        .collect();
    assert_eq!(
        lines.first().map(|l| &l["cond"]),
        Some(&Value::from("begin"))
    );
    assert_eq!(
        lines.last().map(|l| &l["cond"]),
        Some(&Value::from(cond)),
        "{body}"
    );
    lines
        .iter()
        .filter_map(|l| l.get("obj"))
        .map(|o| {
            (
                o["rrname"].as_str().expect("rrname").to_string(),
                o["rrtype"].as_str().expect("rrtype").to_string(),
                o["rdata"][0].as_str().expect("rdata").to_string(),
                o["count"].as_u64().expect("count"),
                o["time_first"].as_u64().expect("first"),
                o["time_last"].as_u64().expect("last"),
            )
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "www.example.com",
    "192.0.2.1",
    "192.0.2.0/24",
    "*.example.com",
    "www.example.*",
    "rdata:www.example.com",
    "example.com/MX",
];

fn encode(q: &str) -> String {
    q.replace('/', "%2F")
        .replace('*', "%2A")
        .replace(':', "%3A")
}

#[tokio::test]
async fn rows_equal_the_api_answers() {
    let app = app();
    for q in QUERIES {
        let page = get(&app, &format!("/?q={}", encode(q))).await;
        assert_eq!(page.status, StatusCode::OK, "{q}");
        let rows = page_rows(&page.html());
        let path = Search::parse(q).expect("search").api_path();
        let api = get(&app, &format!("/dnsdb/v2/lookup/{path}")).await;
        assert_eq!(api.status, StatusCode::OK, "{q}: {}", api.text());
        let expected = saf_rows(&api.text());
        assert!(!expected.is_empty(), "{q}: the fixture answers it");
        assert_eq!(rows, expected, "{q}");
        // The preview names the same API request.
        let preview = page
            .html()
            .select(&sel("#api-url"))
            .next()
            .map(|e| e.text().collect::<String>())
            .expect("API URL");
        assert!(
            preview.starts_with(&format!("/dnsdb/v2/lookup/{path}?")),
            "{preview}"
        );
    }
}

#[tokio::test]
async fn time_fences_match_the_api() {
    let app = app();
    let t = 1_700_000_000u64;
    for (after, before, strict, api) in [
        (
            t + 20 * 86_400,
            0,
            false,
            format!("time_last_after={}", t + 20 * 86_400),
        ),
        (
            t,
            t + 2 * 86_400,
            true,
            format!("time_first_after={t}&time_last_before={}", t + 2 * 86_400),
        ),
    ] {
        let mut uri = format!("/?q=%2A.example.com&after={after}");
        if before > 0 {
            uri.push_str(&format!("&before={before}"));
        }
        if strict {
            uri.push_str("&strict=1");
        }
        let rows = page_rows(&get(&app, &uri).await.html());
        let api_rows = saf_rows(
            &get(
                &app,
                &format!("/dnsdb/v2/lookup/rrset/name/*.example.com?{api}"),
            )
            .await
            .text(),
        );
        assert!(!rows.is_empty());
        assert_eq!(rows, api_rows, "{uri}");
        let export = get(&app, &format!("{uri}&format=json")).await;
        let api_all = get(
            &app,
            &format!("/dnsdb/v2/lookup/rrset/name/*.example.com?limit=0&{api}"),
        )
        .await;
        assert_eq!(export.body, api_all.body, "{uri}");
    }
}

#[tokio::test]
async fn every_name_and_address_is_a_pivot_that_answers() {
    let app = app();
    let html = get(&app, "/?q=%2A.example.com").await.html();
    let rows: Vec<_> = html.select(&sel("#results tbody tr")).collect();
    assert!(rows.len() >= 8);
    let mut targets = Vec::new();
    for tr in &rows {
        let name = tr.select(&sel("a.rrname")).next().expect("name link");
        let text = name.text().collect::<String>();
        let href = name.value().attr("href").expect("href");
        let q = text.strip_suffix('.').expect("fqdn");
        assert!(href.starts_with("/?q="), "{href}");
        targets.push((href.to_string(), text.clone()));
        let cells: Vec<_> = tr.select(&sel("td")).collect();
        let rrtype = cells[5].text().collect::<String>();
        let links: Vec<_> = cells[6].select(&sel("a.rdata-link")).collect();
        match rrtype.as_str() {
            "A" | "AAAA" | "MX" | "NS" | "CNAME" => {
                assert_eq!(links.len(), 1, "{q} {rrtype}: rdata link");
                targets.push((
                    links[0].value().attr("href").expect("href").to_string(),
                    links[0].text().collect(),
                ));
            }
            _ => assert!(links.is_empty(), "{q} {rrtype}"),
        }
    }
    // Each pivot opens a view whose rows hold what was clicked (a name
    // seen only inside rdata has no records of its own: the view says so).
    for (href, text) in targets {
        let answer = get(&app, &href).await;
        assert_eq!(answer.status, StatusCode::OK, "{href}");
        let body = answer.html();
        let rows = page_rows(&body);
        assert!(
            rows.iter().any(|r| r.0 == text || r.2 == text)
                || (text == "ns1.example.net." && body.select(&sel("#no-rows")).next().is_some()),
            "{href}: no row with {text}"
        );
    }
    // A name inside rdata links to the records that share it.
    for (name, rdata) in [
        ("ns1.example.net", "ns1.example.net."),
        ("mail.example.com", "10 mail.example.com."),
    ] {
        let shared = get(&app, &format!("/?q=rdata%3A{name}")).await.html();
        assert!(page_rows(&shared).iter().any(|r| r.2 == rdata), "{name}");
    }
    let extras: Vec<String> = html
        .select(&sel("td.more a.extra"))
        .filter_map(|a| a.value().attr("href").map(str::to_string))
        .collect();
    assert!(
        extras.contains(&"/?q=rdata:ns1.example.net".to_string()),
        "{extras:?}"
    );
    // An address links to its /24.
    let html = get(&app, "/?q=192.0.2.1").await.html();
    let extra = html
        .select(&sel("td.more a.extra"))
        .next()
        .expect("network link");
    assert_eq!(extra.value().attr("href"), Some("/?q=192.0.2.0/24"));
}

#[tokio::test]
async fn exports_are_byte_equal_to_the_api_and_not_cut_at_the_page() {
    let app = app();
    for q in QUERIES {
        let path = Search::parse(q).expect("search").api_path();
        // A page of one row: cut, and says so.
        let page = get(&app, &format!("/?q={}&limit=1", encode(q))).await;
        let html = page.html();
        assert_eq!(page_rows(&html).len(), 1, "{q}");
        let api_all = get(&app, &format!("/dnsdb/v2/lookup/{path}?limit=0")).await;
        let all = saf_rows(&api_all.text());
        if all.len() > 1 {
            assert!(
                html.select(&sel("#cut")).next().is_some(),
                "{q}: cut banner"
            );
        }
        let export = get(&app, &format!("/?q={}&limit=1&format=json", encode(q))).await;
        assert_eq!(export.status, StatusCode::OK);
        assert_eq!(export.text(), api_all.text(), "{q}: json export");
        assert!(
            export.headers[header::CONTENT_DISPOSITION]
                .to_str()
                .expect("ascii")
                .starts_with("attachment")
        );
        let v1 = get(&app, &format!("/?q={}&format=v1", encode(q))).await;
        let api_v1 = get(&app, &format!("/lookup/{path}?limit=0")).await;
        assert_eq!(v1.body, api_v1.body, "{q}: v1 export");
        let csv = get(&app, &format!("/?q={}&limit=1&format=csv", encode(q))).await;
        let text = csv.text();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(dnsrecall_ui::export::CSV_HEADER.trim_end())
        );
        let csv_names: Vec<String> = lines
            .map(|l| l.split(',').nth(3).expect("rrname").to_string())
            .collect();
        let api_names: Vec<String> = all.iter().map(|r| r.0.clone()).collect();
        assert_eq!(csv_names, api_names, "{q}: csv rows");
        let cof = get(&app, &format!("/?q={}&format=cof", encode(q))).await;
        assert_eq!(cof.text().lines().count(), all.len(), "{q}: cof lines");
    }
    let unknown = get(&app, "/?q=example.com&format=pdf").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn hostile_names_and_txt_render_as_text() {
    let app = app();
    for q in ["txt.example.com", "*.example.com", "192.0.2.66"] {
        let page = get(&app, &format!("/?q={}", encode(q))).await;
        let body = page.text();
        assert!(
            !body.contains("<script>alert"),
            "{q}: raw script in the page"
        );
        assert!(!body.contains("<img src=x"), "{q}: raw markup in the page");
        let html = page.html();
        let scripts: Vec<_> = html
            .select(&sel("script"))
            .map(|s| s.value().attr("src").unwrap_or("inline").to_string())
            .collect();
        assert_eq!(
            scripts,
            ["/ui/assets/htmx.min.js", "/ui/assets/ui.js"],
            "{q}"
        );
        assert!(html.select(&sel("img")).next().is_none(), "{q}");
        let text: String = html
            .select(&sel("#results"))
            .flat_map(|t| t.text())
            .collect();
        if q == "txt.example.com" {
            assert!(text.contains("<script>alert('txt')</script>"), "{text}");
        } else {
            assert!(
                // Spaces and parentheses are escaped in presentation form.
                text.contains("<img\\032src=x\\032onerror=alert\\(1\\)>.example.com."),
                "{text}"
            );
        }
    }
    // The hostile name's pivot link is percent-encoded, and answers.
    let html = get(&app, "/?q=192.0.2.66").await.html();
    let href = html
        .select(&sel("a.rrname"))
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("link")
        .to_string();
    assert!(href.starts_with("/?q=%3Cimg%5C032src%3Dx"), "{href}");
    assert_eq!(page_rows(&get(&app, &href).await.html()).len(), 1);
}

#[tokio::test]
async fn a_name_view_has_a_timeline_and_a_wildcard_a_label_tree() {
    let app = app();
    let html = get(&app, "/?q=www.example.com").await.html();
    let svg = html.select(&sel("svg#timeline")).next().expect("timeline");
    let bars = svg.select(&sel(".bar")).count();
    assert_eq!(bars, page_rows(&html).len());
    let t0: u64 = svg
        .value()
        .attr("data-t0")
        .expect("t0")
        .parse()
        .expect("t0");
    let t1: u64 = svg
        .value()
        .attr("data-t1")
        .expect("t1")
        .parse()
        .expect("t1");
    assert_eq!((t0, t1), (1_700_000_000, 1_700_000_000 + 40 * 86_400));
    let base = svg.value().attr("data-base").expect("base");
    assert_eq!(base, "/?q=www.example.com");

    let html = get(&app, "/?q=%2A.example.com").await.html();
    let branches: Vec<String> = html
        .select(&sel("#label-tree tbody tr td:first-child"))
        .map(|td| td.text().collect())
        .collect();
    for expected in [
        "www.example.com.",
        "mail.example.com.",
        "alias.example.com.",
    ] {
        assert!(branches.contains(&expected.to_string()), "{branches:?}");
    }
    assert!(
        !branches.contains(&"example.com.".to_string()),
        "the base is not its own branch"
    );
}

#[tokio::test]
async fn empty_and_bad_queries_say_so() {
    let app = app();
    let none = get(&app, "/?q=nothing.example.org").await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.html().select(&sel("#no-rows")).next().is_some());
    let bad = get(&app, "/?q=www.example.com&type=BOGUS").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let error: String = bad
        .html()
        .select(&sel("#query-error"))
        .flat_map(|e| e.text())
        .collect();
    assert!(error.contains("BOGUS"), "{error}");
    let home = get(&app, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html().select(&sel("input#q")).next().is_some());
}

#[tokio::test]
async fn the_breadcrumb_follows_pivots() {
    let app = app();
    let first = get(&app, "/?q=www.example.com").await;
    let cookie = first.headers[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    assert!(
        first.headers[header::SET_COOKIE]
            .to_str()
            .expect("c")
            .contains("HttpOnly")
    );
    let second = get_with(&app, "/?q=192.0.2.1", &[("cookie", &cookie)]).await;
    let crumbs: Vec<String> = second
        .html()
        .select(&sel("nav.trail li"))
        .map(|li| li.text().collect())
        .collect();
    assert_eq!(crumbs, ["www.example.com", "192.0.2.1"]);
}

#[tokio::test]
async fn the_login_cookie_guards_pages_as_keys_guard_the_apis() {
    let app = app_with_keys(&["s3cret-key"]);
    let anonymous = get(&app, "/?q=www.example.com").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    let location = anonymous.headers[header::LOCATION]
        .to_str()
        .expect("location");
    assert!(
        location.starts_with("/ui/login?next=/%3Fq%3Dwww.example.com"),
        "{location}"
    );
    assert_eq!(get(&app, "/ui/status").await.status, StatusCode::SEE_OTHER);
    assert_eq!(get(&app, "/ui/login").await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/ui/assets/htmx.min.js").await.status,
        StatusCode::OK
    );

    let login = |key: &str| {
        let body = format!("key={key}&next=%2F%3Fq%3Dwww.example.com");
        app.router.clone().oneshot(
            Request::post("/ui/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .expect("request"),
        )
    };
    let refused = login("wrong").await.expect("answer");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get(header::SET_COOKIE).is_none());

    let accepted = login("s3cret-key").await.expect("answer");
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(accepted.headers()[header::LOCATION], "/?q=www.example.com");
    let set_cookie = accepted.headers()[header::SET_COOKIE]
        .to_str()
        .expect("cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(
        !set_cookie.contains("s3cret-key"),
        "the key is not the cookie"
    );
    let cookie = set_cookie.split(';').next().expect("pair").to_string();

    let page = get_with(&app, "/?q=www.example.com", &[("cookie", &cookie)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.text().contains("s3cret-key"),
        "the key is never in a page"
    );
    assert_eq!(page_rows(&page.html()).len(), 3);
    // The export is the API's answer to the same key.
    let export = get_with(
        &app,
        "/?q=www.example.com&format=json",
        &[("cookie", &cookie)],
    )
    .await;
    let api = get_with(
        &app,
        "/dnsdb/v2/lookup/rrset/name/www.example.com?limit=0",
        &[("x-api-key", "s3cret-key")],
    )
    .await;
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(export.body, api.body);
    // The APIs' own headers open the pages too; a wrong one is a 401.
    let keyed = get_with(&app, "/?q=www.example.com", &[("x-api-key", "s3cret-key")]).await;
    assert_eq!(keyed.status, StatusCode::OK);
    let wrong = get_with(&app, "/?q=www.example.com", &[("x-api-key", "nope")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A forged cookie is not a session.
    let forged = get_with(&app, "/", &[("cookie", "dnsrecall_session=00ff")]).await;
    assert_eq!(forged.status, StatusCode::SEE_OTHER);
    // Logging out ends the session.
    let out = app
        .router
        .clone()
        .oneshot(
            Request::post("/ui/logout")
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = get_with(&app, "/", &[("cookie", &cookie)]).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_status_page_shows_the_store_and_the_inputs() {
    let app = app();
    let page = get(&app, "/ui/status").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.html();
    let text = |css: &str| -> String {
        html.select(&sel(css))
            .flat_map(|e| e.text())
            .collect::<String>()
    };
    let _: u64 = text("#store-observations").parse().expect("a number");
    let _: u64 = text("#store-records").parse().expect("a number");
    assert!(!text("#store-size").is_empty());
    let body = page.text();
    assert!(body.contains("dnsrecall_dnstap_dropped_total"));
    assert!(body.contains("drops: 7"), "drops per input");
    // The input's own counters and the ingest layer's for it are one group.
    let groups: Vec<String> = html
        .select(&sel("section[aria-labelledby=inputs-h] h3"))
        .map(|h| h.text().collect::<String>())
        .collect();
    assert_eq!(
        groups.iter().filter(|g| g.starts_with("dnstap ")).count(),
        1,
        "{groups:?}"
    );
    assert!(
        !groups.iter().any(|g| g.starts_with("ingest ")),
        "{groups:?}"
    );
    assert!(body.contains("drops: 0"), "an input without drops");
    // A second view measures rates.
    let again = get(&app, "/ui/status").await.html();
    let rate: String = again
        .select(&sel("#ingest-rate"))
        .flat_map(|e| e.text())
        .collect();
    assert!(rate.contains("observations/s"), "{rate}");
}

//---- streaming -------------------------------------------------------------------

/// The query engine's vector store, stopped after `pause_after` rows of a
/// scan until the test lets it go on, and then failing if `fail` is set:
/// a long scan whose end the test decides.
struct GatedStore {
    inner: testing::MemoryStore,
    pause_after: usize,
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    fail: bool,
}

impl dnsrecall_core::store::Store for GatedStore {
    fn write(&self, entries: &[Entry]) -> Result<(), dnsrecall_core::store::StoreError> {
        self.inner.write(entries)
    }
    fn scan_rrset(
        &self,
        query: &dnsrecall_core::store::RrsetQuery,
        visit: &mut dnsrecall_core::store::Visitor<'_>,
    ) -> Result<(), dnsrecall_core::store::StoreError> {
        let mut seen = 0usize;
        let mut failed = false;
        self.inner.scan_rrset(query, &mut |entry| {
            if seen == self.pause_after {
                let gate = self.gate.lock().expect("gate");
                let _ = gate.recv_timeout(std::time::Duration::from_secs(30));
                if self.fail {
                    failed = true;
                    return std::ops::ControlFlow::Break(());
                }
            }
            seen += 1;
            visit(entry)
        })?;
        if failed {
            return Err(dnsrecall_core::store::StoreError::Engine(
                "disk on fire".into(),
            ));
        }
        Ok(())
    }
    fn scan_rdata(
        &self,
        query: &dnsrecall_core::store::RdataQuery,
        visit: &mut dnsrecall_core::store::Visitor<'_>,
    ) -> Result<(), dnsrecall_core::store::StoreError> {
        self.inner.scan_rdata(query, visit)
    }
    fn scan_all(
        &self,
        visit: &mut dnsrecall_core::store::Visitor<'_>,
    ) -> Result<(), dnsrecall_core::store::StoreError> {
        self.inner.scan_all(visit)
    }
    fn info(&self) -> Result<dnsrecall_core::store::StoreInfo, dnsrecall_core::store::StoreError> {
        self.inner.info()
    }
    fn flush(&self) -> Result<(), dnsrecall_core::store::StoreError> {
        Ok(())
    }
}

/// `n` names below `big.example`, one A record each.
fn big(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            entry(
                &format!("h{i}.big.example"),
                Rtype::A,
                &format!("10.0.{}.{}", i / 256, i % 256),
                1_700_000_000 + i as u64,
                1_700_000_000 + 7 * i as u64,
                1 + i as u64 % 5,
            )
        })
        .collect()
}

fn gated_app(
    entries: Vec<Entry>,
    pause_after: usize,
    fail: bool,
) -> (App, std::sync::mpsc::Sender<()>) {
    let (open, gate) = std::sync::mpsc::channel();
    let state = AppState {
        store: Arc::new(GatedStore {
            inner: testing::MemoryStore::new(entries),
            pause_after,
            gate: std::sync::Mutex::new(gate),
            fail,
        }),
        config: Arc::new(ApiConfig::default()),
        keys: Arc::new(ApiKeys::default()),
        metrics: Arc::new(dnsrecall_metrics::Registry::default()),
        quotas: Default::default(),
    };
    (
        App {
            router: dnsrecall_http::router(state),
        },
        open,
    )
}

/// Row ids (`r0`, `r1`, …) in a piece of a page, in order.
fn row_ids(html: &str) -> Vec<usize> {
    html.match_indices("<tr id=\"r")
        .map(|(at, m)| {
            let rest = &html[at + m.len()..];
            rest[..rest.find('"').expect("id end")]
                .parse()
                .expect("row number")
        })
        .collect()
}

#[tokio::test]
async fn a_long_view_streams_its_rows_before_the_scan_ends() {
    use futures::StreamExt as _;
    // 600 rows; the scan stops after 250 (one batch) until the test lets it
    // go on: the first rows must reach the client while it waits.
    let entries = big(600);
    let (app, open) = gated_app(entries.clone(), 250, false);
    let response = app
        .router
        .clone()
        .oneshot(
            Request::get("/?q=%2A.big.example&limit=500")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let mut body = response.into_body().into_data_stream();
    let head = body.next().await.expect("a first part").expect("bytes");
    let head = String::from_utf8(head.to_vec()).expect("utf-8");
    assert_eq!(
        row_ids(&head),
        (0..250).collect::<Vec<_>>(),
        "the first batch"
    );
    assert!(
        head.contains("id=\"streaming\""),
        "the page says the rows stream"
    );
    assert!(!head.contains("</html>"), "the page is not over");
    assert!(!head.contains("id=\"summary\""), "totals come at the end");
    assert!(
        head.contains("svg class=\"timeline\""),
        "the timeline of the first rows"
    );
    // Let the scan go on: the rest of the rows, then the end.
    open.send(()).expect("the scan waits");
    let mut rest = String::new();
    while let Some(part) = body.next().await {
        rest.push_str(std::str::from_utf8(&part.expect("bytes")).expect("utf-8"));
    }
    assert_eq!(row_ids(&rest), (250..500).collect::<Vec<_>>());
    assert_eq!(rest.matches("</html>").count(), 1);
    let whole = Html::parse_document(&format!("{head}{rest}"));
    // The streamed rows are the API's (whose scan pauses too: let it pass),
    // and the end says the view was cut.
    open.send(()).expect("the gate");
    let api = saf_rows_ending(
        &get(&app, "/dnsdb/v2/lookup/rrset/name/*.big.example?limit=500")
            .await
            .text(),
        "limited",
    );
    assert_eq!(page_rows(&whole), api);
    let end: String = whole.select(&sel("#end")).flat_map(|e| e.text()).collect();
    assert!(end.contains("Cut at 500 rows"), "{end}");
    let summary: String = whole
        .select(&sel("#end #summary"))
        .flat_map(|e| e.text())
        .collect();
    assert!(
        summary.starts_with("at least 500 records, 500 names"),
        "{summary}"
    );
    // One branch per name below big.example, the busiest 200 listed.
    let branches = whole.select(&sel("#end #label-tree tbody tr")).count();
    assert_eq!(branches, 200);
    assert!(end.contains("The 200 busiest of 500 names"), "{end}");
    assert!(whole.select(&sel("#results tbody tr")).count() == 500);
}

#[tokio::test]
async fn a_short_view_is_one_page_with_its_totals_on_top() {
    // Without a pause the fixture's lookups end before the head goes out.
    let app = app();
    let page = get(&app, "/?q=%2A.example.com").await.text();
    assert!(!page.contains("id=\"streaming\""));
    assert!(!page.contains("dnsrecall:more-rows"));
    let summary = page.find("id=\"summary\"").expect("summary");
    let table = page.find("id=\"results\"").expect("table");
    let tree = page.find("id=\"label-tree\"").expect("tree");
    assert!(
        summary < table && tree < table,
        "totals and tree above the rows"
    );
}

#[tokio::test]
async fn a_stream_that_fails_says_so_at_its_end() {
    use futures::StreamExt as _;
    let (app, open) = gated_app(big(600), 250, true);
    let response = app
        .router
        .clone()
        .oneshot(
            Request::get("/?q=%2A.big.example&limit=10000")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK, "the head went out");
    open.send(()).expect("the scan waits");
    let mut page = String::new();
    let mut body = response.into_body().into_data_stream();
    while let Some(part) = body.next().await {
        page.push_str(std::str::from_utf8(&part.expect("bytes")).expect("utf-8"));
    }
    assert_eq!(row_ids(&page).len(), 250);
    let html = Html::parse_document(&page);
    let error: String = html
        .select(&sel("#end #query-error"))
        .flat_map(|e| e.text())
        .collect();
    assert!(
        error.contains("stopped after 250 rows: internal error"),
        "{error}"
    );
    assert!(
        !page.contains("disk on fire"),
        "store details stay in the log"
    );
    assert!(html.select(&sel("#no-rows")).next().is_none());
}

#[tokio::test]
async fn cof_exports_hold_the_d4_apis_lines() {
    // The D4 API answers a name or an address with COF lines, latest first;
    // the export of the same view has the same lines, in store order.
    let app = app();
    for q in ["www.example.com", "192.0.2.1", "example.com"] {
        let export = get(&app, &format!("/?q={q}&format=cof")).await;
        assert_eq!(export.status, StatusCode::OK);
        let d4 = get(&app, &format!("/query/{q}")).await;
        assert_eq!(d4.status, StatusCode::OK);
        let mut exported: Vec<String> = export.text().lines().map(str::to_string).collect();
        let mut answered: Vec<String> = d4.text().lines().map(str::to_string).collect();
        assert!(!answered.is_empty(), "{q}");
        exported.sort();
        answered.sort();
        assert_eq!(exported, answered, "{q}");
    }
}

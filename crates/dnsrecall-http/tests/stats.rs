//! The statistics routes: dnstap-receiver's answers compared field by field
//! with the real dnstap-receiver (PyPI `dnstap-receiver`, from the venv
//! named by DNSRECALL_TEST_PYTHON, installed by scripts/test.sh) fed the
//! same frames by `fstrm_replay` over TCP; keys (401 without one); our
//! `/stats/*` routes; the Grafana dashboard's expressions name exported
//! metrics.

#[path = "../../dnsrecall-stats/tests/common/mod.rs"]
mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use dnsrecall_core::message::DnsMessage;
use dnsrecall_http::{ApiConfig, ApiKeys, AppState, router};
use dnsrecall_query::testing::MemoryStore;
use dnsrecall_stats::{Stats, StatsConfig};
use serde_json::Value;
use tower::ServiceExt as _;

const KEY: &str = "stats-test-key";

fn app(stats: Arc<Stats>) -> axum::Router {
    let state = AppState {
        store: Arc::new(MemoryStore::empty()),
        config: Arc::new(ApiConfig::default()),
        keys: Arc::new(ApiKeys::new([KEY])),
        metrics: Arc::new(dnsrecall_metrics::Registry::default()),
        quotas: Default::default(),
    };
    router(state).layer(Extension(stats))
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    let answer = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("answer");
    let status = answer.status();
    let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn json(app: &axum::Router, uri: &str) -> Value {
    let (status, body) = call(app, "GET", uri, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn files() -> Vec<std::path::PathBuf> {
    ["unbound_resolver.dnstap", "unbound_auth.dnstap"]
        .iter()
        .map(|f| dnsrecall_testkit::data(&format!("dnstap/unbound/{f}")))
        .collect()
}

fn messages() -> Vec<DnsMessage> {
    files()
        .iter()
        .flat_map(|f| common::dnstap_messages(f))
        .collect()
}

//---- the real dnstap-receiver ----------------------------------------------

struct Receiver {
    child: Child,
    web_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn start_receiver() -> (Receiver, u16) {
    let dir = tempfile::tempdir().expect("temp dir");
    let web_port = dnsrecall_testkit::free_port();
    let tap_port = dnsrecall_testkit::free_port();
    let config = dir.path().join("dnstap.conf");
    std::fs::write(
        &config,
        format!(
            "trace:\n  verbose: false\nweb-api:\n  enable: true\n  api-key: {KEY}\n  login: admin\n  password: {KEY}\n  local-address: 127.0.0.1\n  local-port: {web_port}\noutput:\n  stdout:\n    enable: false\n"
        ),
    )
    .expect("config");
    let child = Command::new(python())
        .args([
            "-c",
            "from dnstap_receiver.receiver import start_receiver; start_receiver()",
        ])
        .arg("-c")
        .arg(&config)
        .args(["-l", "127.0.0.1", "-p", &tap_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "run dnstap-receiver (set DNSRECALL_TEST_PYTHON to the venv scripts/test.sh makes)",
        );
    let mut receiver = Receiver {
        child,
        web_port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", tap_port)).is_err()
        || TcpStream::connect(("127.0.0.1", web_port)).is_err()
    {
        if let Ok(Some(status)) = receiver.child.try_wait() {
            panic!(
                "dnstap-receiver exited ({status}): is it installed in the venv DNSRECALL_TEST_PYTHON names (scripts/test.sh)?"
            );
        }
        assert!(Instant::now() < deadline, "dnstap-receiver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (receiver, tap_port)
}

/// A plain HTTP/1.0 request to dnstap-receiver: (status, body).
fn receiver_call(port: u16, method: &str, path: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let header = match auth {
        Some((name, value)) => format!("{name}: {value}\r\n"),
        None => String::new(),
    };
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{header}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn receiver_json(port: u16, path: &str) -> Value {
    let (status, body) = receiver_call(port, "GET", path, Some(("X-API-Key", KEY)));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("dnstap-receiver JSON")
}

/// dnstap-receiver's names that differ from ours on purpose (see
/// docs/stats.md): its `TSLA` typo for TLSA.
fn normalise(value: &Value) -> Value {
    let text = value.to_string().replace("/tsla\"", "/tlsa\"");
    serde_json::from_str(&text).expect("JSON")
}

/// A domain-tables object with each list's rows sorted by count, then key.
fn tie_free(tables: &Value) -> Value {
    let mut tables = tables.clone();
    if let Some(map) = tables.as_object_mut() {
        for rows in map.values_mut() {
            if let Some(rows) = rows.as_array_mut() {
                rows.sort_by(|a, b| {
                    b[1].as_u64()
                        .cmp(&a[1].as_u64())
                        .then(a[0].as_str().cmp(&b[0].as_str()))
                });
            }
        }
    }
    tables
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_match_the_real_dnstap_receiver() {
    let messages = messages();
    let stats = Arc::new(Stats::new(StatsConfig::default()).expect("stats"));
    for m in &messages {
        stats.observe(m);
    }
    let ours = app(stats.clone());

    let (receiver, tap_port) = start_receiver();
    let port = receiver.web_port;
    let mut replay = Command::new("fstrm_replay");
    replay.args([
        "-t",
        "protobuf:dnstap.Dnstap",
        "-a",
        "127.0.0.1",
        "-p",
        &tap_port.to_string(),
    ]);
    for file in files() {
        replay.arg("-r").arg(file);
    }
    let status = replay
        .status()
        .expect("run fstrm_replay (Debian fstrm-bin)");
    assert!(status.success());
    // Its global counters are recomputed every second.
    let total = messages.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counters = receiver_json(port, "/counters");
        let seen = counters["counters"]["query"].as_u64().unwrap_or(0)
            + counters["counters"]["response"].as_u64().unwrap_or(0);
        if seen == total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dnstap-receiver saw {seen} of {total}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1200));

    // Every counter name either side knows of.
    let theirs_tables = receiver_json(port, "/tables?n=100000");
    let mut names: Vec<String> = [
        "clients",
        "domains",
        "query",
        "response",
        "query/bytes",
        "response/bytes",
        "query/udp",
        "query/tcp",
        "response/udp",
        "response/tcp",
        "query/inet",
        "query/inet6",
        "response/inet",
        "response/inet6",
        "response/latency0_1",
        "response/latency1_10",
        "response/latency10_50",
        "response/latency50_100",
        "response/latency100_1000",
        "response/latency_slow",
        "query/svr",
    ]
    .map(String::from)
    .to_vec();
    for table in ["tlds", "rcodes", "rrtypes"] {
        for direction in ["hit/query", "hit/response"] {
            for row in theirs_tables["tables"][table][direction]
                .as_array()
                .expect("rows")
            {
                names.push(row[0].as_str().expect("name").to_string());
            }
        }
    }
    let more = names.join(",");
    let streams = [
        "",
        "&stream=resolver.unbound.test",
        "&stream=auth.unbound.test",
    ];
    for stream in streams {
        let path = format!("/counters?more={more}{stream}");
        let mut theirs = normalise(&receiver_json(port, &path));
        let mut mine = json(&ours, &path.replace("/tsla", "/tlsa")).await;
        for answer in [&mut theirs, &mut mine] {
            let counters = answer["counters"].as_object_mut().expect("counters");
            // Rates depend on when each side was asked.
            for rate in ["qps", "rps", "pps"] {
                counters.remove(rate);
            }
            // A stream's `domains` in dnstap-receiver counts only the
            // direction of the stream's last message (docs/stats.md).
            if !stream.is_empty() {
                counters.remove("domains");
            }
        }
        assert!(theirs["counters"].as_object().expect("counters").len() > 30);
        assert_eq!(mine, theirs, "{path}");
    }

    let domain_tables = "hit/query,hit/response,length/query,length/response,\
                         noerror/response,nxdomain/response,servfail/response,refused/response";
    for stream in streams {
        for n in ["3", "100000"] {
            let path = format!("/tables?n={n}&more={domain_tables}{stream}");
            let theirs = normalise(&receiver_json(port, &path));
            let mine = json(&ours, &path).await;
            for table in ["tlds", "domains", "clients", "rcodes", "rrtypes"] {
                // Over all streams dnstap-receiver sums each stream's top
                // n, so a name outside one stream's top n loses that
                // stream's count; ours are the global counts
                // (docs/stats.md). With every row listed both agree.
                if table == "domains" && stream.is_empty() {
                    if n != "3" {
                        // Ties come in another order there (its rows are
                        // each stream's, in turn): compare as sets.
                        assert_eq!(
                            tie_free(&mine["tables"][table]),
                            tie_free(&theirs["tables"][table]),
                            "{path} {table}"
                        );
                    }
                    continue;
                }
                assert_eq!(
                    mine["tables"][table], theirs["tables"][table],
                    "{path} {table}"
                );
            }
            assert_eq!(mine["stream"], theirs["stream"]);
        }
    }
    assert_eq!(
        json(&ours, "/streams").await,
        receiver_json(port, "/streams")
    );

    // Keys: both refuse a request without one or with a wrong one.
    for path in ["/counters", "/tables", "/streams"] {
        assert_eq!(receiver_call(port, "GET", path, None).0, 401);
        assert_eq!(
            call(&ours, "GET", path, None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&ours, "GET", path, Some("wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{KEY}"))
    );
    assert_eq!(
        receiver_call(port, "GET", "/streams", Some(("Authorization", &basic))).0,
        200
    );

    // Reset: 204, then nothing counted on either side.
    assert_eq!(receiver_call(port, "DELETE", "/reset", None).0, 401);
    assert_eq!(
        call(&ours, "DELETE", "/reset", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        receiver_call(port, "DELETE", "/reset", Some(("X-API-Key", KEY))).0,
        204
    );
    assert_eq!(
        call(&ours, "DELETE", "/reset", Some(KEY)).await.0,
        StatusCode::NO_CONTENT
    );
    std::thread::sleep(Duration::from_millis(1200));
    let path = "/counters?more=query/a";
    let theirs = receiver_json(port, path);
    let mine = json(&ours, path).await;
    for name in ["query", "response", "clients", "domains", "query/a"] {
        assert_eq!(mine["counters"][name], 0, "{name}");
        assert_eq!(theirs["counters"][name], 0, "{name}");
    }
    drop(receiver);
}

#[tokio::test]
async fn every_route_wants_a_key_and_ours_answer() {
    let stats = Arc::new(Stats::new(StatsConfig::default()).expect("stats"));
    for m in &messages() {
        stats.observe(m);
    }
    let ours = app(stats.clone());
    for (method, path) in [
        ("GET", "/counters"),
        ("GET", "/tables"),
        ("GET", "/streams"),
        ("DELETE", "/reset"),
        ("GET", "/stats/counters"),
        ("GET", "/stats/tables"),
        ("GET", "/stats/streams"),
        ("GET", "/metrics"),
    ] {
        let (status, _) = call(&ours, method, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let request = Request::builder()
        .uri("/stats/counters")
        .header(
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("any:{KEY}"))
            ),
        )
        .body(Body::empty())
        .expect("request");
    let answer = ours.clone().oneshot(request).await.expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);

    let counters = json(&ours, "/stats/counters").await;
    let total =
        counters["queries"].as_u64().unwrap_or(0) + counters["responses"].as_u64().unwrap_or(0);
    assert_eq!(total, messages().len() as u64);
    assert_eq!(counters["unique_domains"]["approximate"], true);
    assert!(
        counters["memory"]["used_bytes"].as_u64().expect("used")
            <= counters["memory"]["planned_bytes"]
                .as_u64()
                .expect("planned")
    );
    assert!(counters["latency"]["histogram"]["p50"].is_number());
    let tables = json(&ours, "/stats/tables?window=minute&n=2").await;
    let nx = &tables["tables"]["qnames_nxdomain/response"];
    assert_eq!(nx["exact"], true);
    assert!(nx["rows"].as_array().expect("rows").len() <= 2);
    let stream = json(&ours, "/stats/counters?stream=auth.unbound.test").await;
    assert!(stream["queries"].as_u64().expect("queries") > 0);
    assert_eq!(
        call(&ours, "GET", "/stats/counters?stream=nope", Some(KEY))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&ours, "GET", "/stats/tables?window=week", Some(KEY))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&ours, "GET", "/stats/tables?table=nope", Some(KEY))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&ours, "GET", "/tables?n=x", Some(KEY)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(
            &ours,
            "GET",
            "/stats/tables?window=hour&stream=auth.unbound.test",
            Some(KEY)
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    let (status, metrics) = call(&ours, "GET", "/metrics", Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains(
            "dnsrecall_stats_messages_total{stream=\"auth.unbound.test\",direction=\"query\"}"
        ),
        "{metrics}"
    );

    // Without statistics the routes say so.
    let state = AppState {
        store: Arc::new(MemoryStore::empty()),
        config: Arc::new(ApiConfig::default()),
        keys: Arc::new(ApiKeys::default()),
        metrics: Arc::new(dnsrecall_metrics::Registry::default()),
        quotas: Default::default(),
    };
    let (status, _) = call(&router(state), "GET", "/counters", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn metrics_label_cardinality_is_capped() {
    let config = StatsConfig {
        label_cap: 2,
        ..StatsConfig::default()
    };
    let stats = Stats::new(config).expect("stats");
    let template = messages()
        .into_iter()
        .find(|m| m.is_query())
        .expect("query");
    for (i, weight) in [5, 4, 3, 2, 1].into_iter().enumerate() {
        let mut m = template.clone();
        m.identity = Some(bytes::Bytes::from(format!("sensor{i}")));
        for _ in 0..weight {
            stats.observe(&m);
        }
    }
    let text = stats.prometheus();
    let line = |stream: &str| {
        format!("dnsrecall_stats_messages_total{{stream=\"{stream}\",direction=\"query\"}} ")
    };
    assert!(text.contains(&(line("sensor0") + "5")), "{text}");
    assert!(text.contains(&(line("sensor1") + "4")));
    assert!(text.contains(&(line("other") + "6")));
    assert!(!text.contains("sensor2"));
}

/// Every PromQL expression of the dashboard names only metrics we export.
#[test]
fn grafana_dashboard_uses_exported_metrics() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/dnsrecall.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard"))
            .expect("dashboard JSON");
    let stats = Stats::new(StatsConfig::default()).expect("stats");
    for m in &messages() {
        stats.observe(m);
    }
    let exported: Vec<String> = stats
        .prometheus()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    let mut expressions = Vec::new();
    collect_expressions(&dashboard, &mut expressions);
    assert!(expressions.len() >= 8, "{expressions:?}");
    for expression in expressions {
        let metrics = metric_names(&expression);
        assert!(!metrics.is_empty(), "{expression}");
        for metric in metrics {
            assert!(
                exported.contains(&metric),
                "{expression}: {metric} is not exported"
            );
        }
    }
}

fn collect_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(expr)) = map.get("expr") {
                out.push(expr.clone());
            }
            map.values().for_each(|v| collect_expressions(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_expressions(v, out)),
        _ => {}
    }
}

/// Identifiers of an expression that look like our metrics (PromQL
/// functions and label names do not start with `dnsrecall_`).
fn metric_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expression;
    while let Some(at) = rest.find("dnsrecall_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

//! The request guard against a served instance, over raw TCP sockets:
//! oversized request lines, headers and bodies, slowloris heads and bodies,
//! half-open connections, the connection limit and rate limits. Each test
//! also checks that a well-behaved client is still served meanwhile.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsrecall_http::guard::{Limits, RateLimits};
use dnsrecall_http::{ApiConfig, ApiKeys, AppState};
use dnsrecall_query::testing::MemoryStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Server {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn tight_limits() -> Limits {
    Limits {
        max_uri_bytes: 1024,
        max_header_bytes: 2048,
        max_headers: 20,
        max_body_bytes: 64 << 10,
        header_timeout_secs: 1,
        body_timeout_secs: 1,
        max_connections: 64,
    }
}

async fn serve(limits: Limits, rate_limits: RateLimits, keys: &[&str]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let state = AppState {
        store: Arc::new(MemoryStore::empty()),
        config: Arc::new(ApiConfig {
            limits: limits.clone(),
            rate_limits,
            ..ApiConfig::default()
        }),
        keys: Arc::new(ApiKeys::new(keys)),
        metrics: Arc::new(dnsrecall_metrics::Registry::default()),
        quotas: Default::default(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let app = dnsrecall_http::router(state);
        let shutdown = async {
            let _ = stopped.await;
        };
        dnsrecall_http::guard::serve_with(listener, app, &limits, shutdown)
            .await
            .expect("serve");
    });
    Server {
        address,
        stop: Some(stop),
    }
}

/// Sends `request` and reads until the server closes or 5 s pass.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    // The server may answer and close before all of an oversized request
    // is written: a failed write is part of the answer, not an error.
    let _ = stream.write_all(request).await;
    read_answer(&mut stream, Duration::from_secs(5)).await
}

async fn read_answer(stream: &mut TcpStream, wait: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// A plain request from a well-behaved client, answered within a second.
async fn assert_served(address: SocketAddr, key: Option<&str>) {
    let started = Instant::now();
    let key = key
        .map(|k| format!("x-api-key: {k}\r\n"))
        .unwrap_or_default();
    let request = format!("GET /info HTTP/1.1\r\nhost: t\r\n{key}connection: close\r\n\r\n");
    let answer = exchange(address, request.as_bytes()).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn oversized_request_target_is_414() {
    let server = serve(tight_limits(), RateLimits::default(), &[]).await;
    let long = "a".repeat(1500);
    let answer = exchange(
        server.address,
        format!("GET /query/{long}.example HTTP/1.1\r\nhost: t\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 414, "{answer}");
    // A target at the limit is not refused by the guard.
    let fits = "a".repeat(1000 - "/query/".len());
    let answer = exchange(
        server.address,
        format!("GET /query/{fits} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_ne!(status(&answer), 414, "{answer}");
    assert_served(server.address, None).await;
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let server = serve(tight_limits(), RateLimits::default(), &[]).await;
    // Over max_header_bytes: refused by the middleware.
    let pad = "x".repeat(3000);
    let answer = exchange(
        server.address,
        format!("GET /info HTTP/1.1\r\nhost: t\r\nx-pad: {pad}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 431, "{answer}");
    // Too many fields.
    let many: String = (0..30).map(|i| format!("x-h{i}: v\r\n")).collect();
    let answer = exchange(
        server.address,
        format!("GET /info HTTP/1.1\r\nhost: t\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 431, "{answer}");
    // Far over the read buffer: refused before being buffered.
    let huge = "y".repeat(200_000);
    let answer = exchange(
        server.address,
        format!("GET /info HTTP/1.1\r\nhost: t\r\nx-pad: {huge}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 431, "{answer}");
    assert_served(server.address, None).await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let server = serve(tight_limits(), RateLimits::default(), &[]).await;
    // Declared too large: refused without reading the body.
    let answer = exchange(
        server.address,
        b"POST /annotate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n{",
    )
    .await;
    assert_eq!(status(&answer), 413, "{answer}");
    // Chunked, growing past the limit while it streams.
    let mut request =
        b"POST /annotate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    let chunk = "z".repeat(16 << 10);
    for _ in 0..6 {
        request.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(server.address, &request).await;
    assert_eq!(status(&answer), 413, "{answer}");
    // A body within the limit reaches the route (which answers 200 or 400,
    // never a guard status).
    let body = r#"{"ips":["192.0.2.1"]}"#;
    let answer = exchange(
        server.address,
        format!(
            "POST /annotate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_served(server.address, None).await;
}

#[tokio::test]
async fn slowloris_heads_get_408_and_others_are_served() {
    let server = serve(tight_limits(), RateLimits::default(), &[]).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        stream
            .write_all(b"GET /info HTTP/1.1\r\nhost: t\r\n")
            .await
            .expect("write");
        slow.push(stream);
    }
    let started = Instant::now();
    // Drip a header line every 200 ms: never completing the head.
    let drip = tokio::spawn(async move {
        let mut answers = Vec::new();
        for round in 0..40 {
            for stream in &mut slow {
                let _ = stream
                    .write_all(format!("x-{round}: a\r\n").as_bytes())
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if round == 15 {
                break;
            }
        }
        for mut stream in slow {
            answers.push(read_answer(&mut stream, Duration::from_secs(3)).await);
        }
        answers
    });
    assert_served(server.address, None).await;
    let answers = drip.await.expect("drip");
    for answer in &answers {
        assert_eq!(status(answer), 408, "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_served(server.address, None).await;
}

#[tokio::test]
async fn half_open_connections_are_closed() {
    let server = serve(tight_limits(), RateLimits::default(), &[]).await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(server.address).await.expect("connect"));
    }
    assert_served(server.address, None).await;
    let started = Instant::now();
    for stream in &mut idle {
        // Closed without an answer (nothing was asked).
        let answer = read_answer(stream, Duration::from_secs(4)).await;
        assert_eq!(answer, "");
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "idle connections held {waited:?}"
    );
    // A slow body after a complete head: 408 too.
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream
        .write_all(b"POST /annotate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"ips\"")
        .await
        .expect("write");
    let answer = read_answer(&mut stream, Duration::from_secs(4)).await;
    assert_eq!(status(&answer), 408, "{answer}");
    assert_served(server.address, None).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    let limits = Limits {
        max_connections: 3,
        header_timeout_secs: 5,
        ..tight_limits()
    };
    let server = serve(limits, RateLimits::default(), &[]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.address).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = exchange(server.address, b"GET /info HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!(status(&answer), 503, "{answer}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_served(server.address, None).await;
}

#[tokio::test]
async fn rate_limits_per_address_and_per_key() {
    let rate_limits = RateLimits {
        per_key_per_second: 1.0,
        per_key_burst: 3,
        per_address_per_second: 1.0,
        per_address_burst: 2,
        max_tracked: 100,
    };
    let server = serve(tight_limits(), rate_limits, &["key-a", "key-b"]).await;
    let get = |key: Option<&'static str>| {
        let address = server.address;
        async move {
            let key = key
                .map(|k| format!("x-api-key: {k}\r\n"))
                .unwrap_or_default();
            exchange(
                address,
                format!("GET /info HTTP/1.1\r\nhost: t\r\n{key}connection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
        }
    };
    // Key A: its burst of 3, then 429 with Retry-After.
    for _ in 0..3 {
        assert_eq!(status(&get(Some("key-a")).await), 200);
    }
    let limited = get(Some("key-a")).await;
    assert_eq!(status(&limited), 429, "{limited}");
    let retry_after: u64 = limited
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Key B has its own bucket.
    assert_served(server.address, Some("key-b")).await;
    // Without a key (401 from auth) the address's bucket applies: 2, then 429.
    assert_eq!(status(&get(None).await), 401);
    assert_eq!(status(&get(None).await), 401);
    assert_eq!(status(&get(None).await), 429);
    // A second later key A may ask again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&get(Some("key-a")).await), 200);
}

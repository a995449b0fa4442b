//! The servers against bad peers, TLS, client mode, shutdown and outputs.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dnsrecall_dnstap::framestream::{Mode, SenderSession};
use dnsrecall_dnstap::output::{Dispatcher, Format, LatencyTable, OutputConfig, Target};
use dnsrecall_dnstap::server::{self, ClientConfig, ClientTls, DataFrame, ServerConfig};
use dnsrecall_dnstap::{DNSTAP_CONTENT_TYPE, Metrics};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

fn resolver_frames() -> Vec<Bytes> {
    common::read_frames(&Path::new(common::DATA).join("unbound/unbound_resolver.dnstap"))
}

const START: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x22\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x16protobuf:dnstap.Dnstap";
const STOP: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x03";

async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    // Keep the socket until the server hangs up, so nothing is reset early.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink),
    )
    .await;
}

fn counter(metrics: &Metrics, name: &str) -> u64 {
    metrics
        .value(&format!("dnsrecall_dnstap_{name}_total"))
        .unwrap()
}

#[tokio::test]
async fn bad_peers_are_counted_and_do_not_disturb_a_good_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, mut frames) = mpsc::channel::<DataFrame>(100_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let config = ServerConfig {
        handshake_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let server = tokio::spawn(server::serve_tcp(
        listener,
        sink,
        config,
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    // A stuck peer: connects and says nothing (dropped at the handshake timeout).
    let stuck = TcpStream::connect(addr).await.unwrap();

    let expected = resolver_frames();
    let good = {
        let expected = expected.clone();
        tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let mut sender = SenderSession::start(stream, DNSTAP_CONTENT_TYPE, Mode::Bidirectional)
                .await
                .unwrap();
            for (index, frame) in expected.iter().enumerate() {
                sender.send(frame.clone()).await.unwrap();
                if index % 50 == 0 {
                    sender.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            sender.finish().await.unwrap();
        })
    };

    let mut oversized = START.to_vec();
    oversized.extend_from_slice(&(2u32 << 20).to_be_bytes());
    oversized.extend_from_slice(&[0; 64]);
    let mut truncated = START.to_vec();
    truncated.extend_from_slice(&100u32.to_be_bytes());
    truncated.extend_from_slice(&[1; 10]);
    let mut invalid_protobuf = START.to_vec();
    invalid_protobuf.extend_from_slice(b"\x00\x00\x00\x03\xff\xff\xff");
    invalid_protobuf.extend_from_slice(STOP);
    let mismatch = b"\x00\x00\x00\x00\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x0atest:hello";
    tokio::join!(
        raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), // length 0x47455420: oversized
        raw(addr, b"\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00"), // control shorter than its type
        raw(addr, b"\x00\x00\x00\x05hello"),             // data before START
        raw(addr, &oversized),
        raw(addr, &truncated),
        raw(addr, mismatch),
        raw(addr, &invalid_protobuf),
    );
    good.await.unwrap();

    let mut got = Vec::new();
    while got.len() < expected.len() + 1 {
        match tokio::time::timeout(Duration::from_secs(10), frames.recv()).await {
            Ok(Some(frame)) => got.push(frame),
            _ => break,
        }
    }
    // The consumer decodes; the bad protobuf is counted there.
    let mut dispatcher = Dispatcher::new(LatencyTable::default(), metrics.clone());
    let mut good_frames = Vec::new();
    for frame in &got {
        if dispatcher.dispatch(frame.data.clone()).is_ok() {
            good_frames.push(frame.data.clone());
        }
    }
    assert!(good_frames == expected, "good sender's frames differ");
    assert_eq!(counter(&metrics, "errors_protobuf"), 1);

    assert!(
        common::wait_until(Duration::from_secs(5), || counter(
            &metrics,
            "errors_truncated"
        ) >= 2)
        .await
    );
    drop(stuck);
    assert_eq!(
        counter(&metrics, "errors_oversized"),
        2,
        "{:?}",
        metrics.snapshot()
    );
    assert_eq!(
        counter(&metrics, "errors_malformed_control"),
        2,
        "{:?}",
        metrics.snapshot()
    );
    assert_eq!(counter(&metrics, "errors_content_type"), 1);
    // Truncated frame + the stuck peer's handshake timeout.
    assert_eq!(
        counter(&metrics, "errors_truncated"),
        2,
        "{:?}",
        metrics.snapshot()
    );
    assert_eq!(counter(&metrics, "connections_accepted"), 9);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(counter(&metrics, "connections_closed"), 9);
}

#[tokio::test]
async fn shutdown_drains_frames_already_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, mut frames) = mpsc::channel::<DataFrame>(100_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let server = tokio::spawn(server::serve_tcp(
        listener,
        sink,
        ServerConfig::default(),
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let expected = resolver_frames();
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut sender = SenderSession::start(stream, DNSTAP_CONTENT_TYPE, Mode::Unidirectional)
        .await
        .unwrap();
    for frame in &expected {
        sender.send(frame.clone()).await.unwrap();
    }
    sender.flush().await.unwrap();
    // Shutdown stops accepting: make sure this connection was accepted.
    let first = tokio::time::timeout(Duration::from_secs(10), frames.recv())
        .await
        .unwrap()
        .unwrap();
    let _ = stop.send(());
    // No STOP: the server drains for drain_timeout, then returns.
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut got = vec![first.data];
    while let Ok(frame) = frames.try_recv() {
        got.push(frame.data);
    }
    assert!(
        got == expected,
        "got {} of {} frames",
        got.len(),
        expected.len()
    );
    drop(sender);
}

struct Pki {
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    Pki {
        _dir: dir,
        cert,
        key,
    }
}

#[tokio::test]
async fn tls_server_with_client_certificates() {
    let pki = pki();
    // The self-signed certificate is its own CA, for both sides.
    let server_config = server::tls_server_config(&pki.cert, &pki.key, Some(&pki.cert)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, mut frames) = mpsc::channel::<DataFrame>(100_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let server = tokio::spawn(server::serve_tls(
        listener,
        tokio_rustls::TlsAcceptor::from(server_config),
        sink,
        ServerConfig::default(),
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();

    // Without a client certificate: refused, counted as an i/o error.
    let anonymous =
        tokio_rustls::TlsConnector::from(server::tls_client_config(&pki.cert, None).unwrap());
    let stream = TcpStream::connect(addr).await.unwrap();
    if let Ok(tls) = anonymous.connect(name.clone(), stream).await {
        assert!(
            SenderSession::start(tls, DNSTAP_CONTENT_TYPE, Mode::Bidirectional)
                .await
                .is_err()
        );
    }

    let connector = tokio_rustls::TlsConnector::from(
        server::tls_client_config(&pki.cert, Some((&pki.cert, &pki.key))).unwrap(),
    );
    let stream = TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(name, stream).await.unwrap();
    let expected = resolver_frames();
    let mut sender = SenderSession::start(tls, DNSTAP_CONTENT_TYPE, Mode::Bidirectional)
        .await
        .unwrap();
    for frame in &expected {
        sender.send(frame.clone()).await.unwrap();
    }
    sender.finish().await.unwrap();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match tokio::time::timeout(Duration::from_secs(10), frames.recv()).await {
            Ok(Some(frame)) => {
                assert!(frame.peer.starts_with("tls:127.0.0.1:"));
                got.push(frame.data)
            }
            _ => break,
        }
    }
    assert!(got == expected);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        counter(&metrics, "errors_io"),
        1,
        "{:?}",
        metrics.snapshot()
    );
}

#[tokio::test]
async fn client_mode_reconnects_to_a_listening_sender() {
    let pki = pki();
    let acceptor = tokio_rustls::TlsAcceptor::from(
        server::tls_server_config(&pki.cert, &pki.key, None).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let expected = resolver_frames();
    // The "sender that listens": hangs up on the first connection, serves
    // the frames on the second.
    let sender = {
        let expected = expected.clone();
        tokio::spawn(async move {
            let (first, _) = listener.accept().await.unwrap();
            drop(first);
            let (second, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(second).await.unwrap();
            let mut session = SenderSession::start(tls, DNSTAP_CONTENT_TYPE, Mode::Bidirectional)
                .await
                .unwrap();
            for frame in &expected {
                session.send(frame.clone()).await.unwrap();
            }
            session.finish().await.unwrap();
        })
    };
    let (sink, mut frames) = mpsc::channel::<DataFrame>(100_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let tls = ClientTls {
        connector: tokio_rustls::TlsConnector::from(
            server::tls_client_config(&pki.cert, None).unwrap(),
        ),
        server_name: rustls_pki_types::ServerName::try_from("localhost").unwrap(),
    };
    let config = ClientConfig {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let client = tokio::spawn(server::connect_tcp(
        addr,
        Some(tls),
        sink,
        config,
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match tokio::time::timeout(Duration::from_secs(10), frames.recv()).await {
            Ok(Some(frame)) => got.push(frame.data),
            _ => break,
        }
    }
    assert!(got == expected, "got {} of {}", got.len(), expected.len());
    sender.await.unwrap();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .unwrap()
        .unwrap();
    assert!(counter(&metrics, "connections_accepted") >= 2);
}

#[tokio::test]
async fn outputs_write_text_json_yaml_and_dnstap() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::default());
    let mut dispatcher = Dispatcher::new(LatencyTable::default(), metrics.clone());
    let file = |name: &str, max_size| Target::File {
        path: dir.path().join(name),
        max_size,
        max_files: 3,
    };
    let mut handles = Vec::new();
    for (format, target) in [
        (Format::Text, file("log.txt", 0)),
        (Format::Json, file("log.json", 0)),
        (Format::Yaml, file("log.yaml", 0)),
        (Format::Dnstap, file("out.dnstap", 0)),
        (Format::Dnstap, file("rotated.dnstap", 20_000)),
    ] {
        let mut config = OutputConfig::new(format, target);
        config.queue_size = 100_000;
        handles.push(dispatcher.add_output(config).unwrap());
    }
    let frames = resolver_frames();
    for frame in &frames {
        dispatcher.dispatch(frame.clone()).unwrap();
    }
    drop(dispatcher);
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    assert_eq!(text.lines().count(), frames.len());
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "2026-11-22T03:52:27.548041+00:00 resolver.unbound.test CLIENT_QUERY NOERROR 127.0.0.1 49486 INET UDP 56b host.local.test. A -"
    );
    let second = text.lines().nth(1).unwrap();
    assert!(
        second.contains(" CLIENT_RESPONSE NOERROR 127.0.0.1 49486 INET UDP ")
            && second.ends_with(" host.local.test. A 0.0"),
        "{second}"
    );
    let json = std::fs::read_to_string(dir.path().join("log.json")).unwrap();
    for line in json.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 17);
    }
    let yaml = std::fs::read_to_string(dir.path().join("log.yaml")).unwrap();
    assert_eq!(yaml.matches("---\n").count(), frames.len());
    assert_eq!(common::read_frames(&dir.path().join("out.dnstap")), frames);
    // Rotated dnstap files are each complete Frame Streams files.
    let mut rotated = Vec::new();
    for name in [
        "rotated.dnstap.3",
        "rotated.dnstap.2",
        "rotated.dnstap.1",
        "rotated.dnstap",
    ] {
        let path = dir.path().join(name);
        assert!(path.exists(), "{name}");
        assert!(std::fs::metadata(&path).unwrap().len() <= 20_000);
        rotated.extend(common::read_frames(&path));
    }
    assert!(!rotated.is_empty() && frames.ends_with(&rotated));
    assert_eq!(counter(&metrics, "output_written"), 5 * frames.len() as u64);
    assert_eq!(counter(&metrics, "output_dropped"), 0);
}

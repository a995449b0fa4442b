//! Listener guards: the start-up rule for non-loopback TCP listeners, the
//! idle timeout in the data phase (silent and trickling peers), while a
//! good peer on the same server is served.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsrecall_dnstap::framestream::{Mode, SenderSession};
use dnsrecall_dnstap::server::{self, DataFrame, ListenerSecurity, ServerConfig, check_listener};
use dnsrecall_dnstap::{DNSTAP_CONTENT_TYPE, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const START: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x22\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x16protobuf:dnstap.Dnstap";

#[test]
fn non_loopback_plaintext_listeners_are_refused() {
    let public: SocketAddr = "0.0.0.0:6000".parse().unwrap();
    let lan: SocketAddr = "192.0.2.10:6000".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:6000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let local6: SocketAddr = "[::1]:6000".parse().unwrap();
    let tls_no_ca = ListenerSecurity::Tls {
        client_certificates: false,
    };
    let mtls = ListenerSecurity::Tls {
        client_certificates: true,
    };
    for address in [public, lan, v6] {
        let refused = check_listener(address, ListenerSecurity::Plain, false).unwrap_err();
        assert_eq!(refused.address, address);
        assert!(refused.to_string().contains("allow_public_plaintext"));
        assert!(check_listener(address, tls_no_ca, false).is_err());
        assert!(check_listener(address, mtls, false).is_ok());
        assert!(check_listener(address, ListenerSecurity::Plain, true).is_ok());
    }
    for address in [local, local6] {
        assert!(check_listener(address, ListenerSecurity::Plain, false).is_ok());
    }
}

struct Running {
    address: SocketAddr,
    frames: mpsc::Receiver<DataFrame>,
    metrics: Arc<Metrics>,
    _stop: oneshot::Sender<()>,
}

async fn start(idle: Duration) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (sink, frames) = mpsc::channel::<DataFrame>(10_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let config = ServerConfig {
        idle_timeout: Some(idle),
        handshake_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    tokio::spawn(server::serve_tcp(
        listener,
        sink,
        config,
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        address,
        frames,
        metrics,
        _stop: stop,
    }
}

/// Waits until the server closes `stream`; returns how long that took.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

#[tokio::test]
async fn silent_and_trickling_peers_are_dropped_at_the_idle_timeout() {
    let mut running = start(Duration::from_millis(700)).await;
    let frames =
        common::read_frames(&Path::new(common::DATA).join("unbound/unbound_resolver.dnstap"));

    // Silent after START.
    let mut silent = TcpStream::connect(running.address).await.unwrap();
    silent.write_all(START).await.unwrap();
    // Trickling: one frame announced, its bytes sent one per 200 ms.
    let mut trickle = TcpStream::connect(running.address).await.unwrap();
    trickle.write_all(START).await.unwrap();
    trickle.write_all(&100u32.to_be_bytes()).await.unwrap();
    let trickler = tokio::spawn(async move {
        for _ in 0..20 {
            if trickle.write_all(&[0x0a]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        closed_after(&mut trickle, Duration::from_secs(5)).await
    });

    // A good peer sending steadily is not cut, though it takes longer than
    // the idle timeout in all.
    let good_frames = frames.clone();
    let address = running.address;
    let good = tokio::spawn(async move {
        let stream = TcpStream::connect(address).await.unwrap();
        let mut sender = SenderSession::start(stream, DNSTAP_CONTENT_TYPE, Mode::Bidirectional)
            .await
            .unwrap();
        for chunk in good_frames.chunks(good_frames.len().div_ceil(5)) {
            for frame in chunk {
                sender.send(frame.clone()).await.unwrap();
            }
            sender.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        sender.finish().await.unwrap();
    });

    let waited = closed_after(&mut silent, Duration::from_secs(5))
        .await
        .expect("silent peer not disconnected");
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    let trickled = trickler
        .await
        .unwrap()
        .expect("trickling peer not disconnected");
    assert!(trickled < Duration::from_secs(5));
    good.await.unwrap();

    let mut received = 0;
    while received < frames.len() {
        match tokio::time::timeout(Duration::from_secs(5), running.frames.recv()).await {
            Ok(Some(frame)) => {
                assert_eq!(frame.data, frames[received]);
                received += 1;
            }
            _ => break,
        }
    }
    assert_eq!(received, frames.len(), "good peer's frames");
    assert!(
        common::wait_until(Duration::from_secs(3), || {
            running
                .metrics
                .value("dnsrecall_dnstap_errors_truncated_total")
                .unwrap_or(0)
                >= 2
        })
        .await,
        "{:?}",
        running.metrics.snapshot()
    );
}

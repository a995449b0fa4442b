//! Interop with real peers on loopback: fstrm_replay / fstrm_capture /
//! fstrm_dump (fstrm-bin), dnstap-ldns, and unbound (see unbound.rs).
//! A missing tool fails the test: CI installs them.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dnsrecall_dnstap::framestream::{Mode, SenderSession};
use dnsrecall_dnstap::server::{self, DataFrame, ServerConfig};
use dnsrecall_dnstap::{DNSTAP_CONTENT_TYPE, FileWriter, Metrics};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

struct Running {
    frames: mpsc::Receiver<DataFrame>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    metrics: Arc<Metrics>,
}

impl Running {
    async fn collect(&mut self, count: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        while out.len() < count {
            match tokio::time::timeout(Duration::from_secs(20), self.frames.recv()).await {
                Ok(Some(frame)) => out.push(frame.data),
                _ => break,
            }
        }
        out
    }

    async fn shutdown(self) -> Arc<Metrics> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not shut down")
            .unwrap()
            .unwrap();
        self.metrics
    }
}

fn start_unix(path: &Path) -> Running {
    let listener = server::bind_unix(path, Some(0o600)).unwrap();
    let (sink, frames) = mpsc::channel(100_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let task = tokio::spawn(server::serve_unix(
        listener,
        sink,
        ServerConfig::default(),
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        frames,
        stop,
        task,
        metrics,
    }
}

async fn start_tcp() -> (Running, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, frames) = mpsc::channel(100_000);
    let (stop, stopped) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::default());
    let task = tokio::spawn(server::serve_tcp(
        listener,
        sink,
        ServerConfig::default(),
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    (
        Running {
            frames,
            stop,
            task,
            metrics,
        },
        addr,
    )
}

async fn replay(file: &Path, target: &[&str]) {
    common::require_tool("fstrm_replay", "fstrm-bin");
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("fstrm_replay")
            .args(["-t", DNSTAP_CONTENT_TYPE, "-r"])
            .arg(file)
            .args(target)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("fstrm_replay hung")
    .unwrap();
    assert!(
        output.status.success(),
        "fstrm_replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn fstrm_replay_into_unix_server() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("dnstap.sock");
    let mut running = start_unix(&socket);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for file in common::fstrm_files() {
        let expected = common::read_frames(&file);
        replay(&file, &["-u", socket.to_str().unwrap()]).await;
        let got = running.collect(expected.len()).await;
        assert_eq!(got.len(), expected.len(), "{}", file.display());
        assert!(got == expected, "{}: frames differ", file.display());
    }
    let metrics = running.shutdown().await;
    assert_eq!(
        metrics.value("dnsrecall_dnstap_connections_accepted_total"),
        Some(4)
    );
    // READY, START, STOP per connection.
    assert_eq!(
        metrics.value("dnsrecall_dnstap_control_frames_total"),
        Some(12)
    );
    assert_eq!(
        metrics.value("dnsrecall_dnstap_errors_truncated_total"),
        Some(0)
    );
}

#[tokio::test]
async fn fstrm_replay_into_tcp_server() {
    let (mut running, addr) = start_tcp().await;
    let file = Path::new(common::DATA).join("unbound/unbound_resolver.dnstap");
    let expected = common::read_frames(&file);
    let port = addr.port().to_string();
    replay(&file, &["-a", "127.0.0.1", "-p", &port]).await;
    let got = running.collect(expected.len()).await;
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "frames differ");
    let metrics = running.shutdown().await;
    let bytes: usize = expected.iter().map(|f| f.len()).sum();
    assert_eq!(
        metrics.value("dnsrecall_dnstap_bytes_received_total"),
        Some(bytes as u64)
    );
    assert_eq!(
        metrics.value("dnsrecall_dnstap_frames_received_total"),
        Some(expected.len() as u64)
    );
}

#[tokio::test]
async fn file_writer_output_reads_back_with_fstrm_dump_and_dnstap_ldns() {
    common::require_tool("fstrm_dump", "fstrm-bin");
    common::require_tool("dnstap-ldns", "dnstap-ldns");
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(common::DATA).join("unbound/unbound_auth.dnstap");
    let frames = common::read_frames(&source);
    let out = dir.path().join("out.dnstap");
    let mut writer =
        FileWriter::new(std::fs::File::create(&out).unwrap(), DNSTAP_CONTENT_TYPE).unwrap();
    for frame in &frames {
        writer.write_frame(frame).unwrap();
    }
    writer.finish().unwrap();

    let dump = Command::new("fstrm_dump")
        .arg(&out)
        .stdout(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&dump.stderr);
    assert!(dump.status.success(), "fstrm_dump failed: {stderr}");
    assert_eq!(
        stderr.matches("Data frame").count(),
        frames.len(),
        "{stderr}"
    );
    assert!(stderr.contains("FSTRM_CONTROL_START"));

    let ldns = Command::new("dnstap-ldns")
        .arg("-r")
        .arg(&out)
        .arg("-q")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&ldns.stderr);
    assert!(ldns.status.success(), "dnstap-ldns failed: {stderr}");
    assert!(stderr.trim().is_empty(), "dnstap-ldns complained: {stderr}");
    let text = String::from_utf8_lossy(&ldns.stdout);
    assert_eq!(text.lines().count(), frames.len());
    // Same decoding as the reference text made from the original file.
    let reference =
        std::fs::read_to_string(Path::new(common::DATA).join("unbound/unbound_auth.dnstap.txt"))
            .unwrap();
    assert_eq!(text, reference);
}

#[tokio::test]
async fn sender_into_fstrm_capture() {
    common::require_tool("fstrm_capture", "fstrm-bin");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("capture.sock");
    let out = dir.path().join("captured.dnstap");
    let capture = common::spawn(
        std::process::Command::new("fstrm_capture")
            .args(["-t", DNSTAP_CONTENT_TYPE, "-u"])
            .arg(&socket)
            .arg("-w")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || socket.exists()).await,
        "fstrm_capture did not listen"
    );
    let source = Path::new(common::DATA).join("unbound/unbound_resolver.dnstap");
    let frames = common::read_frames(&source);
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let mut sender = SenderSession::start(stream, DNSTAP_CONTENT_TYPE, Mode::Bidirectional)
        .await
        .unwrap();
    for frame in &frames {
        sender.send(frame.clone()).await.unwrap();
    }
    // finish() returns only after fstrm_capture answered FINISH.
    tokio::time::timeout(Duration::from_secs(10), sender.finish())
        .await
        .expect("no FINISH")
        .unwrap();
    // SIGINT makes fstrm_capture close its output file cleanly.
    let pid = capture.0.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let mut capture = capture;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while capture.0.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let captured = common::read_frames(&out);
    assert_eq!(captured.len(), frames.len());
    assert!(captured == frames, "captured frames differ");
}

//! unbound as a live unidirectional sender (`dnstap-bidirectional: no`) into
//! our unix socket. Fenced like tools/gen_unbound_dnstap.sh: loopback only,
//! never recurses (do-not-query-address for everything), answers from
//! local-data.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsrecall_dnstap::Metrics;
use dnsrecall_dnstap::proto::{MessageKind, decode_dnstap, message};
use dnsrecall_dnstap::server::{self, DataFrame, ServerConfig};
use tokio::sync::{mpsc, oneshot};

fn free_port() -> u16 {
    // Both protocols free on the same port; the tiny race is acceptable.
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[tokio::test]
async fn unbound_unidirectional_into_unix_server() {
    common::require_tool("unbound", "unbound");
    common::require_tool("kdig", "knot-dnsutils");
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let socket = work.join("dnstap.sock");
    let listener = server::bind_unix(&socket, Some(0o666)).unwrap();
    let (sink, mut frames) = mpsc::channel::<DataFrame>(10_000);
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

    let port = free_port();
    std::fs::write(work.join("empty.hints"), "").unwrap();
    let config = format!(
        r#"server:
  verbosity: 1
  interface: 127.0.0.1@{port}
  port: {port}
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  access-control: 127.0.0.0/8 allow
  chroot: ""
  username: ""
  directory: "{dir}"
  pidfile: "{dir}/unbound.pid"
  use-syslog: no
  logfile: "{dir}/unbound.log"
  module-config: "iterator"
  do-not-query-localhost: yes
  do-not-query-address: 0.0.0.0/0
  do-not-query-address: ::/0
  root-hints: "{dir}/empty.hints"
  hide-identity: no
  local-zone: "test." nodefault
  local-zone: "example.test." static
  local-data: "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"
  local-data: "www.example.test. 300 IN A 192.0.2.10"
remote-control:
  control-enable: no
dnstap:
  dnstap-enable: yes
  dnstap-bidirectional: no
  dnstap-socket-path: "{sock}"
  dnstap-send-identity: yes
  dnstap-send-version: yes
  dnstap-identity: "live.unbound.test"
  dnstap-log-client-query-messages: yes
  dnstap-log-client-response-messages: yes
"#,
        dir = work.display(),
        sock = socket.display(),
    );
    let conf = work.join("unbound.conf");
    std::fs::write(&conf, config).unwrap();
    let _unbound = common::spawn(
        std::process::Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );

    let target = "@127.0.0.1".to_string();
    let port_arg = port.to_string();
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered < 3 && Instant::now() < deadline {
        let out = tokio::process::Command::new("kdig")
            .args([
                target.as_str(),
                "-p",
                &port_arg,
                "+time=1",
                "+retry=0",
                "www.example.test",
                "A",
            ])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("192.0.2.10") {
            answered += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let log = std::fs::read_to_string(work.join("unbound.log")).unwrap_or_default();
    assert_eq!(answered, 3, "unbound did not answer; log:\n{log}");

    let mut responses = 0;
    let mut queries = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while responses < 3 && Instant::now() < deadline {
        let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(1), frames.recv()).await
        else {
            continue;
        };
        assert!(frame.peer.starts_with("unix:"));
        let tap = decode_dnstap(frame.data).unwrap();
        assert_eq!(tap.identity.as_deref(), Some(&b"live.unbound.test"[..]));
        let m = tap.message.unwrap();
        match m.kind() {
            MessageKind::Known(message::Type::ClientResponse) => {
                assert!(m.response_message.is_some());
                responses += 1;
            }
            MessageKind::Known(message::Type::ClientQuery) => queries += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        responses >= 3 && queries >= 3,
        "{queries} queries, {responses} responses"
    );
    drop(_unbound);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        metrics.value("dnsrecall_dnstap_errors_content_type_total"),
        Some(0)
    );
    assert!(
        metrics
            .value("dnsrecall_dnstap_connections_accepted_total")
            .unwrap()
            >= 1
    );
}

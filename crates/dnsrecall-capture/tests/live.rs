//! Live capture on the loopback interface (needs root or CAP_NET_RAW and
//! libpcap). Loopback only: the test sends to 127.0.0.1.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use dnsrecall_capture::live::{LiveCapture, LiveConfig};
use dnsrecall_capture::{CaptureConfig, Metrics, Transport};

#[test]
fn loopback_udp_messages_come_out() {
    // Bind first so the port is free and the packets are accepted.
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind server");
    let port = server.local_addr().expect("addr").port();
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
    let client_port = client.local_addr().expect("addr").port();

    let mut live = LiveConfig::new("lo");
    live.filter = format!("udp port {port}");
    live.promiscuous = false;
    let config = CaptureConfig::with_ports([port]);
    let metrics = Arc::new(Metrics::new());
    let capture =
        LiveCapture::start(&live, &config, metrics.clone()).expect("open lo (run as root)");

    let mut sent = Vec::new();
    for id in [0x1111u16, 0x2222, 0x3333] {
        let mut msg = vec![0u8; 12];
        msg[0..2].copy_from_slice(&id.to_be_bytes());
        msg[2] = 0x01; // RD, query
        msg[5] = 1;
        msg.extend_from_slice(b"\x07example\x04test\x00\x00\x01\x00\x01");
        sent.push(msg);
    }
    // On a loaded machine the first packets can race the ring's activation:
    // resend (bounded) until each message was seen once, keeping the first
    // copy of each.
    let mut got: Vec<Option<_>> = vec![None; sent.len()];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut resends = 0;
    while got.iter().any(Option::is_none) {
        assert!(
            std::time::Instant::now() < deadline,
            "messages not captured after {resends} sends: {got:?}"
        );
        for msg in &sent {
            client.send_to(msg, ("127.0.0.1", port)).expect("send");
        }
        resends += 1;
        while let Ok(p) = capture.recv_timeout(Duration::from_millis(500)) {
            if let Some(index) = sent.iter().position(|m| m[..] == p.message[..]) {
                got[index].get_or_insert(p);
            }
        }
    }
    let got: Vec<_> = got.into_iter().flatten().collect();
    for (p, msg) in got.iter().zip(&sent) {
        assert_eq!(&p.message[..], &msg[..]);
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!((p.sport, p.dport), (client_port, port));
        assert_eq!(p.src.to_string(), "127.0.0.1");
        assert_eq!(p.interface.as_deref(), Some("lo"));
        assert_eq!(p.is_response(), Some(false));
    }
    capture.stop().expect("stop");
    assert!(metrics.get("live_received").unwrap_or(0) >= 3);
    assert!(metrics.get("dns_messages").unwrap_or(0) >= 3);
}

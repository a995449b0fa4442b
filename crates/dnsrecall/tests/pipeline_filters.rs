//! Filters of a running server: a deny list applied to dnstap traffic
//! replayed by the real `fstrm_replay`, edited while the server runs (new
//! list applied without a restart), then broken (the previous list stays).

mod util;

use std::process::Command;
use std::time::{Duration, Instant};

use util::{TestDir, test_data};

fn replay(file: &std::path::Path, port: u16) {
    let status = Command::new("fstrm_replay")
        .args([
            "-t",
            "protobuf:dnstap.Dnstap",
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-r",
        ])
        .arg(file)
        .status()
        .expect("run fstrm_replay (apt-get install fstrm-bin; scripts/test.sh does)");
    assert!(status.success(), "fstrm_replay failed");
}

/// Waits until `/query/{name}` has `want` records (or the deadline).
fn wait_records(server: &util::Server, name: &str, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = server.get(&format!("/query/{name}"), &[]).lines().len();
        if found == want || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn deny_list_edits_apply_while_serving() {
    let dir = TestDir::new();
    let deny = dir.path("deny.list");
    std::fs::write(&deny, "# noise\nsubdomain:google.com\n").unwrap();
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!(
            "[pipeline.filter]\ndeny = [\"{}\"]\npoll_interval_ms = 100\n[pipeline.dedup]\nflush_interval_secs = 1\n",
            deny.display()
        ),
    )
    .unwrap();
    let dnstap_port = util::free_port();
    let listen = format!("127.0.0.1:{dnstap_port}");
    let server = dir.serve(&[
        "--config",
        config.to_str().unwrap(),
        "--dnstap-tcp",
        &listen,
    ]);
    let file = test_data().join("dnstap/go-dnscollector/dnstap.fstrm");

    replay(&file, dnstap_port);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        wait_records(&server, "www.google.com", 0),
        0,
        "denied names must not be stored"
    );
    // The decisions are visible at /metrics (Prometheus text format).
    let metrics = server.get("/metrics", &[]);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        metrics.headers
    );
    let value = |name: &str| -> u64 {
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{}", metrics.body))
    };
    assert!(value("dnsrecall_pipeline_filter_dropped_denied_name_total") > 0);
    assert!(value("dnsrecall_dnstap_frames_received_total") > 0);
    assert!(
        metrics
            .body
            .contains("# TYPE dnsrecall_pipeline_dedup_entries gauge")
    );

    // Edit the list while the server runs: google.com is allowed again.
    std::fs::write(&deny, "subdomain:example.invalid\n").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    replay(&file, dnstap_port);
    let stored = wait_records(&server, "www.google.com", 1);
    assert_eq!(stored, 1, "after the edit the record is stored");

    // A broken list keeps the previous one (google.com still allowed).
    std::fs::write(&deny, "regex:([unclosed\n").unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    replay(&file, dnstap_port);
    std::thread::sleep(Duration::from_millis(2500));
    let record = &server.get("/query/www.google.com", &[]).lines()[0];
    assert_eq!(
        record["count"], 2,
        "the second replay after the broken edit was stored too: {record}"
    );
    assert!(server.stop());
}

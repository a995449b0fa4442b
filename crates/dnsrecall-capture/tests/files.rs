//! Capture file handling: gzip, pcapng (made with editcap), truncation,
//! sniffing and hostile input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use dnsrecall_capture::{
    CaptureError, CaptureFormat, Metrics, PcapFileReader, sniff_capture, sniff_file,
};

fn gzip(src: &Path, dst: &Path) {
    let data = std::fs::read(src).expect("read capture");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data).expect("gzip");
    std::fs::write(dst, gz.finish().expect("gzip finish")).expect("write gz");
}

fn to_pcapng(src: &Path, dst: &Path) {
    let status = Command::new("editcap")
        .args(["-F", "pcapng"])
        .arg(src)
        .arg(dst)
        .status()
        .expect("editcap is required (apt-get install -y wireshark-common)");
    assert!(status.success());
}

fn keys(path: &Path) -> Vec<MsgKey> {
    let (payloads, errors) = read_all(path, &reference_config());
    assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    payloads.iter().map(key_of).collect()
}

#[test]
fn gzip_and_pcapng_variants_read_the_same() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for name in [
        "go-dnscollector/dnsdump_udp_truncated+tcp_fragmented.pcap",
        "go-dnscollector/dnsdump_ip6_fragmented+udp.pcap",
        "unbound/unbound_lo.pcap",
    ] {
        let src = Path::new(DATA).join(name);
        let base = src
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("x")
            .to_string();
        let plain = keys(&src);
        assert!(!plain.is_empty());
        let gz: PathBuf = tmp.path().join(format!("{base}.pcap.gz"));
        gzip(&src, &gz);
        let ng = tmp.path().join(format!("{base}.pcapng"));
        to_pcapng(&src, &ng);
        let ng_gz = tmp.path().join(format!("{base}.pcapng.gz"));
        gzip(&ng, &ng_gz);

        assert_eq!(sniff_file(&src).ok().flatten(), Some(CaptureFormat::Pcap));
        assert_eq!(
            sniff_file(&gz).ok().flatten(),
            Some(CaptureFormat::GzipPcap)
        );
        assert_eq!(sniff_file(&ng).ok().flatten(), Some(CaptureFormat::PcapNg));
        assert_eq!(
            sniff_file(&ng_gz).ok().flatten(),
            Some(CaptureFormat::GzipPcapNg)
        );
        for variant in [&gz, &ng, &ng_gz] {
            assert_eq!(keys(variant), plain, "{}", variant.display());
        }
    }
}

#[test]
fn truncated_file_yields_messages_before_the_cut_and_one_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = Path::new(DATA).join("go-dnscollector/dnsdump_udp.pcap");
    let full = keys(&src);
    let data = std::fs::read(&src).expect("read");
    // Cut 10 bytes into the last record: the last frame is lost.
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &data[..data.len() - 10]).expect("write");
    let metrics = Arc::new(Metrics::new());
    let items: Vec<_> =
        PcapFileReader::open_with_metrics(&cut, &reference_config(), metrics.clone())
            .expect("open")
            .collect();
    let (ok, err): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    let got: Vec<MsgKey> = ok
        .into_iter()
        .filter_map(Result::ok)
        .map(|p| key_of(&p))
        .collect();
    assert_eq!(got, full[..full.len() - 1]);
    assert_eq!(err.len(), 1);
    assert!(
        matches!(err[0], Err(CaptureError::Truncated { packets: 32, .. })),
        "{err:?}"
    );
    assert_eq!(metrics.get("file_errors"), Some(1));

    // Cut inside the gzip stream too.
    let gz = tmp.path().join("full.pcap.gz");
    gzip(&src, &gz);
    let gz_data = std::fs::read(&gz).expect("read gz");
    let gz_cut = tmp.path().join("cut.pcap.gz");
    std::fs::write(&gz_cut, &gz_data[..gz_data.len() * 2 / 3]).expect("write");
    let items: Vec<_> = PcapFileReader::open(&gz_cut, &reference_config())
        .expect("open")
        .collect();
    assert!(
        items.last().is_some_and(Result::is_err),
        "ends with an error"
    );
    assert!(items.iter().filter(|r| r.is_err()).count() == 1);
    assert!(items.len() > 1, "messages before the cut are delivered");
}

#[test]
fn not_a_capture_and_hostile_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let junk = tmp.path().join("junk.bin");
    std::fs::write(&junk, b"this is not a capture at all, just text\n").expect("write");
    assert!(matches!(
        PcapFileReader::open(&junk, &reference_config()),
        Err(CaptureError::NotACapture { .. })
    ));
    assert_eq!(sniff_file(&junk).ok().flatten(), None);
    assert!(matches!(
        PcapFileReader::open(tmp.path().join("missing.pcap"), &reference_config()),
        Err(CaptureError::Io { .. })
    ));

    // A valid header followed by pseudo-random records and a huge caplen.
    let src = Path::new(DATA).join("tcpdump/dns_udp.pcap");
    let mut data = std::fs::read(&src).expect("read")[..24].to_vec();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    data.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f,
    ]);
    let hostile = tmp.path().join("hostile.pcap");
    std::fs::write(&hostile, &data).expect("write");
    let items: Vec<_> = PcapFileReader::open(&hostile, &reference_config())
        .expect("open")
        .collect();
    assert!(items.iter().filter(|r| r.is_err()).count() <= 1);

    assert_eq!(sniff_capture(&data), Some(CaptureFormat::Pcap));
}

/// Fuzz finding 7: a short file whose record header claims a block far
/// larger than the file is a truncated file, recognised without growing
/// the read buffer towards its 64 MiB cap (which reported it as corrupt).
#[test]
fn short_file_claiming_a_huge_block_is_truncated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = Path::new(DATA).join("tcpdump/dns_udp.pcap");
    let mut data = std::fs::read(&src).expect("read")[..24].to_vec();
    // ts_sec, ts_usec, caplen = origlen = 2^31 - 1, then 8 bytes of packet.
    data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    data.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    data.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    data.extend_from_slice(&[0xab; 8]);
    let short = tmp.path().join("short.pcap");
    std::fs::write(&short, &data).expect("write");
    let items: Vec<_> = PcapFileReader::open(&short, &reference_config())
        .expect("open")
        .collect();
    assert_eq!(items.len(), 1, "one error, no packets: {items:?}");
    assert!(
        matches!(items[0], Err(CaptureError::Truncated { packets: 0, .. })),
        "{items:?}"
    );
}

//! Every dnstap file of the shared test data decodes to its reference
//! (`*.expected.jsonl`, made by tools/dnstap_extract.py).

mod common;

use std::path::Path;

use bytes::Bytes;
use dnsrecall_dnstap::dns::name_to_text;
use dnsrecall_dnstap::proto::{self, Dnstap, MessageKind, decode_dnstap};
use serde_json::{Value, json};

fn ip_text(bytes: &Option<Bytes>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match proto::ip_address(b, None) {
            Some(ip) => json!(ip.to_string()),
            None => json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        },
    }
}

fn time_text(sec: Option<u64>, nsec: Option<u32>) -> Value {
    sec.map_or(Value::Null, |s| {
        json!(format!("{s}.{:09}", nsec.unwrap_or(0)))
    })
}

/// Our decoding in the reference's shape.
fn describe(index: usize, tap: &Dnstap) -> Value {
    let lossy = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let mut out = json!({"kind": "dnstap", "frame": index});
    let object = out.as_object_mut().unwrap();
    if let Some(identity) = &tap.identity {
        object.insert("identity".into(), json!(lossy(identity)));
    }
    if let Some(version) = &tap.version {
        object.insert("version".into(), json!(lossy(version)));
    }
    if let Some(extra) = &tap.extra {
        let hex: String = extra.iter().map(|x| format!("{x:02x}")).collect();
        object.insert("extra".into(), json!(hex));
    }
    object.insert(
        "dnstap_type".into(),
        if tap.r#type == 1 {
            json!("MESSAGE")
        } else {
            json!(tap.r#type)
        },
    );
    if let Some(m) = &tap.message {
        let kind = match m.kind() {
            MessageKind::Known(t) => json!(t.name()),
            MessageKind::Unknown(v) => json!(v),
        };
        object.insert("type".into(), kind);
        object.insert(
            "socket_family".into(),
            m.family().map_or(Value::Null, |f| json!(f.name())),
        );
        object.insert(
            "socket_protocol".into(),
            m.protocol().map_or(Value::Null, |p| json!(p.name())),
        );
        object.insert("query_address".into(), ip_text(&m.query_address));
        object.insert("response_address".into(), ip_text(&m.response_address));
        object.insert("query_port".into(), json!(m.query_port));
        object.insert("response_port".into(), json!(m.response_port));
        object.insert(
            "query_time".into(),
            time_text(m.query_time_sec, m.query_time_nsec),
        );
        object.insert(
            "response_time".into(),
            time_text(m.response_time_sec, m.response_time_nsec),
        );
        if let Some(zone) = &m.query_zone {
            object.insert("query_zone".into(), json!(name_to_text(zone)));
        }
        object.insert("has_query_message".into(), json!(m.query_message.is_some()));
        object.insert(
            "has_response_message".into(),
            json!(m.response_message.is_some()),
        );
    }
    out
}

fn check_frames(path: &Path, frames: &[Bytes], expected: &[Value]) {
    let reference: Vec<&Value> = expected.iter().filter(|l| l["kind"] == "dnstap").collect();
    assert_eq!(reference.len(), frames.len(), "{}", path.display());
    for (index, (frame, want)) in frames.iter().zip(reference).enumerate() {
        let tap = decode_dnstap(frame.clone())
            .unwrap_or_else(|e| panic!("{} frame {}: {e}", path.display(), index + 1));
        assert_eq!(
            &describe(index + 1, &tap),
            want,
            "{} frame {}",
            path.display(),
            index + 1
        );
    }
}

#[test]
fn frame_streams_files_match_reference() {
    let mut total = 0;
    for path in common::fstrm_files() {
        let frames = common::read_frames(&path);
        let expected = common::expected_lines(&path);
        assert_eq!(expected[0]["kind"], "fstrm");
        assert_eq!(expected[0]["content_type"], "protobuf:dnstap.Dnstap");
        assert_eq!(
            expected[0]["frames"],
            json!(frames.len()),
            "{}",
            path.display()
        );
        check_frames(&path, &frames, &expected);
        total += frames.len();
    }
    assert!(total > 1000, "only {total} frames");
}

#[test]
fn file_reader_reports_content_type_and_works_through_any_read() {
    let path = Path::new(common::DATA).join("go-dnscollector/dnstap.fstrm");
    let bytes = std::fs::read(&path).unwrap();
    // One byte per read() call: the reader must reassemble.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }
    let mut reader =
        dnsrecall_dnstap::FileReader::with_config(Trickle(&bytes), &Default::default());
    let first = reader.next_data().unwrap().unwrap();
    assert_eq!(reader.content_type(), Some(&b"protobuf:dnstap.Dnstap"[..]));
    assert!(!first.is_empty());
    assert!(reader.next_data().unwrap().is_some());
    assert!(reader.next_data().unwrap().is_none());
    // Cut in the middle of the last frame: a typed error, not a panic.
    let cut = &bytes[..bytes.len() - 20];
    let result: Result<Vec<_>, _> = dnsrecall_dnstap::FileReader::new(cut).collect();
    assert!(matches!(
        result,
        Err(dnsrecall_dnstap::FrameError::Truncated { .. })
    ));
}

#[test]
fn bare_bind9_protobufs_match_reference() {
    let dir = Path::new(common::DATA).join("bind9");
    let mut checked = 0;
    for name in [
        "correct_query_nanosec.dnstap",
        "correct_response_nanosec.dnstap",
        "invalid_message_type.dnstap",
        "query_time_nanosec_big.dnstap",
        "response_time_nanosec_big.dnstap",
    ] {
        let path = dir.join(name);
        let frame = Bytes::from(std::fs::read(&path).unwrap());
        let expected = common::expected_lines(&path);
        check_frames(&path, &[frame], &expected);
        checked += 1;
    }
    assert_eq!(checked, 5);
    let invalid = decode_dnstap(Bytes::from(
        std::fs::read(dir.join("invalid_message_type.dnstap")).unwrap(),
    ))
    .unwrap();
    let message = invalid.message.unwrap();
    assert_eq!(message.kind(), MessageKind::Unknown(255));
    // The message log still renders it.
    let view = dnsrecall_dnstap::output::MessageView::new(
        &decode_dnstap(Bytes::from(
            std::fs::read(dir.join("invalid_message_type.dnstap")).unwrap(),
        ))
        .unwrap(),
        None,
    )
    .unwrap();
    assert!(view.to_text().contains(" 255 "), "{}", view.to_text());
}

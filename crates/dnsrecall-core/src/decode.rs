//! DNS responses → passive DNS observations.
//!
//! A response is parsed with `domain` (zero-copy, compression pointers
//! followed in place and bounded), and each answer and authority record,
//! plus additional records where the bailiwick allows, becomes an [`Entry`]
//! seen once at the response time. A message is taken whole or not at all:
//! if any record is malformed, nothing of it is kept, because a message that
//! lies about its own structure cannot be trusted for any of its records.

use std::sync::Arc;

use domain::base::iana::Class;
use domain::base::message::Message;
use domain::base::name::ParsedName;
use domain::base::rdata::ComposeRecordData;
use domain::rdata::ZoneRecordData;

use crate::name::Name;
use crate::rdata::Rtype;
use crate::record::{Entry, Rdata, Record, Seen};

/// Which additional-section records to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdditionalPolicy {
    /// Keep additional records whose owner is inside the bailiwick; keep all
    /// of them when the bailiwick is unknown (verification comes later).
    #[default]
    InBailiwick,
    /// Keep every additional record.
    Always,
    /// Drop the additional section.
    Never,
}

/// What is known about a response besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct ResponseContext {
    /// When the response was seen (epoch seconds).
    pub time: u64,
    /// The sensor that saw it (dnstap identity, capture interface, ...).
    pub sensor_id: Option<Arc<str>>,
    /// The zone the responding server was asked about (dnstap
    /// `query_zone`), used as bailiwick: records of any section whose owner
    /// is not at or below it are dropped (and counted), since that server
    /// cannot vouch for them.
    pub bailiwick: Option<Name>,
    pub additional: AdditionalPolicy,
}

/// Why a message was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a DNS header.
    #[error("message shorter than a DNS header")]
    ShortMessage,
    /// The QR bit is clear.
    #[error("not a response")]
    NotResponse,
    /// The question section does not parse.
    #[error("malformed question section")]
    BadQuestion,
    /// A record does not parse (bad lengths, bad or looping compression).
    #[error("malformed resource record")]
    BadRecord,
    /// Record data does not parse for its type.
    #[error("malformed record data")]
    BadRdata,
    /// Bytes remain after the last section.
    #[error("trailing bytes after the last record")]
    TrailingBytes,
}

impl DecodeError {
    /// A short stable label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::ShortMessage => "short_message",
            DecodeError::NotResponse => "not_response",
            DecodeError::BadQuestion => "bad_question",
            DecodeError::BadRecord => "bad_record",
            DecodeError::BadRdata => "bad_rdata",
            DecodeError::TrailingBytes => "trailing_bytes",
        }
    }
}

/// What a decoded response held besides the entries it produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    /// The response code.
    pub rcode: u8,
    /// The header's RD bit: recursion was asked for, so the answer came
    /// from a recursive resolver or forwarder (stub traffic).
    pub recursion_desired: bool,
    /// The name of the first question, if any.
    pub qname: Option<Name>,
    /// Records emitted.
    pub records: usize,
    /// Records skipped because their class is not IN.
    pub skipped_class: usize,
    /// Additional records skipped by the additional policy.
    pub skipped_additional: usize,
    /// Records outside the known bailiwick (possible cache poisoning).
    pub skipped_out_of_bailiwick: usize,
}

/// Decodes a DNS response, appending its records to `out`. On error, `out`
/// is left as it was.
pub fn decode_response(
    wire: &[u8],
    context: &ResponseContext,
    out: &mut Vec<Entry>,
) -> Result<DecodeSummary, DecodeError> {
    let message = Message::from_octets(wire).map_err(|_| DecodeError::ShortMessage)?;
    let header = message.header();
    if !header.qr() {
        return Err(DecodeError::NotResponse);
    }
    let start = out.len();
    let result = decode_sections(&message, context, out);
    if result.is_err() {
        out.truncate(start);
    }
    result.map(|mut summary| {
        summary.rcode = header.rcode().to_int();
        summary.recursion_desired = header.rd();
        summary
    })
}

fn decode_sections(
    message: &Message<&[u8]>,
    context: &ResponseContext,
    out: &mut Vec<Entry>,
) -> Result<DecodeSummary, DecodeError> {
    let mut summary = DecodeSummary::default();
    let mut question = message.question();
    for item in &mut question {
        let item = item.map_err(|_| DecodeError::BadQuestion)?;
        if summary.qname.is_none() {
            summary.qname = Some(
                Name::from_labels(
                    item.qname()
                        .iter()
                        .filter(|l| !l.is_root())
                        .map(|l| l.as_slice()),
                )
                .map_err(|_| DecodeError::BadQuestion)?,
            );
        }
    }
    let mut section = question.answer().map_err(|_| DecodeError::BadQuestion)?;
    let mut index = 0;
    let mut rdata_buffer = Vec::with_capacity(64);
    loop {
        let is_additional = index == 2;
        for record in &mut section {
            let record = record.map_err(|_| DecodeError::BadRecord)?;
            let rtype = Rtype(record.rtype().to_int());
            if rtype == Rtype::OPT || rtype == Rtype::TSIG || rtype.0 == 249 {
                // Pseudo-records (EDNS, TSIG, TKEY) describe the message.
                continue;
            }
            let parsed = record
                .to_record::<ZoneRecordData<&[u8], ParsedName<&[u8]>>>()
                .map_err(|_| DecodeError::BadRdata)?;
            if record.class() != Class::IN {
                summary.skipped_class += 1;
                continue;
            }
            let owner = record.owner();
            let rrname =
                Name::from_labels(owner.iter().filter(|l| !l.is_root()).map(|l| l.as_slice()))
                    .map_err(|_| DecodeError::BadRecord)?;
            if context
                .bailiwick
                .as_ref()
                .is_some_and(|zone| !rrname.is_subdomain_of(zone))
            {
                if is_additional {
                    summary.skipped_additional += 1;
                } else {
                    summary.skipped_out_of_bailiwick += 1;
                }
                continue;
            }
            if is_additional && !keep_additional(&rrname, context) {
                summary.skipped_additional += 1;
                continue;
            }
            rdata_buffer.clear();
            match parsed {
                Some(parsed) => parsed
                    .data()
                    .compose_canonical_rdata(&mut rdata_buffer)
                    .map_err(|_| DecodeError::BadRdata)?,
                None => return Err(DecodeError::BadRdata),
            }
            let mut seen = Seen::once(context.time);
            seen.sensor_id.clone_from(&context.sensor_id);
            out.push(Entry {
                record: Record {
                    rrname,
                    rrtype: rtype,
                    bailiwick: context.bailiwick.clone(),
                    rdata: Rdata::Wire(rdata_buffer.as_slice().into()),
                },
                seen,
            });
            summary.records += 1;
        }
        index += 1;
        match section.next_section().map_err(|_| DecodeError::BadRecord)? {
            Some(next) => section = next,
            None => break,
        }
    }
    Ok(summary)
}

fn keep_additional(rrname: &Name, context: &ResponseContext) -> bool {
    match context.additional {
        AdditionalPolicy::Always => true,
        AdditionalPolicy::Never => false,
        AdditionalPolicy::InBailiwick => match &context.bailiwick {
            Some(zone) => rrname.is_subdomain_of(zone),
            None => true,
        },
    }
}

/// The response code and question of a message, for logs and counters;
/// `None` if the header or question does not parse.
pub fn peek_question(wire: &[u8]) -> Option<(u8, Name, Rtype)> {
    let message = Message::from_octets(wire).ok()?;
    let question = message.first_question()?;
    let qname = Name::from_labels(
        question
            .qname()
            .iter()
            .filter(|l| !l.is_root())
            .map(|l| l.as_slice()),
    )
    .ok()?;
    Some((
        message.header().rcode().to_int(),
        qname,
        Rtype(question.qtype().to_int()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built response: www.example.com A 192.0.2.1 (answer, with a
    /// compression pointer to the question), example.com NS
    /// ns1.example.com (authority), ns1.example.com A 192.0.2.53 and
    /// other.net A 198.51.100.1 (additional).
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 1, 0, 2];
        m.extend_from_slice(b"\x03www\x07Example\x03com\x00\x00\x01\x00\x01");
        // answer: pointer to offset 12
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        // authority: example.com (pointer to 16) NS ns1 + pointer 16
        m.extend_from_slice(&[
            0xc0, 16, 0, 2, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'n', b's', b'1', 0xc0, 16,
        ]);
        let ns1 = m.len() - 6;
        m.extend_from_slice(&[
            0xc0, ns1 as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53,
        ]);
        m.extend_from_slice(b"\x05other\x03net\x00");
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 1]);
        m
    }

    #[test]
    fn decodes_sections_and_decompresses() {
        let mut out = Vec::new();
        let context = ResponseContext {
            time: 100,
            ..Default::default()
        };
        let summary = decode_response(&response(), &context, &mut out).unwrap();
        assert_eq!(summary.records, 4);
        // Flags 0x8180: QR, RD, RA.
        assert!(summary.recursion_desired);
        assert_eq!(
            summary.qname.map(|q| q.to_string()).as_deref(),
            Some("www.example.com.")
        );
        let texts: Vec<String> = out
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e.record.rrname,
                    e.record.rrtype,
                    e.record.rdata_text()
                )
            })
            .collect();
        assert_eq!(
            texts,
            [
                "www.example.com. A 192.0.2.1",
                "example.com. NS ns1.example.com.",
                "ns1.example.com. A 192.0.2.53",
                "other.net. A 198.51.100.1"
            ]
        );
        assert_eq!(
            out[1].record.rdata.wire().unwrap(),
            b"\x03ns1\x07example\x03com\x00"
        );
    }

    #[test]
    fn additional_respects_bailiwick() {
        let mut out = Vec::new();
        let context = ResponseContext {
            time: 1,
            bailiwick: Some(Name::from_presentation("example.com").unwrap()),
            ..Default::default()
        };
        let summary = decode_response(&response(), &context, &mut out).unwrap();
        assert_eq!(summary.records, 3);
        assert_eq!(summary.skipped_additional, 1);
        assert!(out.iter().all(|e| e.record.bailiwick == context.bailiwick));
    }

    #[test]
    fn out_of_bailiwick_answers_are_dropped() {
        let mut out = Vec::new();
        let context = ResponseContext {
            time: 1,
            bailiwick: Some(Name::from_presentation("www.example.com").unwrap()),
            ..Default::default()
        };
        let summary = decode_response(&response(), &context, &mut out).unwrap();
        assert_eq!(summary.records, 1);
        assert_eq!(
            summary.skipped_out_of_bailiwick, 1,
            "example.com NS is above www.example.com"
        );
        assert_eq!(summary.skipped_additional, 2);
    }

    #[test]
    fn rejects_malformed_whole() {
        let mut out = Vec::new();
        let context = ResponseContext::default();
        assert_eq!(
            decode_response(&[0; 5], &context, &mut out),
            Err(DecodeError::ShortMessage)
        );
        let mut query = response();
        query[2] = 0x01;
        assert_eq!(
            decode_response(&query, &context, &mut out),
            Err(DecodeError::NotResponse)
        );
        // Truncate inside the additional section: nothing is kept.
        let full = response();
        assert!(decode_response(&full[..full.len() - 3], &context, &mut out).is_err());
        assert!(out.is_empty());
        // A compression pointer that points to itself.
        let mut looping = response();
        let answer_start = 12 + 21;
        looping[answer_start + 1] = answer_start as u8;
        assert!(decode_response(&looping, &context, &mut out).is_err());
        assert!(out.is_empty());
    }

    proptest::proptest! {
        /// Any bytes: decoded or refused, never a panic; a refusal leaves
        /// the output as it was, a success counts what it emitted.
        #[test]
        fn any_bytes_are_answered(wire in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            match decode_response(&wire, &ResponseContext::default(), &mut out) {
                Ok(summary) => proptest::prop_assert_eq!(summary.records, out.len()),
                Err(_) => proptest::prop_assert!(out.is_empty()),
            }
            let _ = peek_question(&wire);
        }

        /// A real response with bytes flipped: still answered, and entries
        /// appended after existing ones are never lost on failure.
        #[test]
        fn mutated_responses_are_answered(flips in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 1..8)) {
            let mut wire = response();
            for (at, byte) in flips {
                let at = at % wire.len();
                wire[at] = byte;
            }
            let mut out = Vec::new();
            let before = decode_response(&response(), &ResponseContext::default(), &mut out).map(|s| s.records);
            proptest::prop_assert!(before.is_ok());
            let kept = out.len();
            match decode_response(&wire, &ResponseContext::default(), &mut out) {
                Ok(summary) => proptest::prop_assert_eq!(out.len(), kept + summary.records),
                Err(_) => proptest::prop_assert_eq!(out.len(), kept),
            }
        }
    }
}

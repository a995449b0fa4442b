//! Passive DNS Common Output Format (draft-dulaunoy-dnsop-passive-dns-cof):
//! one JSON object per line, read leniently and written strictly.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::name::{Name, NameError};
use crate::rdata::Rtype;
use crate::record::{Entry, Rdata, Record, Seen};

/// Why a COF line was rejected. `Copy`, so counting by reason is cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CofError {
    /// Not valid JSON, or not an object.
    #[error("not a JSON object")]
    Json,
    /// A mandatory field is absent or null.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// `rrname` is not a domain name.
    #[error("bad rrname: {0}")]
    Rrname(NameError),
    /// `bailiwick` is not a domain name.
    #[error("bad bailiwick: {0}")]
    Bailiwick(NameError),
    /// `rrtype` is neither a known mnemonic, `TYPEnnn`, nor a number < 65536.
    #[error("bad rrtype")]
    Rrtype,
    /// `rdata` is not a string or a non-empty array of strings.
    #[error("bad rdata")]
    Rdata,
    /// A time field is not a non-negative integer.
    #[error("bad {0}")]
    Time(&'static str),
    /// `count` is not a non-negative integer.
    #[error("bad count")]
    Count,
}

impl CofError {
    /// A short stable label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            CofError::Json => "invalid_json",
            CofError::Missing(_) => "missing_field",
            CofError::Rrname(_) => "bad_rrname",
            CofError::Bailiwick(_) => "bad_bailiwick",
            CofError::Rrtype => "bad_rrtype",
            CofError::Rdata => "bad_rdata",
            CofError::Time(_) => "bad_time",
            CofError::Count => "bad_count",
        }
    }
}

// Field types with hand-written visitors: `#[serde(untagged)]` enums buffer
// every value and retry each variant, which was the largest cost of parsing
// a COF line.

/// A COF number: an integer, a float (truncated), a digit string (lenient)
/// or anything else (rejected later with the field's name).
enum Number {
    Int(u64),
    Float(f64),
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number::Int(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(u64::try_from(v).map_or(Number::Other, Number::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Number, E> {
                Ok(Number::Text(v.to_string()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Number, E> {
                Ok(Number::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Number, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Number::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Number, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Number::Other)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `rrtype`: a mnemonic or a number.
enum RrtypeIn {
    Text(String),
    Number(u64),
    Other,
}

impl<'de> Deserialize<'de> for RrtypeIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Number::deserialize(deserializer)? {
            Number::Int(n) => RrtypeIn::Number(n),
            Number::Text(text) => RrtypeIn::Text(text),
            Number::Float(_) | Number::Other => RrtypeIn::Other,
        })
    }
}

/// `rdata`: a string or an array of strings.
enum RdataIn {
    One(String),
    Many(Vec<String>),
    Other,
}

impl<'de> Deserialize<'de> for RdataIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RdataIn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E>(self, v: &str) -> Result<RdataIn, E> {
                Ok(RdataIn::One(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<RdataIn, E> {
                Ok(RdataIn::One(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RdataIn, A::Error> {
                let mut items = Vec::new();
                let mut valid = true;
                while let Some(item) = seq.next_element::<serde_json::Value>()? {
                    match item {
                        serde_json::Value::String(text) => items.push(text),
                        _ => valid = false,
                    }
                }
                Ok(if valid {
                    RdataIn::Many(items)
                } else {
                    RdataIn::Other
                })
            }
            fn visit_u64<E>(self, _: u64) -> Result<RdataIn, E> {
                Ok(RdataIn::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<RdataIn, E> {
                Ok(RdataIn::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<RdataIn, E> {
                Ok(RdataIn::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<RdataIn, E> {
                Ok(RdataIn::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RdataIn, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(RdataIn::Other)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
struct CofIn {
    rrname: Option<String>,
    rrtype: Option<RrtypeIn>,
    rdata: Option<RdataIn>,
    time_first: Option<Number>,
    time_last: Option<Number>,
    time_first_ms: Option<Number>,
    time_last_ms: Option<Number>,
    zone_time_first: Option<Number>,
    zone_time_last: Option<Number>,
    count: Option<Number>,
    bailiwick: Option<String>,
    sensor_id: Option<String>,
}

/// The result of reading one line.
#[derive(Debug, Default)]
pub struct ParsedLine {
    /// One entry per rdata.
    pub entries: Vec<Entry>,
    /// Numbers given as digit strings (accepted, but worth counting).
    pub lenient_numbers: u32,
}

/// Reads one COF line. A line with an rdata array yields one entry per
/// element.
pub fn parse_line(line: &str) -> Result<ParsedLine, CofError> {
    let input: CofIn = serde_json::from_str(line).map_err(|_| CofError::Json)?;
    let mut lenient = 0u32;
    let rrname_text = input.rrname.ok_or(CofError::Missing("rrname"))?;
    let rrname = Name::from_presentation(&rrname_text).map_err(CofError::Rrname)?;
    let rrtype = match input.rrtype.ok_or(CofError::Missing("rrtype"))? {
        RrtypeIn::Text(text) => text.parse::<Rtype>().map_err(|_| CofError::Rrtype)?,
        RrtypeIn::Number(number) => Rtype(u16::try_from(number).map_err(|_| CofError::Rrtype)?),
        RrtypeIn::Other => return Err(CofError::Rrtype),
    };
    let rdata = match input.rdata.ok_or(CofError::Missing("rdata"))? {
        RdataIn::One(text) => vec![text],
        RdataIn::Many(list) if !list.is_empty() => list,
        _ => return Err(CofError::Rdata),
    };
    let mut number =
        |value: Option<Number>, field: &'static str| -> Result<Option<u64>, CofError> {
            match value {
                None => Ok(None),
                Some(Number::Int(n)) => Ok(Some(n)),
                Some(Number::Float(f)) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                Some(Number::Text(text)) => {
                    let parsed = text
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| CofError::Time(field))?;
                    lenient += 1;
                    Ok(Some(parsed))
                }
                Some(_) => Err(CofError::Time(field)),
            }
        };
    let mut time_first = number(input.time_first, "time_first")?;
    let mut time_last = number(input.time_last, "time_last")?;
    if time_first.is_none() {
        time_first = number(input.time_first_ms, "time_first_ms")?.map(|ms| ms / 1000);
    }
    if time_last.is_none() {
        time_last = number(input.time_last_ms, "time_last_ms")?.map(|ms| ms / 1000);
    }
    let zone_first = number(input.zone_time_first, "zone_time_first")?;
    let zone_last = number(input.zone_time_last, "zone_time_last")?;
    let count = number(input.count, "count")
        .map_err(|_| CofError::Count)?
        .unwrap_or(1);
    let zone_times = match (zone_first, zone_last) {
        (Some(a), Some(b)) => Some((a.min(b), a.max(b))),
        (Some(a), None) | (None, Some(a)) => Some((a, a)),
        (None, None) => None,
    };
    // A record known only from zone data takes its zone times as times, so
    // every record has the mandatory pair.
    let (time_first, time_last) = match (time_first, time_last, zone_times) {
        (Some(a), Some(b), _) => (a.min(b), a.max(b)),
        (Some(a), None, _) | (None, Some(a), _) => (a, a),
        (None, None, Some(zone)) => zone,
        (None, None, None) => return Err(CofError::Missing("time_first")),
    };
    let bailiwick = match input.bailiwick.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Name::from_presentation(text).map_err(CofError::Bailiwick)?),
    };
    let sensor_id = input
        .sensor_id
        .filter(|s| !s.is_empty())
        .map(Arc::<str>::from);
    let seen = Seen {
        time_first,
        time_last,
        count,
        zone_times,
        sensor_id,
    };
    let entries = rdata
        .iter()
        .map(|text| Entry {
            record: Record {
                rrname: rrname.clone(),
                rrtype,
                bailiwick: bailiwick.clone(),
                rdata: Rdata::from_text_lenient(rrtype, text),
            },
            seen: seen.clone(),
        })
        .collect();
    Ok(ParsedLine {
        entries,
        lenient_numbers: lenient,
    })
}

/// How names are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameStyle {
    /// `www.example.com` (COF/D4 convention).
    Dotless,
    /// `www.example.com.` (DNSDB convention).
    Fqdn,
}

/// Output options for COF lines.
#[derive(Clone, Copy, Debug)]
pub struct CofStyle<'a> {
    pub names: NameStyle,
    /// `rdata` as a one-element array instead of a string.
    pub rdata_array: bool,
    /// The configured `origin` URI, if any.
    pub origin: Option<&'a str>,
    /// Whether to write `bailiwick`, `sensor_id` and zone times when known.
    pub extras: bool,
}

impl Default for CofStyle<'_> {
    fn default() -> Self {
        CofStyle {
            names: NameStyle::Dotless,
            rdata_array: false,
            origin: None,
            extras: true,
        }
    }
}

/// `rrtype` as COF allows: a mnemonic, or a number for types without one.
#[derive(Serialize)]
#[serde(untagged)]
pub enum RrtypeOut {
    Mnemonic(&'static str),
    Number(u16),
}

impl From<Rtype> for RrtypeOut {
    fn from(rtype: Rtype) -> Self {
        match rtype.mnemonic() {
            Some(m) => RrtypeOut::Mnemonic(m),
            None => RrtypeOut::Number(rtype.0),
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum RdataOut<'a> {
    One(&'a str),
    Many([&'a str; 1]),
}

#[derive(Serialize)]
struct CofOut<'a> {
    time_first: u64,
    time_last: u64,
    count: u64,
    rrtype: RrtypeOut,
    rrname: &'a str,
    rdata: RdataOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bailiwick: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_time_first: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone_time_last: Option<u64>,
}

/// Appends one compact COF line (with its `\n`).
pub fn write_line(entry: &Entry, style: &CofStyle<'_>, out: &mut Vec<u8>) {
    let render = |name: &Name| match style.names {
        NameStyle::Dotless => name.to_dotless(),
        NameStyle::Fqdn => name.to_fqdn(),
    };
    let rrname = render(&entry.record.rrname);
    let rdata = entry.record.rdata_text();
    let bailiwick = if style.extras {
        entry.record.bailiwick.as_ref().map(render)
    } else {
        None
    };
    let zone = if style.extras {
        entry.seen.zone_times
    } else {
        None
    };
    let line = CofOut {
        time_first: entry.seen.time_first,
        time_last: entry.seen.time_last,
        count: entry.seen.count,
        rrtype: entry.record.rrtype.into(),
        rrname: &rrname,
        rdata: if style.rdata_array {
            RdataOut::Many([&rdata])
        } else {
            RdataOut::One(&rdata)
        },
        origin: style.origin,
        bailiwick: bailiwick.as_deref(),
        sensor_id: if style.extras {
            entry.seen.sensor_id.as_deref()
        } else {
            None
        },
        zone_time_first: zone.map(|z| z.0),
        zone_time_last: zone.map(|z| z.1),
    };
    // Serialising a struct of plain fields into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (cof_line): a CNAME target holding `\)` was exported as
    /// `\\)`, which reads back as opaque text, not as the same record.
    #[test]
    fn names_with_zone_file_specials_survive_export() {
        let line = r#"{"rrname":"www.example.com","rrtype":"CNAME","rdata":"a\\\\\\)b\\(c\\;d\\\"e.example.","time_first":1,"time_last":2}"#;
        let parsed = parse_line(line).expect("parses");
        let entry = &parsed.entries[0];
        assert!(
            entry.record.rdata.wire().is_some(),
            "{:?}",
            entry.record.rdata
        );
        let mut out = Vec::new();
        write_line(entry, &CofStyle::default(), &mut out);
        let text = String::from_utf8(out).expect("UTF-8");
        let again = parse_line(text.trim_end()).expect("export parses");
        assert_eq!(again.entries[0].record, entry.record, "{text}");
    }
    use proptest::prelude::*;

    #[test]
    fn reads_draft_examples() {
        let line = r#"{"count": 102, "time_first": 1298412391, "rrtype": "AAAA", "rrname": "www.ietf.org", "rdata": "2001:1890:1112:1::20", "time_last": 1302506851}"#;
        let parsed = parse_line(line).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        let entry = &parsed.entries[0];
        assert_eq!(entry.record.rrname.to_dotless(), "www.ietf.org");
        assert_eq!(entry.record.rdata_text(), "2001:1890:1112:1::20");
        assert_eq!(entry.seen.count, 102);
        assert_eq!(
            (entry.seen.time_first, entry.seen.time_last),
            (1298412391, 1302506851)
        );
    }

    #[test]
    fn rdata_arrays_numbers_and_lenient_strings() {
        let line = r#"{"rrname":"Example.COM.","rrtype":15,"rdata":["10 mx1.example.com.","20 mx2.example.com."],"time_first":"100","time_last":200,"sensor_id":"s1"}"#;
        let parsed = parse_line(line).unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.lenient_numbers, 1);
        assert_eq!(parsed.entries[1].record.rdata_text(), "20 mx2.example.com.");
        assert_eq!(parsed.entries[0].seen.sensor_id.as_deref(), Some("s1"));
        assert_eq!(parsed.entries[0].record.rrname.to_dotless(), "example.com");
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(parse_line("nope").unwrap_err(), CofError::Json);
        assert_eq!(parse_line("[1]").unwrap_err(), CofError::Json);
        assert_eq!(
            parse_line(r#"{"rrtype":"A","rdata":"1.2.3.4","time_first":1,"time_last":2}"#)
                .unwrap_err(),
            CofError::Missing("rrname")
        );
        assert_eq!(
            parse_line(
                r#"{"rrname":"a","rrtype":"BOGUS","rdata":"x","time_first":1,"time_last":2}"#
            )
            .unwrap_err(),
            CofError::Rrtype
        );
        assert_eq!(
            parse_line(r#"{"rrname":"a","rrtype":"A","rdata":[],"time_first":1,"time_last":2}"#)
                .unwrap_err(),
            CofError::Rdata
        );
        assert_eq!(
            parse_line(
                r#"{"rrname":"a","rrtype":"A","rdata":"1.2.3.4","time_first":"x","time_last":2}"#
            )
            .unwrap_err(),
            CofError::Time("time_first")
        );
        assert_eq!(
            parse_line(r#"{"rrname":"a","rrtype":"A","rdata":"1.2.3.4"}"#).unwrap_err(),
            CofError::Missing("time_first")
        );
        assert_eq!(
            parse_line(
                r#"{"rrname":"a..b","rrtype":"A","rdata":"1.2.3.4","time_first":1,"time_last":1}"#
            )
            .unwrap_err(),
            CofError::Rrname(NameError::EmptyLabel)
        );
    }

    #[test]
    fn writes_d4_shape() {
        let parsed = parse_line(r#"{"rrname":"www.example.com","rrtype":"A","rdata":"192.0.2.1","time_first":1,"time_last":2,"count":3}"#).unwrap();
        let mut out = Vec::new();
        write_line(
            &parsed.entries[0],
            &CofStyle {
                origin: Some("https://pdns.example"),
                ..CofStyle::default()
            },
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"time_first\":1,\"time_last\":2,\"count\":3,\"rrtype\":\"A\",\"rrname\":\"www.example.com\",\"rdata\":\"192.0.2.1\",\"origin\":\"https://pdns.example\"}\n"
        );
    }

    proptest! {
        /// COF line → record → COF line → record is stable.
        #[test]
        fn line_round_trip(
            labels in proptest::collection::vec("[a-z0-9]{1,8}", 1..4),
            rtype in prop_oneof![Just("A"), Just("AAAA"), Just("TXT"), Just("MX"), Just("TYPE65280")],
            seed in any::<[u8; 16]>(),
            first in 0u64..2_000_000_000, span in 0u64..1_000_000, count in 1u64..1000,
            sensor in proptest::option::of("[a-z]{1,6}"),
        ) {
            let rdata = match rtype {
                "A" => std::net::Ipv4Addr::from([seed[0], seed[1], seed[2], seed[3]]).to_string(),
                "AAAA" => std::net::Ipv6Addr::from(seed).to_string(),
                "TXT" => format!("\"{}\"", hex::encode(&seed[..5])),
                "MX" => format!("{} {}.", seed[0], labels.join(".")),
                _ => format!("\\# 4 {}", hex::encode(&seed[..4])),
            };
            let mut object = serde_json::json!({
                "rrname": labels.join("."), "rrtype": rtype, "rdata": rdata,
                "time_first": first, "time_last": first + span, "count": count,
            });
            if let Some(sensor) = &sensor {
                object["sensor_id"] = serde_json::Value::from(sensor.as_str());
            }
            let entry = parse_line(&object.to_string()).unwrap().entries.remove(0);
            let mut out = Vec::new();
            write_line(&entry, &CofStyle::default(), &mut out);
            let text = String::from_utf8(out).unwrap();
            let again = parse_line(text.trim_end()).unwrap().entries.remove(0);
            prop_assert_eq!(&again, &entry);
            let mut out2 = Vec::new();
            write_line(&again, &CofStyle::default(), &mut out2);
            prop_assert_eq!(String::from_utf8(out2).unwrap(), text);
        }

        #[test]
        fn arbitrary_lines_never_panic(line in ".{0,200}") {
            let _ = parse_line(&line);
        }
    }
}

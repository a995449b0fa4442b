//! gamelinux/passivedns `||` log lines.
//!
//! passivedns writes the columns selected by `-f` in a fixed order whatever
//! the order of the letters: timestamp, hostname, client, client MAC,
//! server, server MAC, protocol, class, query, query length, type, answer,
//! answer length, TTL, count. Error rcodes (NXDOMAIN, ...) appear in the
//! answer column of the `-L` log (or of the main log when they share it).

use std::sync::Arc;

use crate::name::{Name, NameError};
use crate::rdata::Rtype;
use crate::record::{Entry, Rdata, Record, Seen};

/// passivedns' default field letters.
pub const DEFAULT_FIELDS: &str = "SMcsCQTAtn";
/// passivedns' default delimiter.
pub const DEFAULT_DELIMITER: &str = "||";

/// Answers passivedns writes instead of rdata for error responses.
const RCODE_ANSWERS: &[&str] = &[
    "NXDOMAIN", "SERVFAIL", "FORMERR", "NOTIMPL", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET",
    "NOTAUTH", "NOTZONE",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Timestamp,
    Other,
    Class,
    Query,
    Type,
    Answer,
    Count,
}

/// A configured passivedns line layout.
#[derive(Clone, Debug)]
pub struct Layout {
    columns: Vec<Column>,
    delimiter: String,
}

/// Why a layout was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    #[error("unknown passivedns field letter {0:?}")]
    UnknownLetter(char),
    #[error("passivedns fields must include Q (query), T (type) and A (answer)")]
    MissingField,
    #[error("empty delimiter")]
    EmptyDelimiter,
}

impl Layout {
    /// Builds a layout from `-f` letters and the `-d` delimiter.
    pub fn new(fields: &str, delimiter: &str) -> Result<Layout, LayoutError> {
        if delimiter.is_empty() {
            return Err(LayoutError::EmptyDelimiter);
        }
        for letter in fields.chars() {
            if !"HSMhcwsWpCQLTAltn".contains(letter) {
                return Err(LayoutError::UnknownLetter(letter));
            }
        }
        let has = |letter| fields.contains(letter);
        // passivedns' fixed output order; S and M share one column, H is a
        // column of its own.
        let order: [(bool, Column); 15] = [
            (has('H'), Column::Other),
            (has('S') || has('M'), Column::Timestamp),
            (has('h'), Column::Other),
            (has('c'), Column::Other),
            (has('w'), Column::Other),
            (has('s'), Column::Other),
            (has('W'), Column::Other),
            (has('p'), Column::Other),
            (has('C'), Column::Class),
            (has('Q'), Column::Query),
            (has('L'), Column::Other),
            (has('T'), Column::Type),
            (has('A'), Column::Answer),
            (has('l'), Column::Other),
            (has('t'), Column::Other),
        ];
        let mut columns: Vec<Column> = order
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
        if has('n') {
            columns.push(Column::Count);
        }
        if !(has('Q') && has('T') && has('A')) {
            return Err(LayoutError::MissingField);
        }
        Ok(Layout {
            columns,
            delimiter: delimiter.to_string(),
        })
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            columns: vec![
                Column::Timestamp,
                Column::Other,
                Column::Other,
                Column::Class,
                Column::Query,
                Column::Type,
                Column::Answer,
                Column::Other,
                Column::Count,
            ],
            delimiter: DEFAULT_DELIMITER.to_string(),
        }
    }
}

/// What one line turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A record.
    Record(Entry),
    /// An error response (NXDOMAIN, SERVFAIL, ...): counted, not stored.
    ErrorResponse(&'static str),
    /// A `#` comment or a blank line.
    Comment,
    /// A record of another class than IN (CH `version.bind`, ...): passive
    /// DNS keeps the Internet class only; counted, not stored.
    OtherClass,
}

/// Why a line was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("bad timestamp")]
    Timestamp,
    #[error("bad query name: {0}")]
    Query(NameError),
    #[error("unknown record type")]
    Rrtype,
    #[error("empty answer")]
    Answer,
    #[error("bad count")]
    Count,
}

impl LineError {
    /// A short stable label for counters.
    pub fn reason(&self) -> &'static str {
        match self {
            LineError::FieldCount { .. } => "field_count",
            LineError::Timestamp => "bad_timestamp",
            LineError::Query(_) => "bad_query",
            LineError::Rrtype => "bad_rrtype",
            LineError::Answer => "bad_answer",
            LineError::Count => "bad_count",
        }
    }
}

/// Parses one line. `sensor_id` tags the record (passivedns has no sensor
/// column; the importer supplies a configured one).
pub fn parse_line(
    layout: &Layout,
    line: &str,
    sensor_id: Option<&Arc<str>>,
) -> Result<Line, LineError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(Line::Comment);
    }
    let mut time = None;
    let mut query = None;
    let mut rrtype = None;
    let mut answer = None;
    let mut count = 1u64;
    let mut found = 0;
    // A wrong number of fields is the most telling error, so field errors
    // wait until the count is known.
    let mut field_error = None;
    let mut other_class = false;
    for (index, field) in line.split(layout.delimiter.as_str()).enumerate() {
        found += 1;
        let Some(column) = layout.columns.get(index) else {
            continue;
        };
        let result = match column {
            Column::Timestamp => {
                let seconds = field.split('.').next().unwrap_or("");
                seconds
                    .trim()
                    .parse::<u64>()
                    .map(|t| time = Some(t))
                    .map_err(|_| LineError::Timestamp)
            }
            Column::Class => {
                other_class |= !field.trim().eq_ignore_ascii_case("IN");
                Ok(())
            }
            Column::Query => {
                query = Some(field);
                Ok(())
            }
            Column::Type => {
                rrtype = Some(field);
                Ok(())
            }
            Column::Answer => {
                answer = Some(field);
                Ok(())
            }
            Column::Count => field
                .trim()
                .parse()
                .map(|c| count = c)
                .map_err(|_| LineError::Count),
            Column::Other => Ok(()),
        };
        if let Err(error) = result {
            field_error.get_or_insert(error);
        }
    }
    if found != layout.columns.len() {
        return Err(LineError::FieldCount {
            expected: layout.columns.len(),
            found,
        });
    }
    if let Some(error) = field_error {
        return Err(error);
    }
    if other_class {
        return Ok(Line::OtherClass);
    }
    let (Some(query), Some(rrtype), Some(answer)) = (query, rrtype, answer) else {
        return Err(LineError::FieldCount {
            expected: layout.columns.len(),
            found,
        });
    };
    let answer = answer.trim();
    if let Some(rcode) = RCODE_ANSWERS.iter().find(|r| answer == **r) {
        return Ok(Line::ErrorResponse(rcode));
    }
    if answer.starts_with("UNKNOWN-ERROR") {
        return Ok(Line::ErrorResponse("UNKNOWN-ERROR"));
    }
    if answer.is_empty() {
        return Err(LineError::Answer);
    }
    let rrname = Name::from_presentation(query.trim()).map_err(LineError::Query)?;
    let rrtype: Rtype = rrtype.parse().map_err(|_| LineError::Rrtype)?;
    // No timestamp column: the line carries no time; 0 would be a lie that
    // sorts first, so such layouts must include S.
    let time = time.ok_or(LineError::Timestamp)?;
    let mut seen = Seen::once(time);
    seen.count = count.max(1);
    seen.sensor_id = sensor_id.cloned();
    Ok(Line::Record(Entry {
        record: Record {
            rrname,
            rrtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rrtype, answer),
        },
        seen,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (passivedns_line): LOC seconds of many digits overflowed an
    /// i64 (a panic with overflow checks, a wrong value without). Such an
    /// answer is not LOC presentation: kept as opaque text.
    #[test]
    fn loc_with_huge_seconds_is_kept_opaque() {
        let line = "1795319547.798||127.0.0.1||127.0.0.1||IN||loc.example.test.||LOC||\
                    52 40 9223372036854775 N 0 0 0 E 0m||3600||1";
        let Ok(Line::Record(entry)) = parse_line(&Layout::default(), line, None) else {
            panic!("not a record");
        };
        assert!(
            entry.record.rdata.wire().is_none(),
            "{:?}",
            entry.record.rdata
        );
        for text in [
            "52 40 60 N 0 0 0 E 0m",
            "52 40 9223372036854775 N 0 0 0 E 0m",
            "52 40 1 N 0 0 0 E 92233720368547758m",
        ] {
            assert!(
                crate::rdata::from_presentation(Rtype::LOC, text).is_err(),
                "{text}"
            );
        }
        assert!(crate::rdata::from_presentation(Rtype::LOC, "52 40 59.999 N 0 0 0 E 0m").is_ok());
    }

    fn record(line: &str) -> Entry {
        match parse_line(&Layout::default(), line, None).unwrap() {
            Line::Record(entry) => entry,
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn default_layout_record() {
        let entry = record(
            "1322849924.408856||10.1.1.1||8.8.8.8||IN||upload.youtube.com.||A||74.125.43.117||46587||5",
        );
        assert_eq!(entry.record.rrname.to_dotless(), "upload.youtube.com");
        assert_eq!(entry.record.rdata_text(), "74.125.43.117");
        assert_eq!(entry.seen.time_first, 1322849924);
        assert_eq!(entry.seen.count, 5);
    }

    #[test]
    fn partial_answers_are_kept_opaque() {
        let entry = record("1||c||s||IN||example.test.||MX||mail.example.test.||60||1");
        assert_eq!(entry.record.rdata, Rdata::Text("mail.example.test.".into()));
        assert_eq!(entry.record.rdata_text(), "mail.example.test.");
        let txt = record("1||c||s||IN||github.com.||TXT||\"MS=ms44452932\"||3483||1");
        assert!(matches!(txt.record.rdata, Rdata::Wire(_)));
        assert_eq!(txt.record.rdata_text(), "\"MS=ms44452932\"");
    }

    #[test]
    fn comments_errors_and_rejects() {
        let layout = Layout::default();
        assert_eq!(
            parse_line(&layout, "#timestamp||dns-client", None).unwrap(),
            Line::Comment
        );
        assert_eq!(
            parse_line(&layout, "1||c||s||IN||x.test.||A||NXDOMAIN||0||1", None).unwrap(),
            Line::ErrorResponse("NXDOMAIN")
        );
        assert_eq!(
            parse_line(&layout, "1||c||s||IN||x.test.||A", None).unwrap_err(),
            LineError::FieldCount {
                expected: 9,
                found: 6
            }
        );
        assert_eq!(
            parse_line(
                &layout,
                "1||c||s||IN||x.test.||A||1.2.3.4||0||1||extra",
                None
            )
            .unwrap_err(),
            LineError::FieldCount {
                expected: 9,
                found: 10
            }
        );
        assert_eq!(
            parse_line(&layout, "x||c||s||IN||x.test.||A||1.2.3.4||0||1", None).unwrap_err(),
            LineError::Timestamp
        );
        assert_eq!(
            parse_line(&layout, "1||c||s||IN||x.test.||NOPE||1.2.3.4||0||1", None).unwrap_err(),
            LineError::Rrtype
        );
        assert_eq!(
            parse_line(&layout, "1||c||s||CH||x.test.||TXT||\"a\"||0||1", None).unwrap(),
            Line::OtherClass
        );
        // Numeric types for types passivedns cannot name.
        let entry = record("1||c||s||IN||x.test.||65||\\# 0||0||1");
        assert_eq!(entry.record.rrtype, Rtype::HTTPS);
    }

    #[test]
    fn custom_layout_follows_fixed_order() {
        // Letters in any order; hostname (h) and protocol (p) add columns.
        let layout = Layout::new("nATQCpshcMS", "|").unwrap();
        let line = "1.5|sensor1|10.0.0.1|8.8.8.8|17|IN|a.test.|A|192.0.2.1|7";
        match parse_line(&layout, line, None).unwrap() {
            Line::Record(entry) => {
                assert_eq!(entry.record.rdata_text(), "192.0.2.1");
                assert_eq!(entry.seen.count, 7);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Layout::new("SMx", "||").unwrap_err(),
            LayoutError::UnknownLetter('x')
        );
        assert_eq!(
            Layout::new("SM", "||").unwrap_err(),
            LayoutError::MissingField
        );
    }

    proptest::proptest! {
        /// Whatever the line, the parser answers (never panics), and a
        /// record it returns counts at least one sighting.
        #[test]
        fn any_line_is_answered(line in "\\PC{0,120}") {
            if let Ok(Line::Record(entry)) = parse_line(&Layout::default(), &line, None) {
                proptest::prop_assert!(entry.seen.count >= 1);
            }
        }

        /// Lines built from valid fields come back with those fields.
        #[test]
        fn built_lines_read_back(
            secs in 0u64..4_000_000_000,
            labels in proptest::collection::vec("[a-z0-9]{1,12}", 1..4),
            address in proptest::prelude::any::<[u8; 4]>(),
            count in 1u64..1_000_000,
        ) {
            let name = format!("{}.", labels.join("."));
            let answer = std::net::Ipv4Addr::from(address).to_string();
            let line = format!("{secs}.5||192.0.2.1||198.51.100.1||IN||{name}||A||{answer}||60||{count}");
            let Ok(Line::Record(entry)) = parse_line(&Layout::default(), &line, None) else {
                return Err(proptest::test_runner::TestCaseError::fail(format!("not a record: {line}")));
            };
            proptest::prop_assert_eq!(entry.record.rrname.to_fqdn(), name);
            proptest::prop_assert_eq!(entry.record.rdata_text(), answer);
            proptest::prop_assert_eq!(entry.seen.time_first, secs);
            proptest::prop_assert_eq!(entry.seen.count, count);
        }
    }
}

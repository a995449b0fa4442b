//! Flow records as `dnsrecall annotate` reads and writes them: CSV with a
//! header line, or NDJSON, one flow per line.
//!
//! [`FlowReader`] turns each raw line into a [`Line`]: blank, the CSV
//! header, a [`Flow`] (source, destination, time), or a [`Reject`] with its
//! reason. It never fails on a bad flow line (the line is rejected and the
//! run goes on); only a CSV header without the wanted columns is an error,
//! since no line of that file could be read. [`annotated_csv`] and
//! [`annotated_json`] write a flow line back with its names.
//!
//! Pure functions of the line bytes: fuzzed without a store.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

//---- FlowFormat ------------------------------------------------------------

/// How flow records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl FlowFormat {
    /// The format of a file from its first bytes: `{` first (after
    /// whitespace) is NDJSON, anything else CSV.
    pub fn detect(head: &[u8]) -> FlowFormat {
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => FlowFormat::Ndjson,
            _ => FlowFormat::Csv,
        }
    }
}

//---- Reject ----------------------------------------------------------------

/// Why a flow line was not annotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    NotUtf8,
    LineTooLong,
    BadCsv,
    BadJson,
    MissingField,
    BadAddress,
    BadTime,
}

impl Reject {
    /// The reason as a counter label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::NotUtf8 => "not_utf8",
            Reject::LineTooLong => "line_too_long",
            Reject::BadCsv => "bad_csv",
            Reject::BadJson => "bad_json",
            Reject::MissingField => "missing_field",
            Reject::BadAddress => "bad_address",
            Reject::BadTime => "bad_time",
        }
    }
}

/// A CSV header that cannot be used: no line of its file can be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header line is not CSV (a stray quote).
    #[error("the CSV header does not parse")]
    Unparsable,
    /// The header has no column of this name.
    #[error("the CSV header has no column {0:?}")]
    MissingColumn(String),
}

//---- FlowReader ------------------------------------------------------------

/// The columns (CSV) or fields (NDJSON) holding a flow's addresses and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowFields {
    pub src: String,
    pub dst: String,
    pub time: String,
}

/// One flow: its addresses, its time (epoch seconds) and its line (without
/// the line ending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub time: u64,
    pub line: &'a str,
}

/// What one line of a flow file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Empty or white space: skipped, not a flow.
    Blank,
    /// The CSV header (the file's first non-blank line), without its line
    /// ending.
    Header(&'a str),
    Flow(Flow<'a>),
    /// A flow line that could not be read.
    Rejected(Reject),
}

/// Reads the lines of one flow file, in order.
pub struct FlowReader {
    format: FlowFormat,
    fields: FlowFields,
    max_line_bytes: usize,
    /// CSV: the positions of src, dst and time, once the header was read.
    columns: Option<[usize; 3]>,
}

impl FlowReader {
    pub fn new(format: FlowFormat, fields: FlowFields, max_line_bytes: usize) -> FlowReader {
        FlowReader {
            format,
            fields,
            max_line_bytes,
            columns: None,
        }
    }

    pub fn format(&self) -> FlowFormat {
        self.format
    }

    /// Reads the next line of the file (with or without its line ending).
    pub fn line<'a>(&mut self, raw: &'a [u8]) -> Result<Line<'a>, HeaderError> {
        let Ok(line) = std::str::from_utf8(raw) else {
            return Ok(Line::Rejected(Reject::NotUtf8));
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return Ok(Line::Blank);
        }
        if self.format == FlowFormat::Csv && self.columns.is_none() {
            self.columns = Some(self.header(line)?);
            return Ok(Line::Header(line));
        }
        if line.len() > self.max_line_bytes {
            return Ok(Line::Rejected(Reject::LineTooLong));
        }
        let parsed = match (self.format, self.columns) {
            (FlowFormat::Csv, Some(columns)) => csv_flow(line, columns),
            _ => json_flow(line, &self.fields),
        };
        Ok(match parsed {
            Ok((src, dst, time)) => Line::Flow(Flow {
                src,
                dst,
                time,
                line,
            }),
            Err(reason) => Line::Rejected(reason),
        })
    }

    /// Finds the three columns in the header.
    fn header(&self, line: &str) -> Result<[usize; 3], HeaderError> {
        let fields = csv_fields(line).map_err(|_| HeaderError::Unparsable)?;
        let find = |wanted: &str| {
            fields
                .iter()
                .position(|f| f.trim() == wanted)
                .ok_or_else(|| HeaderError::MissingColumn(wanted.to_string()))
        };
        Ok([
            find(&self.fields.src)?,
            find(&self.fields.dst)?,
            find(&self.fields.time)?,
        ])
    }
}

fn csv_flow(line: &str, [src, dst, time]: [usize; 3]) -> Result<(IpAddr, IpAddr, u64), Reject> {
    let fields = csv_fields(line)?;
    let field = |i: usize| fields.get(i).ok_or(Reject::MissingField);
    Ok((
        parse_address(field(src)?)?,
        parse_address(field(dst)?)?,
        parse_time(field(time)?)?,
    ))
}

fn json_flow(line: &str, fields: &FlowFields) -> Result<(IpAddr, IpAddr, u64), Reject> {
    let value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|_| Reject::BadJson)?;
    let text = |key: &str| match value.get(key) {
        Some(serde_json::Value::String(s)) => Ok(Cow::Borrowed(s.as_str())),
        Some(serde_json::Value::Number(n)) => Ok(Cow::Owned(n.to_string())),
        _ => Err(Reject::MissingField),
    };
    Ok((
        parse_address(&text(&fields.src)?)?,
        parse_address(&text(&fields.dst)?)?,
        parse_time(&text(&fields.time)?)?,
    ))
}

//---- fields ----------------------------------------------------------------

/// Splits a CSV line (RFC 4180 quoting within one line).
pub fn csv_fields(line: &str) -> Result<Vec<Cow<'_, str>>, Reject> {
    if !line.contains('"') {
        return Ok(line.split(',').map(Cow::Borrowed).collect());
    }
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(Reject::BadCsv),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field.into());
                    return Ok(fields);
                }
                Some(',') => fields.push(field.into()),
                Some(_) => return Err(Reject::BadCsv),
            }
        } else {
            loop {
                match chars.next() {
                    Some(',') => break,
                    Some('"') => return Err(Reject::BadCsv),
                    Some(c) => field.push(c),
                    None => {
                        fields.push(field.into());
                        return Ok(fields);
                    }
                }
            }
            fields.push(field.into());
        }
    }
}

/// An IPv4 or IPv6 address (surrounding white space allowed).
pub fn parse_address(text: &str) -> Result<IpAddr, Reject> {
    text.trim().parse().map_err(|_| Reject::BadAddress)
}

/// Epoch seconds (fractions dropped) or ISO 8601 (with an offset, or UTC
/// without one).
pub fn parse_time(text: &str) -> Result<u64, Reject> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return if (0.0..1e15).contains(&seconds) {
            // Truncation toward zero is the intended conversion.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(seconds as u64)
        } else {
            Err(Reject::BadTime)
        };
    }
    let epoch = if let Ok(timestamp) = text.parse::<jiff::Timestamp>() {
        timestamp.as_second()
    } else if let Ok(civil) = text.parse::<jiff::civil::DateTime>() {
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|_| Reject::BadTime)?
            .timestamp()
            .as_second()
    } else {
        return Err(Reject::BadTime);
    };
    u64::try_from(epoch).map_err(|_| Reject::BadTime)
}

//---- writing ---------------------------------------------------------------

/// `names` joined by `;` as one CSV field (quoted when it must be).
fn csv_quote(names: &[Arc<str>], out: &mut String) {
    let joined = names.iter().map(|n| &**n).collect::<Vec<_>>().join(";");
    if joined.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&joined.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&joined);
    }
}

/// A CSV flow line with its `src_names` and `dst_names` columns, and a
/// line ending.
pub fn annotated_csv(line: &str, src_names: &[Arc<str>], dst_names: &[Arc<str>]) -> String {
    let mut text = String::with_capacity(line.len() + 64);
    text.push_str(line);
    text.push(',');
    csv_quote(src_names, &mut text);
    text.push(',');
    csv_quote(dst_names, &mut text);
    text.push('\n');
    text
}

/// An NDJSON flow line (one that [`FlowReader`] read as a flow) with its
/// `src_names` and `dst_names` fields, and a line ending. The fields are
/// appended to the original text so its key order and spelling survive.
pub fn annotated_json(
    line: &str,
    src_names: &[Arc<str>],
    dst_names: &[Arc<str>],
) -> Result<String, serde_json::Error> {
    // The object parsed, so it ends with `}`.
    let body = line.trim_end();
    let body = body.strip_suffix('}').unwrap_or(body).trim_end();
    let separator = if body.ends_with('{') { "" } else { "," };
    let names =
        |names: &[Arc<str>]| serde_json::to_string(&names.iter().map(|n| &**n).collect::<Vec<_>>());
    Ok(format!(
        "{body}{separator}\"src_names\":{},\"dst_names\":{}}}\n",
        names(src_names)?,
        names(dst_names)?
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fields() -> FlowFields {
        FlowFields {
            src: "src_ip".into(),
            dst: "dst_ip".into(),
            time: "ts".into(),
        }
    }

    #[test]
    fn csv_splitting() {
        assert_eq!(csv_fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            csv_fields(r#""a,1","b""c",d"#).unwrap(),
            ["a,1", "b\"c", "d"]
        );
        assert_eq!(csv_fields(r#"a,"b"#), Err(Reject::BadCsv));
        assert_eq!(csv_fields(r#"a,b"c"#), Err(Reject::BadCsv));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("1700000000.75"), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14 22:13:20"), Ok(1_700_000_000));
        assert_eq!(parse_time("yesterday"), Err(Reject::BadTime));
        assert_eq!(parse_time("-5"), Err(Reject::BadTime));
    }

    #[test]
    fn csv_files() {
        let mut reader = FlowReader::new(FlowFormat::Csv, fields(), 100);
        assert_eq!(reader.line(b"\r\n").unwrap(), Line::Blank);
        assert_eq!(
            reader.line(b"ts,src_ip,dst_ip,bytes\r\n").unwrap(),
            Line::Header("ts,src_ip,dst_ip,bytes")
        );
        assert_eq!(
            reader
                .line(b"1700000000,192.0.2.1,2001:db8::1,10\n")
                .unwrap(),
            Line::Flow(Flow {
                src: "192.0.2.1".parse().unwrap(),
                dst: "2001:db8::1".parse().unwrap(),
                time: 1_700_000_000,
                line: "1700000000,192.0.2.1,2001:db8::1,10",
            })
        );
        assert_eq!(
            reader.line(b"1700000000,192.0.2.1\n").unwrap(),
            Line::Rejected(Reject::MissingField)
        );
        assert_eq!(
            reader.line(b"1700000000,nope,192.0.2.1\n").unwrap(),
            Line::Rejected(Reject::BadAddress)
        );
        assert_eq!(
            reader.line(b"\xff\xfe\n").unwrap(),
            Line::Rejected(Reject::NotUtf8)
        );
        assert_eq!(
            reader
                .line("1,192.0.2.1,192.0.2.2,".repeat(10).as_bytes())
                .unwrap(),
            Line::Rejected(Reject::LineTooLong)
        );
        let mut reader = FlowReader::new(FlowFormat::Csv, fields(), 100);
        assert_eq!(
            reader.line(b"ts,src_ip,dest\n"),
            Err(HeaderError::MissingColumn("dst_ip".into()))
        );
        assert_eq!(reader.line(b"ts,\"src_ip\n"), Err(HeaderError::Unparsable));
    }

    #[test]
    fn ndjson_files() {
        let mut reader = FlowReader::new(FlowFormat::detect(b"  {\"a\":1}"), fields(), 1000);
        assert_eq!(reader.format(), FlowFormat::Ndjson);
        let line = br#"{"src_ip":"192.0.2.1","dst_ip":"192.0.2.2","ts":1700000000.5}"#;
        let Line::Flow(flow) = reader.line(line).unwrap() else {
            panic!("not a flow")
        };
        assert_eq!(flow.time, 1_700_000_000);
        assert_eq!(
            reader.line(br#"{"src_ip":"192.0.2.1","ts":1}"#).unwrap(),
            Line::Rejected(Reject::MissingField)
        );
        assert_eq!(
            reader.line(b"{nope").unwrap(),
            Line::Rejected(Reject::BadJson)
        );
        let names: Vec<Arc<str>> = vec![Arc::from("a.example"), Arc::from("b\"c")];
        let written = annotated_json(flow.line, &names, &[]).unwrap();
        let value: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(value["src_names"][1], "b\"c");
        assert_eq!(value["dst_names"], serde_json::json!([]));
        assert_eq!(value["ts"], 1_700_000_000.5);
        assert_eq!(
            annotated_json("{}", &names[..1], &[]).unwrap(),
            "{\"src_names\":[\"a.example\"],\"dst_names\":[]}\n"
        );
        assert_eq!(
            annotated_csv("1,x,y", &names, &names[..1]),
            "1,x,y,\"a.example;b\"\"c\",a.example\n"
        );
    }

    proptest! {
        /// Whatever the bytes, a line is read (never a panic), and a flow
        /// written back with names still reads as the same flow.
        #[test]
        fn any_csv_line_is_answered(line in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut reader = FlowReader::new(FlowFormat::Csv, fields(), 64);
            reader.line(b"src_ip,dst_ip,ts").unwrap();
            let _ = reader.line(&line);
        }

        #[test]
        fn any_json_line_is_answered(line in "\\PC{0,80}") {
            let mut reader = FlowReader::new(FlowFormat::Ndjson, fields(), 64);
            let _ = reader.line(line.as_bytes());
        }

        #[test]
        fn annotated_lines_read_back(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 16]>(),
            time in 0u64..4_000_000_000,
            names in proptest::collection::vec("[a-z.\",;]{1,10}", 0..3),
        ) {
            let names: Vec<Arc<str>> = names.iter().map(|n| Arc::from(n.as_str())).collect();
            let (src, dst) = (IpAddr::from(src), IpAddr::from(dst));
            let csv = format!("{src},{dst},{time}");
            let mut reader = FlowReader::new(FlowFormat::Csv, fields(), 1000);
            reader.line(b"src_ip,dst_ip,ts,src_names,dst_names").unwrap();
            let annotated = annotated_csv(&csv, &names, &names);
            let Line::Flow(flow) = reader.line(annotated.as_bytes()).unwrap() else {
                panic!("{annotated} is not a flow");
            };
            prop_assert_eq!((flow.src, flow.dst, flow.time), (src, dst, time));
            let json = format!(r#"{{"src_ip":"{src}","dst_ip":"{dst}","ts":{time}}}"#);
            let annotated = annotated_json(&json, &names, &names).unwrap();
            let mut reader = FlowReader::new(FlowFormat::Ndjson, fields(), 1000);
            let Line::Flow(flow) = reader.line(annotated.as_bytes()).unwrap() else {
                panic!("{annotated} is not a flow");
            };
            prop_assert_eq!((flow.src, flow.dst, flow.time), (src, dst, time));
        }
    }
}

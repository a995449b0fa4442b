//! `dnsrecall annotate`: adds to each flow record the names whose A/AAAA
//! records pointed at its source and destination addresses at the flow's
//! time (`src_names`, `dst_names`).
//!
//! * Input: CSV with a header line, or NDJSON; files or standard input,
//!   read line by line (memory does not grow with the input).
//! * Lookup: the store's address index ([`annotate::sightings`]), filtered
//!   by time with [`annotate::names_at`]. Flows repeat addresses, so the
//!   sightings of an address are cached. The cache has two generations of
//!   `cache_size / 2` entries: a hit in the old one moves the entry to the
//!   new one, and when the new one is full the old one is dropped. That is
//!   LRU-like at O(1) per lookup without a linked list, and bounded to
//!   `cache_size` addresses.
//! * Output: the input line unchanged plus two CSV columns (names joined by
//!   `;`) or two JSON array fields. Rejected lines are not written; they are
//!   counted by reason and the first ones listed as `file:line: reason`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use dnsrecall_core::store::Store;
use dnsrecall_http::annotate::{self, Sighting};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{AnnotateArgs, FlowFormat};
use crate::config::Config;

/// Rejected lines listed by place in the summary.
const SHOWN_REJECTS: usize = 10;
/// The progress bar is moved every this many lines.
const PROGRESS_EVERY: u64 = 16_384;

/// Why a line was not annotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reject {
    NotUtf8,
    LineTooLong,
    BadCsv,
    BadJson,
    MissingField,
    BadAddress,
    BadTime,
}

impl Reject {
    fn as_str(self) -> &'static str {
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

#[derive(Default)]
struct Summary {
    flows: u64,
    annotated: u64,
    rejected: BTreeMap<Reject, u64>,
    shown: Vec<String>,
}

impl Summary {
    fn reject(&mut self, file: &str, line: u64, reason: Reject) {
        *self.rejected.entry(reason).or_default() += 1;
        if self.shown.len() < SHOWN_REJECTS {
            self.shown
                .push(format!("{file}:{line}: {}", reason.as_str()));
        }
    }
}

/// Address → sightings, bounded (see the module docs).
struct Cache {
    hot: HashMap<IpAddr, Arc<[Sighting]>>,
    cold: HashMap<IpAddr, Arc<[Sighting]>>,
    generation: usize,
    lookups: u64,
    misses: u64,
}

impl Cache {
    fn new(size: usize) -> Cache {
        let generation = (size / 2).max(1);
        Cache {
            hot: HashMap::with_capacity(generation),
            cold: HashMap::new(),
            generation,
            lookups: 0,
            misses: 0,
        }
    }

    fn get(&mut self, store: &dyn Store, ip: IpAddr) -> anyhow::Result<Arc<[Sighting]>> {
        self.lookups += 1;
        if let Some(found) = self.hot.get(&ip) {
            return Ok(found.clone());
        }
        let found = match self.cold.remove(&ip) {
            Some(found) => found,
            None => {
                self.misses += 1;
                Arc::from(
                    annotate::sightings(store, ip).with_context(|| format!("looking up {ip}"))?,
                )
            }
        };
        if self.hot.len() >= self.generation {
            self.cold = std::mem::replace(&mut self.hot, HashMap::with_capacity(self.generation));
        }
        self.hot.insert(ip, found.clone());
        Ok(found)
    }
}

/// The names found for one address.
type Names = Vec<Arc<str>>;

/// Everything one run shares.
struct Annotator<'a> {
    store: &'a dyn Store,
    cache: Cache,
    slack: u64,
    max_names: usize,
    max_line_bytes: usize,
    summary: Summary,
    csv_header_written: bool,
}

impl Annotator<'_> {
    /// The names of `ip` at `time`.
    fn names(&mut self, ip: IpAddr, time: u64) -> anyhow::Result<Vec<Arc<str>>> {
        let sightings = self.cache.get(self.store, ip)?;
        Ok(annotate::names_at(
            &sightings,
            Some(time),
            self.slack,
            self.max_names,
        ))
    }

    /// Looks both addresses up; counts the flow.
    fn lookup(&mut self, src: IpAddr, dst: IpAddr, time: u64) -> anyhow::Result<(Names, Names)> {
        let src_names = self.names(src, time)?;
        let dst_names = self.names(dst, time)?;
        if !src_names.is_empty() || !dst_names.is_empty() {
            self.summary.annotated += 1;
        }
        Ok((src_names, dst_names))
    }
}

pub fn run(args: &AnnotateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if args.max_names == 0 {
        bail!("--max-names must be at least 1");
    }
    let follower = super::open_follower(config)?;
    let mut annotator = Annotator {
        store: follower.store.as_ref(),
        cache: Cache::new(args.cache_size),
        slack: args.slack,
        max_names: args.max_names,
        max_line_bytes: config.import.max_line_bytes,
        summary: Summary::default(),
        csv_header_written: false,
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, &mut out);
    let stdin_only = [PathBuf::from("-")];
    let files: &[PathBuf] = if args.files.is_empty() {
        &stdin_only
    } else {
        &args.files
    };
    let started = std::time::Instant::now();
    for path in files {
        let result = annotate_file(&mut annotator, args, path, &mut out);
        match result {
            Err(error) if is_broken_pipe(&error) => return Ok(ExitCode::SUCCESS),
            other => other?,
        }
    }
    match out.flush() {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(ExitCode::SUCCESS);
        }
        other => other.context("writing the output")?,
    }
    print_summary(&annotator, started.elapsed());
    Ok(ExitCode::SUCCESS)
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn print_summary(annotator: &Annotator<'_>, elapsed: std::time::Duration) {
    let summary = &annotator.summary;
    let rejected: u64 = summary.rejected.values().sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "annotate: {} flows read, {} annotated, {} rejected in {:.2} s ({:.0} flows/s); {} address lookups, {} store reads",
        summary.flows,
        summary.annotated,
        rejected,
        secs,
        summary.flows as f64 / secs,
        annotator.cache.lookups,
        annotator.cache.misses,
    );
    for (reason, count) in &summary.rejected {
        eprintln!("  rejected {}: {count}", reason.as_str());
    }
    for place in &summary.shown {
        eprintln!("  {place}");
    }
}

fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    if path == Path::new("-") {
        return Ok((Box::new(std::io::stdin().lock()), None));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), size))
}

fn annotate_file(
    annotator: &mut Annotator<'_>,
    args: &AnnotateArgs,
    path: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let name = if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let (input, size) = open_input(path)?;
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let format = match args.format {
        Some(format) => format,
        None => {
            let head = reader
                .fill_buf()
                .with_context(|| format!("reading {name}"))?;
            match head.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => FlowFormat::Ndjson,
                _ => FlowFormat::Csv,
            }
        }
    };
    let bar = match size {
        Some(total) if std::io::stderr().is_terminal() => {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {per_sec} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(name.clone());
            Some(bar)
        }
        _ => None,
    };
    let mut columns: Option<[usize; 3]> = None;
    let mut raw = Vec::with_capacity(1024);
    let mut line_number = 0u64;
    let mut bytes = 0u64;
    loop {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("reading {name}"))?;
        if read == 0 {
            break;
        }
        line_number += 1;
        bytes += read as u64;
        if let Some(bar) = &bar
            && line_number.is_multiple_of(PROGRESS_EVERY)
        {
            bar.set_position(bytes);
        }
        let Ok(line) = std::str::from_utf8(&raw) else {
            annotator.summary.flows += 1;
            annotator
                .summary
                .reject(&name, line_number, Reject::NotUtf8);
            continue;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        if format == FlowFormat::Csv && columns.is_none() {
            columns = Some(csv_header(annotator, args, line, &name, out)?);
            continue;
        }
        annotator.summary.flows += 1;
        if line.len() > annotator.max_line_bytes {
            annotator
                .summary
                .reject(&name, line_number, Reject::LineTooLong);
            continue;
        }
        let outcome = match (format, columns) {
            (FlowFormat::Csv, Some(columns)) => csv_line(annotator, line, columns, out)?,
            _ => json_line(annotator, args, line, out)?,
        };
        if let Err(reason) = outcome {
            annotator.summary.reject(&name, line_number, reason);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Finds the three columns; writes the header once (the first file's).
fn csv_header(
    annotator: &mut Annotator<'_>,
    args: &AnnotateArgs,
    line: &str,
    name: &str,
    out: &mut impl Write,
) -> anyhow::Result<[usize; 3]> {
    let fields =
        csv_fields(line).map_err(|_| anyhow::anyhow!("{name}: the CSV header does not parse"))?;
    let find = |wanted: &str| {
        fields
            .iter()
            .position(|f| f.trim() == wanted)
            .ok_or_else(|| anyhow::anyhow!("{name}: the CSV header has no column {wanted:?}"))
    };
    let columns = [
        find(&args.src_field)?,
        find(&args.dst_field)?,
        find(&args.time_field)?,
    ];
    if !annotator.csv_header_written {
        writeln!(out, "{line},src_names,dst_names").context("writing the output")?;
        annotator.csv_header_written = true;
    }
    Ok(columns)
}

/// Splits a CSV line (RFC 4180 quoting within one line).
fn csv_fields(line: &str) -> Result<Vec<std::borrow::Cow<'_, str>>, Reject> {
    if !line.contains('"') {
        return Ok(line.split(',').map(std::borrow::Cow::Borrowed).collect());
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

fn parse_address(text: &str) -> Result<IpAddr, Reject> {
    text.trim().parse().map_err(|_| Reject::BadAddress)
}

/// Epoch seconds (fractions dropped) or ISO 8601 (with an offset, or UTC
/// without one).
fn parse_time(text: &str) -> Result<u64, Reject> {
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

fn csv_line(
    annotator: &mut Annotator<'_>,
    line: &str,
    [src, dst, time]: [usize; 3],
    out: &mut impl Write,
) -> anyhow::Result<Result<(), Reject>> {
    let parsed = (|| {
        let fields = csv_fields(line)?;
        let field = |i: usize| fields.get(i).ok_or(Reject::MissingField);
        Ok((
            parse_address(field(src)?)?,
            parse_address(field(dst)?)?,
            parse_time(field(time)?)?,
        ))
    })();
    let (src, dst, time) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return Ok(Err(reason)),
    };
    let (src_names, dst_names) = annotator.lookup(src, dst, time)?;
    let mut text = String::with_capacity(line.len() + 64);
    text.push_str(line);
    text.push(',');
    csv_quote(&src_names, &mut text);
    text.push(',');
    csv_quote(&dst_names, &mut text);
    text.push('\n');
    out.write_all(text.as_bytes())
        .context("writing the output")?;
    Ok(Ok(()))
}

fn json_line(
    annotator: &mut Annotator<'_>,
    args: &AnnotateArgs,
    line: &str,
    out: &mut impl Write,
) -> anyhow::Result<Result<(), Reject>> {
    let parsed = (|| {
        let value: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).map_err(|_| Reject::BadJson)?;
        let text = |key: &str| match value.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(Reject::MissingField),
        };
        Ok((
            parse_address(&text(&args.src_field)?)?,
            parse_address(&text(&args.dst_field)?)?,
            parse_time(&text(&args.time_field)?)?,
        ))
    })();
    let (src, dst, time) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return Ok(Err(reason)),
    };
    let (src_names, dst_names) = annotator.lookup(src, dst, time)?;
    // The object parsed, so it ends with `}`; the fields are appended to the
    // original text so its key order and spelling survive.
    let body = line.trim_end();
    let body = body.strip_suffix('}').unwrap_or(body).trim_end();
    let separator = if body.ends_with('{') { "" } else { "," };
    let names =
        |names: &[Arc<str>]| serde_json::to_string(&names.iter().map(|n| &**n).collect::<Vec<_>>());
    let text = format!(
        "{body}{separator}\"src_names\":{},\"dst_names\":{}}}\n",
        names(&src_names).context("encoding names")?,
        names(&dst_names).context("encoding names")?
    );
    out.write_all(text.as_bytes())
        .context("writing the output")?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

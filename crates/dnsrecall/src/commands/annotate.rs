//! `dnsrecall annotate`: adds to each flow record the names whose A/AAAA
//! records pointed at its source and destination addresses at the flow's
//! time (`src_names`, `dst_names`).
//!
//! * Input: CSV with a header line, or NDJSON; files or standard input,
//!   read line by line (memory does not grow with the input).
//! * Lines are read by the query engine's flow parser
//!   ([`flows::FlowReader`]), which rejects a bad line with a reason.
//! * Lookup: the store's address index ([`annotate::sightings`]), filtered
//!   by time with [`annotate::names_at`]. Flows repeat addresses, so the
//!   sightings of an address are cached ([`annotate::SightingCache`],
//!   bounded to `cache_size` addresses).
//! * Output: the input line unchanged plus two CSV columns (names joined by
//!   `;`) or two JSON array fields. Rejected lines are not written; they are
//!   counted by reason and the first ones listed as `file:line: reason`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use dnsrecall_core::store::Store;
use dnsrecall_query::annotate::flows::{self, FlowFields, FlowReader, Line, Reject};
use dnsrecall_query::annotate::{self, SightingCache};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{AnnotateArgs, FlowFormat};
use crate::config::Config;

/// Rejected lines listed by place in the summary.
const SHOWN_REJECTS: usize = 10;
/// The progress bar is moved every this many lines.
const PROGRESS_EVERY: u64 = 16_384;

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

/// The names found for one address.
type Names = Vec<Arc<str>>;

/// Everything one run shares.
struct Annotator<'a> {
    store: &'a dyn Store,
    cache: SightingCache,
    slack: u64,
    max_names: usize,
    max_line_bytes: usize,
    summary: Summary,
    csv_header_written: bool,
}

impl Annotator<'_> {
    /// The names of `ip` at `time`.
    fn names(&mut self, ip: IpAddr, time: u64) -> anyhow::Result<Vec<Arc<str>>> {
        let sightings = self
            .cache
            .get(self.store, ip)
            .with_context(|| format!("looking up {ip}"))?;
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
        store: follower.as_ref(),
        cache: SightingCache::new(args.cache_size),
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
        annotator.cache.lookups(),
        annotator.cache.misses(),
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
        Some(FlowFormat::Csv) => flows::FlowFormat::Csv,
        Some(FlowFormat::Ndjson) => flows::FlowFormat::Ndjson,
        None => flows::FlowFormat::detect(
            reader
                .fill_buf()
                .with_context(|| format!("reading {name}"))?,
        ),
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
    let fields = FlowFields {
        src: args.src_field.clone(),
        dst: args.dst_field.clone(),
        time: args.time_field.clone(),
    };
    let mut flow_reader = FlowReader::new(format, fields, annotator.max_line_bytes);
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
        // A CSV header without the wanted columns stops the run: no line
        // of the file could be read.
        let line = flow_reader.line(&raw).with_context(|| name.clone())?;
        match line {
            Line::Blank => {}
            Line::Header(header) => {
                if !annotator.csv_header_written {
                    writeln!(out, "{header},src_names,dst_names").context("writing the output")?;
                    annotator.csv_header_written = true;
                }
            }
            Line::Rejected(reason) => {
                annotator.summary.flows += 1;
                annotator.summary.reject(&name, line_number, reason);
            }
            Line::Flow(flow) => {
                annotator.summary.flows += 1;
                let (src_names, dst_names) = annotator.lookup(flow.src, flow.dst, flow.time)?;
                let text = match flow_reader.format() {
                    flows::FlowFormat::Csv => {
                        flows::annotated_csv(flow.line, &src_names, &dst_names)
                    }
                    flows::FlowFormat::Ndjson => {
                        flows::annotated_json(flow.line, &src_names, &dst_names)
                            .context("encoding names")?
                    }
                };
                out.write_all(text.as_bytes())
                    .context("writing the output")?;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

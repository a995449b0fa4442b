//! `dnsrecall import`: files → records in the store, with a progress bar on
//! a terminal and a summary at the end.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use dnsrecall_core::passivedns::Layout;
use dnsrecall_core::store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ImportArgs;
use crate::config::Config;
use dnsrecall_ingest::driver::StoreWriter;
use dnsrecall_ingest::inputs::{
    self, ImportContext,
    lines::{self, LineParser, LineStats},
};
use std::io::BufRead as _;

pub fn run(args: &ImportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    if !args.from_d4.is_empty() {
        return import_d4(args, config);
    }
    let store = super::open_writer(config)?;
    let filters = dnsrecall_pipeline::FilterReloader::new(config.pipeline.filter.clone())
        .context("loading filter lists")?;
    let writer = StoreWriter::start(store.clone() as Arc<dyn Store>, &config.pipeline, &filters)?;
    let pipeline_metrics = writer.metrics();
    let sender = writer.sender();
    let parser = LineParser {
        format: args.format.map(|format| match format {
            crate::cli::ImportFormat::Passivedns => lines::ImportFormat::Passivedns,
            crate::cli::ImportFormat::Cof => lines::ImportFormat::Cof,
        }),
        layout: Layout::new(
            &config.import.passivedns_fields,
            &config.import.passivedns_delimiter,
        )?,
        sensor_id: config.import.sensor_id.as_deref().map(Arc::from),
        max_line_bytes: config.import.max_line_bytes,
    };
    let import = ImportContext {
        parser: &parser,
        batch_size: config.import.batch_size,
        capture: &config.capture,
    };
    let started = Instant::now();
    let mut stats = LineStats::default();
    let mut io_errors = Vec::new();
    let show_progress = std::io::stderr().is_terminal();
    for path in &args.files {
        let bar = if show_progress {
            let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(path.display().to_string());
            Some(bar)
        } else {
            None
        };
        let base_bytes = stats.bytes;
        let file_started = Instant::now();
        let lines_before = stats.lines;
        let line_counter = std::cell::Cell::new(0u64);
        let progress = |bytes: u64| {
            if let Some(bar) = &bar {
                bar.set_position(bytes - base_bytes);
                let elapsed = file_started.elapsed().as_secs_f64().max(1e-3);
                line_counter.set(line_counter.get() + 1);
                bar.set_message(format!(
                    "{:.0} lines/s",
                    (line_counter.get() * 65_536) as f64 / elapsed
                ));
            }
        };
        let mut emit = |batch| {
            sender
                .blocking_send(batch)
                .map_err(|_| anyhow::anyhow!("the store writer stopped"))
        };
        let result = lines::open_input(path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
            .and_then(|(mut reader, _)| {
                let head = reader
                    .fill_buf()
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                // Binary inputs are recognised by their magic; anything else
                // is read as lines.
                if let Some(import_reader) = inputs::import_reader(head) {
                    import_reader(reader, path, &import, &mut stats, &mut emit)
                } else {
                    lines::read_lines(
                        reader,
                        path,
                        &parser,
                        config.import.batch_size,
                        &mut stats,
                        &progress,
                        &mut emit,
                    )
                }
            });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if let Err(error) = result {
            eprintln!("dnsrecall: {error:#}");
            io_errors.push(error);
        }
        tracing::debug!(file = %path.display(), lines = stats.lines - lines_before, "input done");
    }
    drop(sender);
    let written = writer.finish().context("store writer")?;
    let elapsed = started.elapsed().as_secs_f64();
    print_summary(&stats, written.writes, elapsed);
    let dropped_by_filters: u64 = pipeline_metrics
        .snapshot()
        .iter()
        .filter(|(name, _, _)| name.starts_with("dnsrecall_pipeline_filter_dropped"))
        .map(|(_, _, value)| value)
        .sum();
    if dropped_by_filters > 0 {
        eprintln!("  {dropped_by_filters} records dropped by filters");
    }
    if args.json_summary {
        let summary = serde_json::json!({
            "lines": stats.lines,
            "records": stats.entries,
            "distinct_writes": written.writes,
            "comments": stats.comments,
            "skipped": stats.skipped,
            "error_responses": stats.error_responses,
            "rejected": stats.rejected,
            "rejected_total": stats.rejected_total(),
            "first_rejects": stats.first_rejects,
            "lenient_numbers": stats.lenient_numbers,
            "messages": stats.messages,
            "responses": stats.responses,
            "filtered": dropped_by_filters,
            "io_errors": io_errors.len(),
            "seconds": elapsed,
        });
        println!("{summary}");
    }
    if !io_errors.is_empty() || (args.strict && stats.rejected_total() > 0) {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(stats: &LineStats, writes: u64, seconds: f64) {
    let seconds = seconds.max(1e-6);
    // Lines of text inputs and frames/packets of binary ones, each with its
    // own rate (a run may mix both).
    let mut read = Vec::new();
    if stats.lines > 0 || stats.messages == 0 {
        read.push(format!(
            "{} lines ({:.0}/s)",
            stats.lines,
            stats.lines as f64 / seconds
        ));
    }
    if stats.messages > 0 {
        read.push(format!(
            "{} dnstap frames or packets ({:.0}/s, {} DNS responses)",
            stats.messages,
            stats.messages as f64 / seconds,
            stats.responses
        ));
    }
    eprintln!(
        "imported {} in {seconds:.2}s: {} records ({writes} distinct writes), {} comments, {} error responses, {} rejected",
        read.join(" and "),
        stats.entries,
        stats.comments,
        stats.error_responses.values().sum::<u64>(),
        stats.rejected_total()
    );
    if stats.lenient_numbers > 0 {
        eprintln!(
            "  {} numbers were given as strings (accepted)",
            stats.lenient_numbers
        );
    }
    for (reason, count) in &stats.skipped {
        eprintln!("  skipped {reason}: {count}");
    }
    for (reason, count) in &stats.rejected {
        eprintln!("  rejected {reason}: {count}");
    }
    for reject in &stats.first_rejects {
        eprintln!("  {reject}");
    }
}

/// Records copied per store write by `--from-d4` / `--to-d4`.
const COPY_BATCH: usize = 10_000;

/// Opens a D4 database given by `--from-d4` / `--to-d4` (several URLs:
/// seed nodes of a cluster).
pub(super) fn open_d4(urls: &[String]) -> anyhow::Result<dnsrecall_store::RedisStore> {
    let config = match urls {
        [one] => dnsrecall_store::RedisConfig::new(one.clone()),
        many => dnsrecall_store::RedisConfig::cluster(many.iter().cloned()),
    };
    dnsrecall_store::RedisStore::open(&config)
        .with_context(|| format!("cannot open the D4 database at {}", urls.join(", ")))
}

/// Copies every record of `from` into `to` with a progress bar on a
/// terminal (its length is the source's record estimate) and a summary on
/// stderr; returns the summary and the seconds taken.
pub(super) fn copy_with_progress(
    from: &dyn Store,
    to: &dyn Store,
    what: &str,
) -> anyhow::Result<(dnsrecall_redis::migrate::CopySummary, f64)> {
    let started = Instant::now();
    let bar = if std::io::stderr().is_terminal() {
        let estimate = from.info().map(|info| info.records_estimate).unwrap_or(0);
        let bar = ProgressBar::new(estimate);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/~{len} records {per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let summary = dnsrecall_redis::migrate::copy_all(from, to, COPY_BATCH, &mut |so_far| {
        if so_far.records > bar.length().unwrap_or(0) {
            bar.set_length(so_far.records);
        }
        bar.set_position(so_far.records);
    });
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("{what} failed"))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{what}: {} records ({} observations) in {seconds:.2}s ({:.0} records/s, {} batches)",
        summary.records,
        summary.observations,
        summary.records as f64 / seconds.max(1e-6),
        summary.batches
    );
    Ok((summary, seconds))
}

/// `import --from-d4 URL`: a D4 database into the configured store.
fn import_d4(args: &ImportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let source = open_d4(&args.from_d4)?;
    let store = super::open_writer(config)?;
    let (summary, seconds) = copy_with_progress(
        &source,
        store.as_ref() as &dyn Store,
        &format!("import from D4 {}", args.from_d4.join(", ")),
    )?;
    let incomplete = source.counters().incomplete_records;
    if incomplete > 0 {
        eprintln!("  {incomplete} D4 records without first/last seen keys (expired), skipped");
    }
    if args.json_summary {
        let summary = serde_json::json!({
            "records": summary.records,
            "observations": summary.observations,
            "batches": summary.batches,
            "skipped_incomplete": incomplete,
            "seconds": seconds,
        });
        println!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

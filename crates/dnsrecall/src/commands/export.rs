//! `dnsrecall export`: records as COF NDJSON (every record, or a name's or
//! an address's, as the query engine's [`dnsrecall_query::export`] visits
//! them).

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::Context;
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_core::{Entry, Name};
use dnsrecall_query::{QueryError, Subject};

use crate::cli::ExportArgs;
use crate::config::Config;

pub fn run(args: &ExportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let follower = super::open_follower(config)?;
    let store = follower.as_ref();
    if !args.to_d4.is_empty() {
        // Into a D4 database: every record, through the Store trait.
        let target = super::import::open_d4(&args.to_d4)?;
        super::import::copy_with_progress(
            store as &dyn dnsrecall_core::store::Store,
            &target,
            &format!("export to D4 {}", args.to_d4.join(", ")),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut output = BufWriter::with_capacity(256 * 1024, output);
    let style = CofStyle::default();
    let mut line = Vec::with_capacity(256);
    let mut failure = None;
    let mut count = 0u64;
    let mut visit = |entry: Entry| {
        line.clear();
        cof::write_line(&entry, &style, &mut line);
        match output.write_all(&line) {
            Ok(()) => {
                count += 1;
                ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    };
    let subject = match args.query.as_deref().map(str::trim) {
        None => None,
        Some(text) => Some(match text.parse::<std::net::IpAddr>() {
            Ok(address) => Subject::Address(address),
            Err(_) => Subject::Name(
                Name::from_presentation(text).with_context(|| format!("invalid name {text:?}"))?,
            ),
        }),
    };
    dnsrecall_query::export(store, subject.as_ref(), &mut visit).map_err(|error| match error {
        QueryError::Store(error) => anyhow::Error::from(error),
        other => anyhow::Error::from(other),
    })?;
    let result = match failure {
        Some(error) => Err(error),
        None => output.flush(),
    };
    match result {
        Ok(()) => {}
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => return Err(error).context("writing the export"),
    }
    tracing::info!(records = count, "export done");
    Ok(ExitCode::SUCCESS)
}

//! `dnsrecall export`: records as COF NDJSON.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::Context;
use dnsrecall_core::cof::{self, CofStyle};
use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, TypeFilter};
use dnsrecall_core::{Entry, Name};

use crate::cli::ExportArgs;
use crate::config::Config;

pub fn run(args: &ExportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let follower = super::open_follower(config)?;
    let store = follower.store.as_ref();
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
    match args.query.as_deref().map(str::trim) {
        None => store.scan_all(&mut visit)?,
        Some(text) => match text.parse::<std::net::IpAddr>() {
            Ok(address) => store.scan_rdata(
                &RdataQuery::Address {
                    first: address,
                    last: address,
                },
                &mut visit,
            )?,
            Err(_) => {
                let name = Name::from_presentation(text)
                    .with_context(|| format!("invalid name {text:?}"))?;
                let query = RrsetQuery {
                    name: NameMatch::Exact(name),
                    types: TypeFilter::All,
                    bailiwick: None,
                };
                store.scan_rrset(&query, &mut visit)?
            }
        },
    }
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

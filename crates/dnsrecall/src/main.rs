//! `dnsrecall`: the passive DNS binary. Parses the command line, builds the
//! effective configuration and hands it to one command; the commands wire
//! inputs, pipeline, store and server together (`dnsrecall-ingest`, `dnsrecall-store`, `dnsrecall-http`).

mod cli;
mod commands;
mod config;

use std::process::ExitCode;

use clap::Parser;

/// The allocator is mimalloc rather than glibc's malloc. Ingest allocates
/// millions of small names and rdata on the source threads and frees them
/// on the writer and sink threads; with glibc that cost ~18% of the CPU of a
/// dnstap ingest (malloc, consolidation, cross-thread frees) and left
/// freed memory in per-thread arenas, so RSS grew well past the dedup
/// cache's bound. Measured in BENCHMARKS.md ("dnstap", "Ingest pipeline").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli);
    let config = match config::Config::load(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("dnsrecall: configuration error: {error:#}");
            return ExitCode::from(2);
        }
    };
    match commands::run(cli.command, config) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("dnsrecall: {error:#}");
            ExitCode::from(1)
        }
    }
}

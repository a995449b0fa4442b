//! `dnsrecall`: the passive DNS binary. Parses the command line, builds the
//! effective configuration and hands it to one command; the commands wire
//! sources, pipeline, store and server together.

mod cli;
mod commands;
mod config;
mod pipeline;
mod sources;

use std::process::ExitCode;

use clap::Parser;

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

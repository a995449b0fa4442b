//! One module per command; `run` dispatches.

mod annotate;
mod export;
mod import;
mod query;
mod serve;
mod user;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use dnsrecall_store::{Access, Backend, OpenError};

use crate::cli::{Command, ConfigCommand, UserCommand};
use crate::config::Config;

pub fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(_) => serve::run(&config),
        Command::Import(args) => import::run(&args, &config),
        Command::Export(args) => export::run(&args, &config),
        Command::Query(args) => query::run(&args, &config),
        Command::Annotate(args) => annotate::run(&args, &config),
        Command::Compact => {
            let store = open_writer(&config)?;
            store.compact().context("compacting the store")?;
            let info = store.info()?;
            println!(
                "compacted {}: {} records (estimate), {} bytes on disk",
                config.data_dir.display(),
                info.records_estimate,
                info.disk_bytes.unwrap_or(0)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Add(args)) => user::add(&args, &config),
        Command::User(UserCommand::List(args)) => user::list(&args, &config),
        Command::User(UserCommand::Remove(args)) => user::remove(&args, &config),
        Command::Config(ConfigCommand::Check) => {
            config.api_keys().context("api keys")?;
            print!("{}", config.to_toml()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Opens the configured store for writing (one writer process at a time).
pub fn open_writer(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(dnsrecall_store::open(
        &config.store_config(),
        Access::Writer,
    )?)
}

/// A read-only view of the store that works while a server writes to it.
/// A store no writer has created yet is an error that says so ("store not
/// yet created").
pub fn open_follower(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    match dnsrecall_store::open(&config.store_config(), Access::Follower) {
        Ok(store) => Ok(store),
        Err(error @ OpenError::NotCreated(_)) => Err(anyhow::anyhow!(
            "{error} (import something first, or use --server)"
        )),
        Err(error) => Err(error.into()),
    }
}

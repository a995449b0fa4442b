//! One module per command; `run` dispatches.

mod annotate;
mod export;
mod import;
mod query;
mod serve;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use dnsrecall_store::{OpenMode, RocksConfig, RocksStore};

use crate::cli::{Command, ConfigCommand};
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
            use dnsrecall_core::store::Store as _;
            let info = store.info()?;
            println!(
                "compacted {}: {} records (estimate), {} bytes on disk",
                config.data_dir.display(),
                info.records_estimate,
                info.disk_bytes.unwrap_or(0)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check) => {
            config.api_keys().context("api keys")?;
            print!("{}", config.to_toml()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rocks_config(config: &Config) -> RocksConfig {
    RocksConfig {
        block_cache_bytes: config.store.block_cache_mib << 20,
        write_buffer_bytes: config.store.write_buffer_mib << 20,
        recent_names: config.store.recent_names,
        max_age_secs: (config.store.max_age_days > 0)
            .then(|| config.store.max_age_days.saturating_mul(86_400)),
        ..RocksConfig::default()
    }
}

/// Opens the data directory for writing (one writer process at a time).
pub fn open_writer(config: &Config) -> anyhow::Result<Arc<RocksStore>> {
    let store = RocksStore::open(&config.data_dir, OpenMode::ReadWrite, &rocks_config(config))
        .with_context(|| format!("cannot open data directory {}", config.data_dir.display()))?;
    Ok(Arc::new(store))
}

/// A read-only view of the data directory that works while a server writes
/// to it (RocksDB secondary instance in a private temporary directory).
pub struct Follower {
    pub store: Arc<RocksStore>,
    secondary: std::path::PathBuf,
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.secondary);
    }
}

pub fn open_follower(config: &Config) -> anyhow::Result<Follower> {
    let dir: &Path = &config.data_dir;
    if !dir.join("CURRENT").exists() {
        anyhow::bail!(
            "no dnsrecall data in {} (import something first, or use --server)",
            dir.display()
        );
    }
    let secondary = std::env::temp_dir().join(format!("dnsrecall-follower-{}", std::process::id()));
    let store = RocksStore::open(
        dir,
        OpenMode::Follower {
            secondary_dir: secondary.clone(),
        },
        &rocks_config(config),
    )
    .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    use dnsrecall_core::store::Store as _;
    store
        .refresh()
        .context("catching up with the data directory")?;
    Ok(Follower {
        store: Arc::new(store),
        secondary,
    })
}

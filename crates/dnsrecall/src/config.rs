//! The effective configuration: built-in defaults, then the TOML file, then
//! command-line flags (later wins), ending in one printable [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./dnsrecall-data";
/// Default HTTP API address (the D4 passive DNS server's port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8400";
/// Default cap on records in one D4/PyPDNS answer.
pub const DEFAULT_MAX_RESULTS: usize = 100_000;
/// Default import batch (entries per store write).
pub const DEFAULT_BATCH_SIZE: usize = 20_000;
/// Longest accepted input line; longer lines are rejected and skipped.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;
/// Default seconds between saves of the quota counters.
pub const DEFAULT_QUOTA_STATE_INTERVAL_SECS: u64 = 10;
/// The quota state file's name in the data directory.
pub const QUOTA_STATE_FILE_NAME: &str = "api-quotas.json";

/// Everything a command needs to know.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory of the embedded store.
    pub data_dir: PathBuf,
    pub api: ApiSection,
    pub store: StoreSection,
    pub import: ImportSection,
    /// `[dnstap]`: one dnstap input (the older spelling of
    /// `[[inputs]] kind = "dnstap"`); its `[[dnstap.outputs]]` are message
    /// outputs of every input (`[[outputs]] kind = "file"`).
    pub dnstap: dnsrecall_ingest::inputs::dnstap::DnstapConfig,
    /// `[capture]`: one capture input (`[[inputs]] kind = "capture"`); its
    /// decoding keys also apply to `import` of pcap files.
    pub capture: dnsrecall_ingest::inputs::capture::CaptureConfig,
    /// `[[inputs]]`: more inputs, each with its `kind`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<dnsrecall_ingest::inputs::InputConfig>,
    /// `[[outputs]]`: message outputs, each with its `kind`; every DNS
    /// message any input decodes goes to each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<dnsrecall_ingest::outputs::OutputEntry>,
    /// `[geoip]`: MaxMind-format databases enriching every output's
    /// messages with the client's country, city and AS (docs/outputs.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoip: Option<dnsrecall_ingest::outputs::geoip::GeoIpConfig>,
    /// `[pipeline]`: filters, bailiwick verification and the de-duplication
    /// cache (see crates/dnsrecall-pipeline/README.md).
    pub pipeline: dnsrecall_pipeline::PipelineConfig,
    /// `[stats]`: DNS traffic statistics of every message `serve`'s inputs
    /// decode (docs/stats.md); present = on, in one memory bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<dnsrecall_stats::StatsConfig>,
    /// `[memory]`: the one memory budget the large consumers are sized
    /// from (RocksDB, the de-duplication cache, the statistics); a part set
    /// explicitly in its own section keeps its value.
    pub memory: MemorySection,
}

/// `[memory]`: the process's memory budget and how it is shared.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    /// The budget in MiB [default: 1024]. Shares (docs/reliability.md):
    /// RocksDB 1/2 (its block cache, with index and filter blocks and the
    /// memtables charged to it; memtables at most half of it), the
    /// de-duplication cache 1/4, statistics 1/16, the right-hand wildcard
    /// index memory `budget_mib × 1024` names (about 1/32); the rest is
    /// left for queues, buffers and the allocator.
    pub budget_mib: usize,
}

impl Default for MemorySection {
    fn default() -> Self {
        MemorySection {
            budget_mib: DEFAULT_MEMORY_BUDGET_MIB,
        }
    }
}

/// The default `[memory] budget_mib`: its shares are the sizes every part
/// had before the budget existed.
pub const DEFAULT_MEMORY_BUDGET_MIB: usize = 1024;

/// `[api]`: the HTTP query server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// `origin` URI written into every COF record (omitted when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Most records in one D4/PyPDNS answer.
    pub max_results: usize,
    /// Request timeout in seconds.
    pub request_timeout_secs: u64,
    /// Accepted API keys (X-API-Key, raw Authorization, or Basic password).
    pub api_keys: Vec<String>,
    /// A file with one API key per line (`#` comments), added to `api_keys`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys_file: Option<PathBuf>,
    /// Allow listening on a non-loopback address without API keys.
    pub allow_public_without_keys: bool,
    /// DNSDB API: most results one query may return (`limit=0`).
    pub dnsdb_max_results: u64,
    /// DNSDB API: largest `offset` accepted.
    pub dnsdb_offset_max: u64,
    /// DNSDB API: SHA-256 key digests with optional quotas, one per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnsdb_keys_file: Option<PathBuf>,
    /// User accounts for HTTP Basic authentication, one per line:
    /// `NAME ARGON2-PHC-HASH [quota=N] [burst=N/SECONDS]` (`dnsrecall user
    /// add NAME` writes them; re-read when it changes). Setting it turns
    /// authentication on, as `api_keys` does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_file: Option<PathBuf>,
    /// Where the daily quota counters of DNSDB keys and users are saved so
    /// that a restart keeps them [default: `<data_dir>/api-quotas.json`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_state_file: Option<PathBuf>,
    /// Seconds between saves of changed quota counters (they are saved at
    /// shutdown too; a kill -9 loses at most this long's counts).
    pub quota_state_interval_secs: u64,
    /// `[api.limits]`: request line, header, body and time limits, and the
    /// connection limit, on every route (414/431/413/408/503).
    pub limits: dnsrecall_http::guard::Limits,
    /// `[api.rate_limits]`: requests per second per API key, and per client
    /// address for requests without an accepted key (429; 0: off).
    pub rate_limits: dnsrecall_http::guard::RateLimits,
}

/// `[store]`: which backend holds the records, and its tuning.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// The backend: `rocksdb` (embedded, in `data_dir`; the default).
    pub kind: dnsrecall_store::StoreKind,
    /// Block cache in MiB.
    pub block_cache_mib: usize,
    /// Memtable size per column family in MiB.
    pub write_buffer_mib: usize,
    /// Right-hand wildcard index entries (name, type) remembered as written,
    /// so repeats are not merged again (about 20 bytes each). 0: none.
    pub recent_names: usize,
    /// Retention in days: records not seen for longer disappear at
    /// compaction (0 keeps everything).
    pub max_age_days: u64,
    /// `kind = "redis"`: the server, `"redis://127.0.0.1:6400/0"` (D4's
    /// port and db), or a list of seed nodes of a Redis Cluster,
    /// `["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]` (docs/d4.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<dnsrecall_store::RedisUrls>,
    /// `kind = "redis"`: D4's `[expiration]`, rrtype number → seconds
    /// (`expiration = { "16" = 24000 }`); default: nothing expires.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub expiration: std::collections::BTreeMap<u16, u64>,
    /// `kind = "redis"`: after each batch, wait until this many replicas
    /// have it (`WAIT`; default 0, no wait).
    pub wait_replicas: u32,
}

/// `[import]`: file import.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportSection {
    /// passivedns `-f` field letters of the input logs.
    pub passivedns_fields: String,
    /// passivedns `-d` delimiter.
    pub passivedns_delimiter: String,
    /// Sensor identity for records that carry none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor_id: Option<String>,
    /// Entries per store write.
    pub batch_size: usize,
    /// Longest accepted line in bytes.
    pub max_line_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            api: ApiSection::default(),
            store: StoreSection::default(),
            import: ImportSection::default(),
            dnstap: Default::default(),
            capture: Default::default(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            geoip: None,
            pipeline: Default::default(),
            stats: None,
            memory: MemorySection::default(),
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8400))),
            origin: None,
            max_results: DEFAULT_MAX_RESULTS,
            request_timeout_secs: 30,
            api_keys: Vec::new(),
            api_keys_file: None,
            allow_public_without_keys: false,
            dnsdb_max_results: 1_000_000,
            dnsdb_offset_max: 3_000_000,
            dnsdb_keys_file: None,
            users_file: None,
            quota_state_file: None,
            quota_state_interval_secs: DEFAULT_QUOTA_STATE_INTERVAL_SECS,
            limits: Default::default(),
            rate_limits: Default::default(),
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            kind: dnsrecall_store::StoreKind::default(),
            block_cache_mib: 512,
            write_buffer_mib: 64,
            recent_names: 1 << 20,
            max_age_days: 0,
            url: None,
            expiration: Default::default(),
            wait_replicas: 0,
        }
    }
}

impl Default for ImportSection {
    fn default() -> Self {
        ImportSection {
            passivedns_fields: dnsrecall_core::passivedns::DEFAULT_FIELDS.to_string(),
            passivedns_delimiter: dnsrecall_core::passivedns::DEFAULT_DELIMITER.to_string(),
            sensor_id: None,
            batch_size: DEFAULT_BATCH_SIZE,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl Config {
    /// Defaults, then the file, then the flags.
    pub fn load(cli: &Cli) -> anyhow::Result<Config> {
        let mut config = match &cli.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &cli.data_dir {
            config.data_dir = dir.clone();
        }
        match &cli.command {
            Command::Serve(args) => {
                if let Some(listen) = args.listen {
                    config.api.listen = listen;
                }
                if let Some(origin) = &args.origin {
                    config.api.origin = Some(origin.clone());
                }
                if let Some(address) = args.dnstap_tcp {
                    config.dnstap.tcp = Some(address);
                }
                if let Some(address) = args.dnstap_tls {
                    config.dnstap.tls = Some(address);
                }
                if let Some(path) = &args.dnstap_unix {
                    config.dnstap.unix = Some(path.clone());
                }
                if let Some(interface) = &args.capture {
                    config.capture.interface = Some(interface.clone());
                }
                if let Some(bpf) = &args.bpf {
                    config.capture.bpf = Some(bpf.clone());
                }
            }
            Command::Import(args) => {
                if let Some(sensor) = &args.sensor_id {
                    config.import.sensor_id = Some(sensor.clone());
                }
            }
            _ => {}
        }
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: Config = toml::from_str(&text)
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        config.apply_memory_budget(&table);
        // Relative paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = resolve(base, &config.data_dir);
        if let Some(file) = &config.api.dnsdb_keys_file {
            config.api.dnsdb_keys_file = Some(resolve(base, file));
        }
        if let Some(file) = &config.api.api_keys_file {
            config.api.api_keys_file = Some(resolve(base, file));
        }
        if let Some(file) = &config.api.users_file {
            config.api.users_file = Some(resolve(base, file));
        }
        if let Some(file) = &config.api.quota_state_file {
            config.api.quota_state_file = Some(resolve(base, file));
        }
        config.dnstap.resolve_paths(base);
        config.capture.resolve_paths(base);
        for input in &mut config.inputs {
            input.resolve_paths(base);
        }
        for output in &mut config.outputs {
            output.resolve_paths(base);
        }
        if let Some(geoip) = &mut config.geoip {
            geoip.resolve_paths(base);
        }
        let filter = &mut config.pipeline.filter;
        for path in filter.allow.iter_mut().chain(filter.deny.iter_mut()) {
            *path = resolve(base, path);
        }
        if let Some(hints) = &config.pipeline.bailiwick.root_hints {
            config.pipeline.bailiwick.root_hints = Some(resolve(base, hints));
        }
        Ok(config)
    }

    /// Sizes every part of the memory budget the file did not set itself.
    fn apply_memory_budget(&mut self, file: &toml::Table) {
        let set = |section: &str, key: &str| {
            let mut table = Some(file);
            for part in section.split('.') {
                table = table
                    .and_then(|t| t.get(part))
                    .and_then(toml::Value::as_table);
            }
            table.is_some_and(|t| t.contains_key(key))
        };
        let budget = self.memory.budget_mib;
        if !set("store", "block_cache_mib") {
            self.store.block_cache_mib = budget / 2;
        }
        if !set("store", "recent_names") {
            self.store.recent_names = budget.saturating_mul(1024);
        }
        if !set("pipeline.dedup", "max_bytes") {
            self.pipeline.dedup.max_bytes = (budget / 4) << 20;
        }
        if let Some(stats) = &mut self.stats
            && !set("stats", "memory_bound")
        {
            stats.memory_bound = ((budget / 16) as u64) << 20;
        }
    }

    /// One line saying what each part of the memory budget got, for the
    /// start-up log.
    pub fn memory_plan(&self) -> String {
        let budget = self.memory.budget_mib;
        let rocksdb = self.store.block_cache_mib;
        let dedup = self.pipeline.dedup.max_bytes >> 20;
        let stats = self
            .stats
            .as_ref()
            .map_or(0, |s| (s.memory_bound >> 20) as usize);
        // About 32 bytes a remembered name (hash table slot and key).
        let names = (self.store.recent_names * 32) >> 20;
        let rest = budget.saturating_sub(rocksdb + dedup + stats + names);
        format!(
            "memory budget {budget} MiB: rocksdb {rocksdb} MiB (memtables at most {} MiB), \
             dedup cache {dedup} MiB, statistics {stats} MiB, wildcard index memory ~{names} MiB, \
             {rest} MiB left for queues and buffers",
            rocksdb / 2
        )
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.memory.budget_mib < 64 {
            bail!("memory.budget_mib must be at least 64");
        }
        dnsrecall_core::passivedns::Layout::new(
            &self.import.passivedns_fields,
            &self.import.passivedns_delimiter,
        )
        .context("import.passivedns_fields")?;
        if self.import.batch_size == 0 {
            bail!("import.batch_size must be at least 1");
        }
        if self.import.max_line_bytes < 256 {
            bail!("import.max_line_bytes must be at least 256");
        }
        if self.api.max_results == 0 {
            bail!("api.max_results must be at least 1");
        }
        self.dnstap.validate()?;
        for input in &self.inputs {
            input.validate()?;
        }
        for output in &self.outputs {
            output.validate().map_err(anyhow::Error::msg)?;
        }
        if let Some(geoip) = &self.geoip {
            geoip.validate().map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// Every input of `serve`: `[dnstap]`, `[capture]`, then `[[inputs]]`
    /// (an input kind with nothing configured starts nothing).
    pub fn all_inputs(&self) -> Vec<dnsrecall_ingest::inputs::InputConfig> {
        use dnsrecall_ingest::inputs::InputConfig;
        let mut inputs = vec![
            InputConfig::Dnstap(self.dnstap.clone()),
            InputConfig::Capture(self.capture.clone()),
        ];
        inputs.extend(self.inputs.iter().cloned());
        inputs
    }

    /// Every message output: `[[dnstap.outputs]]`, then `[[outputs]]`.
    pub fn all_outputs(&self) -> Vec<dnsrecall_ingest::outputs::OutputEntry> {
        use dnsrecall_ingest::outputs::{OutputConfig, OutputEntry};
        self.dnstap
            .outputs
            .iter()
            .cloned()
            .map(|file| OutputEntry::new(OutputConfig::File(file)))
            .chain(self.outputs.iter().cloned())
            .collect()
    }

    /// What [`dnsrecall_store::open`] needs.
    pub fn store_config(&self) -> dnsrecall_store::StoreConfig {
        let store = &self.store;
        dnsrecall_store::StoreConfig {
            kind: store.kind,
            data_dir: self.data_dir.clone(),
            rocksdb: dnsrecall_store::RocksConfig {
                block_cache_bytes: store.block_cache_mib << 20,
                write_buffer_bytes: store.write_buffer_mib << 20,
                memtable_budget_bytes: Some((store.block_cache_mib << 20) / 2),
                recent_names: store.recent_names,
                max_age_secs: (store.max_age_days > 0)
                    .then(|| store.max_age_days.saturating_mul(86_400)),
                ..dnsrecall_store::RocksConfig::default()
            },
            redis: store.url.clone().map(|url| dnsrecall_store::RedisConfig {
                url,
                expiration: store.expiration.clone(),
                wait_replicas: store.wait_replicas,
                ..dnsrecall_store::RedisConfig::new(String::new())
            }),
        }
    }

    /// All API keys: inline ones and those of `api_keys_file`.
    pub fn api_keys(&self) -> anyhow::Result<Vec<String>> {
        let mut keys = self.api.api_keys.clone();
        if let Some(path) = &self.api.api_keys_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read api_keys_file {}", path.display()))?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        if keys.iter().any(|k| k.len() < 8) {
            bail!("API keys must be at least 8 characters long");
        }
        Ok(keys)
    }

    /// Where `serve` keeps the quota counters.
    pub fn quota_state_file(&self) -> PathBuf {
        self.api
            .quota_state_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(QUOTA_STATE_FILE_NAME))
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.api.api_keys = shown
            .api
            .api_keys
            .iter()
            .map(|_| "<redacted>".to_string())
            .collect();
        Ok(toml::to_string_pretty(&shown)?)
    }
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn layers_defaults_file_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dnsrecall.toml");
        std::fs::write(
            &file,
            "data_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:9000\"\norigin = \"https://file\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "dnsrecall",
            "--config",
            file.to_str().unwrap(),
            "serve",
            "--origin",
            "https://flag",
        ]);
        let config = Config::load(&cli).unwrap();
        assert_eq!(
            config.data_dir,
            dir.path().join("data"),
            "file value, resolved against the file"
        );
        assert_eq!(config.api.listen.port(), 9000, "file beats default");
        assert_eq!(
            config.api.origin.as_deref(),
            Some("https://flag"),
            "flag beats file"
        );
        assert_eq!(config.api.max_results, DEFAULT_MAX_RESULTS, "default kept");
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[api]\nlisten_port = 1\n").unwrap();
        let cli = Cli::parse_from([
            "dnsrecall",
            "--config",
            file.to_str().unwrap(),
            "config",
            "check",
        ]);
        let error = format!("{:#}", Config::load(&cli).unwrap_err());
        assert!(error.contains("listen_port"), "{error}");
    }

    #[test]
    fn store_kind_defaults_to_rocksdb_and_unknown_kinds_are_named() {
        let config: Config = toml::from_str("[store]\nblock_cache_mib = 8\n").unwrap();
        assert_eq!(config.store.kind, dnsrecall_store::StoreKind::Rocksdb);
        let config: Config = toml::from_str("[store]\nkind = \"rocksdb\"\n").unwrap();
        assert_eq!(
            config.store_config().kind,
            dnsrecall_store::StoreKind::Rocksdb
        );
        let error = toml::from_str::<Config>("[store]\nkind = \"cassandra\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cassandra") && error.contains("rocksdb"),
            "{error}"
        );
    }

    #[test]
    fn redis_store_takes_one_url_or_cluster_seeds() {
        let config: Config = toml::from_str(
            "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6400/0\"\nexpiration = { \"16\" = 24000 }\n",
        )
        .unwrap();
        let store = config.store_config();
        assert_eq!(store.kind, dnsrecall_store::StoreKind::Redis);
        let redis = store.redis.unwrap();
        assert_eq!(redis.url.as_slice(), ["redis://127.0.0.1:6400/0"]);
        assert_eq!(redis.expiration.get(&16), Some(&24000));
        let config: Config = toml::from_str(
            "[store]\nkind = \"redis\"\nurl = [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\"]\n",
        )
        .unwrap();
        assert_eq!(config.store_config().redis.unwrap().url.as_slice().len(), 2);
        let printed = config.to_toml().unwrap();
        assert!(printed.contains("redis://127.0.0.1:7001"), "{printed}");
        let config: Config = toml::from_str("[store]\nkind = \"redis\"\n").unwrap();
        assert!(config.store_config().redis.is_none());
    }

    #[test]
    fn inputs_and_outputs_lists_and_their_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[[dnstap.outputs]]\nformat = \"text\"\n\
             [[inputs]]\nkind = \"capture\"\nfiles = [\"x.pcap\"]\n\
             [[inputs]]\nkind = \"dnstap\"\ntcp = \"127.0.0.1:6000\"\n\
             [[outputs]]\nkind = \"file\"\nformat = \"json\"\ntarget = \"log/m.json\"\n",
        )
        .unwrap();
        let config = Config::from_file(&file).unwrap();
        config.validate().unwrap();
        use dnsrecall_ingest::inputs::InputConfig;
        use dnsrecall_ingest::outputs::OutputConfig;
        let inputs = config.all_inputs();
        assert_eq!(inputs.len(), 4, "[dnstap], [capture], then two [[inputs]]");
        match &inputs[2] {
            InputConfig::Capture(capture) => {
                assert_eq!(capture.files, [dir.path().join("x.pcap")])
            }
            other => panic!("expected capture, got {other:?}"),
        }
        assert!(matches!(&inputs[3], InputConfig::Dnstap(d) if d.tcp.is_some()));
        let outputs = config.all_outputs();
        assert_eq!(outputs.len(), 2, "the alias first, then [[outputs]]");
        if let OutputConfig::File(file) = &outputs[1].config {
            assert_eq!(
                file.path,
                dir.path().join("log/m.json").display().to_string()
            );
        } else {
            panic!("expected a file output, got {:?}", outputs[1]);
        }
        // Round trip through the printed configuration.
        let printed = config.to_toml().unwrap();
        let again: Config = toml::from_str(&printed).unwrap();
        assert_eq!(again.all_outputs(), outputs);
        for bad in [
            "[[inputs]]\nkind = \"websocket\"\n",
            "[[outputs]]\nkind = \"file\"\nformat = \"json\"\ncolour = 1\n",
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_budget_sizes_the_parts_not_set_explicitly() {
        let parse = |text: &str| {
            let mut config: Config = toml::from_str(text).unwrap();
            config.apply_memory_budget(&toml::from_str(text).unwrap());
            config.validate().unwrap();
            config
        };
        // The default budget gives every part its historical default.
        let default = parse("");
        let plain = Config::default();
        assert_eq!(default.store.block_cache_mib, plain.store.block_cache_mib);
        assert_eq!(default.store.recent_names, plain.store.recent_names);
        assert_eq!(
            default.pipeline.dedup.max_bytes,
            plain.pipeline.dedup.max_bytes
        );

        let small = parse("[memory]\nbudget_mib = 256\n[stats]\n");
        assert_eq!(small.store.block_cache_mib, 128);
        assert_eq!(small.store.recent_names, 256 * 1024);
        assert_eq!(small.pipeline.dedup.max_bytes, 64 << 20);
        assert_eq!(small.stats.as_ref().unwrap().memory_bound, 16 << 20);
        assert_eq!(
            small.store_config().rocksdb.memtable_budget_bytes,
            Some(64 << 20)
        );
        assert!(small.memory_plan().starts_with("memory budget 256 MiB"));

        let explicit = parse(
            "[memory]\nbudget_mib = 256\n[store]\nblock_cache_mib = 300\n\
             [pipeline.dedup]\nmax_bytes = 1000\n[stats]\nmemory_bound = 2000000\n",
        );
        assert_eq!(explicit.store.block_cache_mib, 300);
        assert_eq!(explicit.pipeline.dedup.max_bytes, 1000);
        assert_eq!(explicit.stats.as_ref().unwrap().memory_bound, 2_000_000);
        assert_eq!(explicit.store.recent_names, 256 * 1024);

        let mut tiny: Config = toml::from_str("[memory]\nbudget_mib = 10\n").unwrap();
        tiny.apply_memory_budget(&toml::Table::new());
        assert!(tiny.validate().is_err());
    }

    #[test]
    fn documented_example_parses() {
        let example = include_str!("../../../docs/dnsrecall.example.toml");
        let config: Config = toml::from_str(example).unwrap();
        config.validate().unwrap();
    }
}

//! Inputs as components: each kind in its own module with its config type
//! beside it, started from the configuration through one registry
//! ([`start`]), configured as `[[inputs]] kind = "..."` (the `[dnstap]` and
//! `[capture]` sections are the older spelling of one input each).
//!
//! A message input (dnstap, capture) turns what it receives into
//! [`dnsrecall_core::message::DnsMessage`]s, offers each to the message
//! outputs and hands it to the shared decode step
//! ([`crate::decode::MessageDecoder`]); a file importer (passivedns, COF
//! lines; dnstap and pcap files) turns a file into batches.
//!
//! Adding an input: a module here, one [`InputConfig`] variant, one arm in
//! [`start`] (and in [`import_reader`] for a file format). `serve` and
//! `import` need no change.

pub mod capture;
pub mod cof_websocket;
pub mod d4;
pub mod dnstap;
pub mod lines;

use dnsrecall_pipeline::Batch;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::IngestContext;

/// `[[inputs]]`: one input.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InputConfig {
    /// dnstap over unix/TCP/TLS listeners and outgoing clients.
    Dnstap(dnstap::DnstapConfig),
    /// Live capture on an interface, or pcap/pcapng files.
    Capture(capture::CaptureConfig),
    /// The D4 analyzer queue (passivedns lines in a D4 server's Redis).
    D4(d4::D4InputConfig),
    /// COF NDJSON over a websocket (ws://, wss://).
    #[serde(rename = "cof-websocket")]
    CofWebsocket(dnsrecall_redis::websocket::CofWebsocketConfig),
}

impl InputConfig {
    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        match self {
            InputConfig::Dnstap(config) => config.resolve_paths(base),
            InputConfig::Capture(config) => config.resolve_paths(base),
            InputConfig::D4(_) | InputConfig::CofWebsocket(_) => {}
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        match self {
            InputConfig::Dnstap(config) => config.validate(),
            InputConfig::Capture(config) => config.validate(),
            InputConfig::D4(config) => config.validate(),
            InputConfig::CofWebsocket(config) => cof_websocket::validate(config),
        }
    }
}

/// Starts every configured input (binding everything first: an error
/// starts nothing more). The returned tasks end after shutdown, once each
/// input has drained what it held.
pub async fn start(
    inputs: &[InputConfig],
    context: &IngestContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for input in inputs {
        tasks.extend(match input {
            InputConfig::Dnstap(config) => dnstap::start(config, context).await?,
            InputConfig::Capture(config) => capture::start(config, context).await?,
            InputConfig::D4(config) => d4::start(config, context).await?,
            InputConfig::CofWebsocket(config) => cof_websocket::start(config, context).await?,
        });
    }
    Ok(tasks)
}

/// What a file importer needs besides the file.
pub struct ImportContext<'a> {
    pub parser: &'a lines::LineParser,
    /// Entries per batch.
    pub batch_size: usize,
    /// Capture settings (pairing, additional policy, sensor) for pcap
    /// files. (dnstap files are read with the `[dnstap]` defaults.)
    pub capture: &'a capture::CaptureConfig,
}

/// The shape of a binary file importer (`dnstap`, `capture`): a
/// decompressed reader in, batches of entries out, counts in `stats`.
pub type ImportReader = fn(
    Box<dyn std::io::BufRead + Send>,
    &std::path::Path,
    &ImportContext<'_>,
    &mut lines::LineStats,
    &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()>;

/// The binary importer for a file starting with `head`, if its magic is
/// known; other files are read as lines ([`lines::read_lines`]).
pub fn import_reader(head: &[u8]) -> Option<ImportReader> {
    if dnstap::sniff(head) {
        Some(dnstap::import_reader)
    } else if capture::sniff(head) {
        Some(capture::import_reader)
    } else {
        None
    }
}

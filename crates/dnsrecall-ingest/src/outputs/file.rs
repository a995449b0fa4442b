//! `kind = "file"`: message logs compatible with python dnstap-receiver
//! (text lines, JSON lines, YAML documents) or dnstap Frame Streams files,
//! to stdout or a file rotated by size. Rendering and writing are
//! dnsrecall-dnstap's; this output feeds them every message, captured
//! packets included (their dnstap protobuf is encoded for `dnstap` files).
//! `[[dnstap.outputs]]` is the old spelling of the same output.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::Metrics;
use dnsrecall_dnstap::output::{Dispatcher, Format, LatencyTable, OutputConfig, Target};
use dnsrecall_metrics::Registry;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::{BuildError, MessageOutput};
use crate::message;

/// Rendering of a message output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// dnstap-receiver text lines.
    Text,
    /// One JSON object per line.
    Json,
    /// YAML documents.
    Yaml,
    /// The frames as received (captured packets: encoded), as a Frame
    /// Streams file.
    Dnstap,
}

/// `[[outputs]] kind = "file"` (and `[[dnstap.outputs]]`): a message log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `text`, `json`, `yaml` or `dnstap` (required).
    pub format: OutputFormat,
    /// `stdout` or a file path [default: `stdout`].
    #[serde(default = "default_target")]
    pub target: String,
    /// Rotate a file before it grows past this many bytes; 0 = never [default: 0].
    #[serde(default)]
    pub max_size: u64,
    /// Rotated copies kept (`FILE.1` newest) [default: 5].
    #[serde(default = "default_max_files")]
    pub max_files: usize,
    /// Messages queued for this output; beyond, messages are dropped and
    /// counted [default: 10000].
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
}

fn default_target() -> String {
    "stdout".to_string()
}

fn default_max_files() -> usize {
    5
}

fn default_queue_size() -> usize {
    10_000
}

impl FileConfig {
    /// Makes a relative file target relative to `base` (the config file's
    /// directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.target != "stdout" && Path::new(&self.target).is_relative() {
            self.target = base.join(&self.target).display().to_string();
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.queue_size == 0 {
            return Err(format!(
                "output {}: queue_size must be at least 1",
                self.target
            ));
        }
        Ok(())
    }
}

/// A running file output: a bounded queue to a writer thread.
pub struct FileOutput {
    /// `None` once finished.
    dispatcher: Mutex<Option<Dispatcher>>,
    writer: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
    target: String,
}

impl FileOutput {
    /// Opens the target and starts the writer (inside a tokio runtime).
    pub fn start(config: &FileConfig, registry: &Registry) -> Result<FileOutput, BuildError> {
        let metrics = Arc::new(Metrics::default());
        let exported = Arc::clone(&metrics);
        // Only the output counters: the rest of the struct belongs to the
        // dnstap input.
        registry.register_samples(move || {
            exported
                .snapshot()
                .into_iter()
                .filter(|(name, _, _)| name.contains("_output_"))
                .collect()
        });
        let mut dispatcher = Dispatcher::new(LatencyTable::default(), metrics);
        let format = match config.format {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
            OutputFormat::Yaml => Format::Yaml,
            OutputFormat::Dnstap => Format::Dnstap,
        };
        let target = if config.target == "stdout" {
            Target::Stdout
        } else {
            Target::File {
                path: PathBuf::from(&config.target),
                max_size: config.max_size,
                max_files: config.max_files,
            }
        };
        let mut output = OutputConfig::new(format, target);
        output.queue_size = config.queue_size;
        let writer = dispatcher
            .add_output(output)
            .map_err(|source| BuildError::Open {
                target: config.target.clone(),
                source,
            })?;
        Ok(FileOutput {
            dispatcher: Mutex::new(Some(dispatcher)),
            writer: Mutex::new(Some(writer)),
            target: config.target.clone(),
        })
    }
}

impl MessageOutput for FileOutput {
    fn offer(&self, message: &DnsMessage) {
        let Ok(mut dispatcher) = self.dispatcher.lock() else {
            return;
        };
        if let Some(dispatcher) = dispatcher.as_mut() {
            dispatcher.dispatch_tap(message::dnstap_frame(message), &message::to_dnstap(message));
        }
    }

    fn finish(&self) -> Option<JoinHandle<()>> {
        // Dropping the dispatcher closes the queue: the writer drains it,
        // flushes (and writes STOP to a dnstap file), then ends.
        if let Ok(mut dispatcher) = self.dispatcher.lock() {
            dispatcher.take();
        }
        let writer = self.writer.lock().ok()?.take()?;
        let target = self.target.clone();
        Some(tokio::spawn(async move {
            match writer.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, target, "message output failed"),
                Err(error) => tracing::warn!(%error, target, "message output task failed"),
            }
        }))
    }
}

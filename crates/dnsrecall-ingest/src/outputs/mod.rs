//! Message outputs: components that receive every [`DnsMessage`] any input
//! decoded (dnstap frames and captured packets alike), configured as
//! `[[outputs]] kind = "..."`.
//!
//! An output is offered each message without blocking: it keeps a bounded
//! queue, and a full queue drops the message and counts it, so a slow disk
//! or peer never stalls ingest. Adding an output: a module here with its
//! config type beside it, one [`OutputConfig`] variant and one arm in
//! [`build`].

pub mod dnstap;
pub mod file;
pub mod kafka;
pub mod nats;
pub mod postgres;
pub mod queue;
pub mod stats;
pub mod syslog;
pub mod tcp;

use std::sync::Arc;

use dnsrecall_core::message::DnsMessage;
use dnsrecall_metrics::Registry;
use serde::{Deserialize, Serialize};

/// A component that receives every decoded DNS message.
pub trait MessageOutput: Send + Sync {
    /// Offers one message; never blocks (a full queue drops and counts).
    fn offer(&self, message: &DnsMessage);
    /// Stops taking messages; the returned task ends once what was queued
    /// is written.
    fn finish(&self) -> Option<tokio::task::JoinHandle<()>>;
}

/// `[[outputs]]`: one message output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OutputConfig {
    /// Message logs (text, JSON, YAML or dnstap files) to stdout or a file.
    File(file::FileConfig),
    /// Lines (text, NDJSON, YAML) to a TCP collector, optionally TLS.
    Tcp(tcp::TcpConfig),
    /// Syslog records (RFC 5424/3164) over UDP, TCP or a unix socket.
    Syslog(syslog::SyslogConfig),
    /// A dnstap relay (Frame Streams) to another receiver.
    Dnstap(dnstap::DnstapRelayConfig),
    /// Records of a Kafka topic.
    Kafka(kafka::KafkaConfig),
    /// Messages on a NATS subject, optionally JetStream.
    Nats(nats::NatsConfig),
    /// Rows of a PostgreSQL table.
    Postgres(postgres::PostgresConfig),
}

impl OutputConfig {
    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        match self {
            OutputConfig::File(config) => config.resolve_paths(base),
            OutputConfig::Tcp(config) => config.resolve_paths(base),
            OutputConfig::Syslog(config) => config.resolve_paths(base),
            OutputConfig::Dnstap(config) => config.resolve_paths(base),
            OutputConfig::Kafka(_) | OutputConfig::Nats(_) | OutputConfig::Postgres(_) => {}
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            OutputConfig::File(config) => config.validate(),
            OutputConfig::Tcp(config) => config.validate(),
            OutputConfig::Syslog(config) => config.validate(),
            OutputConfig::Dnstap(config) => config.validate(),
            OutputConfig::Kafka(config) => config.validate(),
            OutputConfig::Nats(config) => config.validate(),
            OutputConfig::Postgres(config) => config.validate(),
        }
    }
}

/// The running outputs, shared by every input.
#[derive(Clone, Default)]
pub struct MessageOutputs {
    outputs: Arc<Vec<Box<dyn MessageOutput>>>,
}

impl MessageOutputs {
    /// Whether any output is running (inputs skip building messages for
    /// nobody).
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Adds an output built outside the registry (e.g. the statistics,
    /// whose handle the HTTP routes share); only before the outputs are
    /// handed to the inputs.
    pub fn push(&mut self, output: Box<dyn MessageOutput>) -> Result<(), Box<dyn MessageOutput>> {
        match Arc::get_mut(&mut self.outputs) {
            Some(outputs) => {
                outputs.push(output);
                Ok(())
            }
            None => Err(output),
        }
    }

    /// Offers `message` to every output.
    pub fn offer(&self, message: &DnsMessage) {
        for output in self.outputs.iter() {
            output.offer(message);
        }
    }

    /// Finishes every output (after the inputs stopped) and waits until
    /// each has written what it queued.
    pub async fn finish(&self) {
        let tasks: Vec<_> = self.outputs.iter().filter_map(|o| o.finish()).collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Builds the configured outputs: the one registry of output kinds. Must
/// be called inside a tokio runtime.
pub fn build(configs: &[OutputConfig], metrics: &Registry) -> Result<MessageOutputs, BuildError> {
    let mut outputs: Vec<Box<dyn MessageOutput>> = Vec::with_capacity(configs.len());
    for config in configs {
        outputs.push(match config {
            OutputConfig::File(file) => Box::new(file::FileOutput::start(file, metrics)?),
            OutputConfig::Tcp(config) => Box::new(tcp::start(config, metrics)?),
            OutputConfig::Syslog(config) => Box::new(syslog::start(config, metrics)?),
            OutputConfig::Dnstap(config) => Box::new(dnstap::start(config, metrics)?),
            OutputConfig::Kafka(config) => Box::new(kafka::start(config, metrics)?),
            OutputConfig::Nats(config) => Box::new(nats::start(config, metrics)?),
            OutputConfig::Postgres(config) => Box::new(postgres::start(config, metrics)?),
        });
    }
    Ok(MessageOutputs {
        outputs: Arc::new(outputs),
    })
}

/// An output that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot open output {target}: {source}")]
    Open {
        target: String,
        source: std::io::Error,
    },
    #[error("output {output}: {message}")]
    Config { output: String, message: String },
}

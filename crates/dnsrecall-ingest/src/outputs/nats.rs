//! `kind = "nats"`: every message, rendered as text, JSON or YAML, published
//! on a NATS subject (`async-nats`). Core NATS: a batch is published, then
//! flushed (the server has it). With `jetstream = true` every message is
//! published to JetStream and its acknowledgement awaited, so a batch
//! counts as sent only once the stream stored it; with `stream` set, that
//! stream is created (capturing `subject`) when missing. Delivery is
//! [`super::queue`]'s; the client's own reconnection is switched off so
//! there is one reconnect policy and one count of errors.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use dnsrecall_core::message::DnsMessage;
use serde::{Deserialize, Serialize};

use super::queue::{self, Delivery, LineFormat, Link, LinkError, QueueOutput, Renderer};
use super::{BuildError, OutputContext};

/// Messages per batch (published, then flushed or acknowledged together).
const BATCH_SIZE: usize = 256;

/// `[[outputs]] kind = "nats"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, `nats://host:port` (required).
    pub url: String,
    /// Subject published on (required).
    pub subject: String,
    /// `text`, `json` or `yaml` [default: `json`].
    #[serde(default)]
    pub format: LineFormat,
    /// Publish through JetStream and wait for each acknowledgement
    /// [default: false].
    #[serde(default)]
    pub jetstream: bool,
    /// With `jetstream`: create this stream (capturing `subject`) when it
    /// does not exist [default: expect one to capture the subject].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Messages queued; beyond, new ones are dropped and counted
    /// [default: 10000].
    #[serde(default = "queue::default_queue_size")]
    pub queue_size: usize,
}

impl NatsConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        queue::validate(&name, self.queue_size, 1)?;
        let subject_ok = !self.subject.is_empty()
            && !self.subject.contains(['*', '>'])
            && !self.subject.bytes().any(|b| b.is_ascii_whitespace())
            && self.subject.split('.').all(|token| !token.is_empty());
        if !subject_ok {
            return Err(format!(
                "output {name}: subject must be dot-separated tokens without wildcards or spaces"
            ));
        }
        if self.stream.is_some() && !self.jetstream {
            return Err(format!("output {name}: stream needs jetstream = true"));
        }
        if let Some(stream) = &self.stream {
            let ok = !stream.is_empty()
                && !stream.contains(['*', '>', '.', '/', '\\'])
                && !stream.bytes().any(|b| b.is_ascii_whitespace());
            if !ok {
                return Err(format!("output {name}: invalid stream name {stream:?}"));
            }
        }
        if !self.url.contains("://") && !self.url.contains(':') {
            return Err(format!(
                "output {name}: url {:?} is not nats://host:port",
                self.url
            ));
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("nats:{}", self.subject)
    }
}

/// Starts a NATS output.
pub fn start(config: &NatsConfig, context: &OutputContext) -> Result<QueueOutput, BuildError> {
    let link = NatsLink {
        url: config.url.clone(),
        subject: config.subject.clone(),
        jetstream: config.jetstream,
        stream: config.stream.clone(),
        renderer: Renderer::new(config.format),
        client: None,
    };
    let delivery = Delivery::new(context.name.clone(), config.queue_size, BATCH_SIZE);
    Ok(QueueOutput::start(link, delivery, context))
}

struct NatsLink {
    url: String,
    subject: String,
    jetstream: bool,
    stream: Option<String>,
    renderer: Renderer,
    client: Option<(async_nats::Client, Option<jetstream::Context>)>,
}

impl Link for NatsLink {
    type Item = Bytes;

    fn prepare(&mut self, message: &DnsMessage) -> Option<Bytes> {
        self.renderer.render(message).map(Bytes::from)
    }

    async fn connect(&mut self) -> Result<(), LinkError> {
        if let Some((client, _)) = self.client.take() {
            let _ = client.drain().await;
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            // The queue worker reconnects: one policy, every error counted.
            .max_reconnects(1)
            .connect(self.url.as_str())
            .await
            .map_err(|e| LinkError::transient(&format!("connect to {}", self.url), e))?;
        let context = if self.jetstream {
            let context = jetstream::new(client.clone());
            if let Some(stream) = &self.stream {
                context
                    .get_or_create_stream(jetstream::stream::Config {
                        name: stream.clone(),
                        subjects: vec![self.subject.clone()],
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| LinkError::transient(&format!("create stream {stream}"), e))?;
            }
            Some(context)
        } else {
            None
        };
        self.client = Some((client, context));
        Ok(())
    }

    async fn send(&mut self, batch: &[Bytes]) -> Result<(), LinkError> {
        let Some((client, context)) = self.client.as_ref() else {
            return Err(LinkError::Transient("not connected".into()));
        };
        let result = match context {
            None => {
                let mut result = Ok(());
                for payload in batch {
                    if let Err(error) = client.publish(self.subject.clone(), payload.clone()).await
                    {
                        result = Err(LinkError::transient("publish", error));
                        break;
                    }
                }
                match result {
                    Ok(()) => client
                        .flush()
                        .await
                        .map_err(|e| LinkError::transient("flush", e)),
                    Err(error) => Err(error),
                }
            }
            Some(context) => {
                // Publish the whole batch, then await the acknowledgements.
                let mut acks = Vec::with_capacity(batch.len());
                let mut result = Ok(());
                for payload in batch {
                    match context.publish(self.subject.clone(), payload.clone()).await {
                        Ok(ack) => acks.push(ack),
                        Err(error) => {
                            result = Err(LinkError::transient("JetStream publish", error));
                            break;
                        }
                    }
                }
                for ack in acks {
                    if let Err(error) = ack.await
                        && result.is_ok()
                    {
                        result = Err(LinkError::transient("JetStream acknowledgement", error));
                    }
                }
                result
            }
        };
        if result.is_err() {
            self.client = None;
        }
        result
    }

    async fn close(&mut self) {
        if let Some((client, _)) = self.client.take() {
            let _ = client.flush().await;
            let _ = client.drain().await;
        }
    }
}

//! `kind = "dnstap"`: a dnstap relay. Every message goes on, as a dnstap
//! protobuf in Frame Streams, to another receiver (fstrm_capture, a second
//! dnsrecall, dnstap-receiver, DNS-collector) over TCP or a unix socket,
//! with the bidirectional handshake (READY → ACCEPT → START … STOP →
//! FINISH) unless told to be unidirectional. dnstap frames are forwarded
//! as received; captured packets are encoded. An optional `identity`
//! replaces the sender's identity. The Frame Streams sender is
//! dnsrecall-dnstap's; delivery is [`super::queue`]'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::framestream::{Mode, SenderSession};
use dnsrecall_dnstap::{DNSTAP_CONTENT_TYPE, decode_dnstap};
use serde::{Deserialize, Serialize};

use super::queue::{self, Delivery, Link, LinkError, QueueOutput};
use super::tcp::{self, Stream, Target};
use super::{BuildError, OutputContext};
use crate::message;

/// Frames per batch (written, then flushed once).
const BATCH_SIZE: usize = 512;
/// How long STOP → FINISH may take at shutdown.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// `[[outputs]] kind = "dnstap"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnstapRelayConfig {
    /// The receiver: `host:port` (TCP) or a unix socket path (starting
    /// with `/` or `.`, or given as `unix:PATH`) (required).
    pub address: String,
    /// Replace each message's identity with this [default: keep it].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// READY/ACCEPT handshake and FINISH (false: START/STOP only, for
    /// receivers that do not write back) [default: true].
    #[serde(default = "default_true")]
    pub bidirectional: bool,
    /// Messages queued; beyond, new ones are dropped and counted
    /// [default: 10000].
    #[serde(default = "queue::default_queue_size")]
    pub queue_size: usize,
}

fn default_true() -> bool {
    true
}

impl DnstapRelayConfig {
    /// The unix socket path, if the address names one.
    fn unix_path(&self) -> Option<PathBuf> {
        if let Some(path) = self.address.strip_prefix("unix:") {
            return Some(PathBuf::from(path));
        }
        (self.address.starts_with('/') || self.address.starts_with('.'))
            .then(|| PathBuf::from(&self.address))
    }

    /// Makes a relative unix socket path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(path) = self.unix_path().filter(|p| p.is_relative()) {
            self.address = format!("unix:{}", base.join(path).display());
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        queue::validate(&name, self.queue_size, 1)?;
        if self.unix_path().is_none() {
            tcp::check_host_port(&name, &self.address)?;
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("dnstap:{}", self.address)
    }
}

/// Starts a dnstap relay.
pub fn start(
    config: &DnstapRelayConfig,
    context: &OutputContext,
) -> Result<QueueOutput, BuildError> {
    let target = match config.unix_path() {
        Some(path) => Target::Unix(path),
        None => Target::Tcp {
            address: config.address.clone(),
            tls: None,
        },
    };
    let link = RelayLink {
        target,
        identity: config.identity.clone().map(Bytes::from),
        mode: if config.bidirectional {
            Mode::Bidirectional
        } else {
            Mode::Unidirectional
        },
        session: None,
    };
    let delivery = Delivery::new(context.name.clone(), config.queue_size, BATCH_SIZE);
    Ok(QueueOutput::start(link, delivery, context))
}

struct RelayLink {
    target: Target,
    identity: Option<Bytes>,
    mode: Mode,
    session: Option<SenderSession<Stream>>,
}

impl RelayLink {
    /// The frame to send: as received, or with the identity replaced.
    fn frame(&self, message: &DnsMessage) -> Option<Bytes> {
        let frame = message::dnstap_frame(message);
        let Some(identity) = &self.identity else {
            return Some(frame);
        };
        // Decoding the frame (not `to_dnstap`) keeps every field the
        // sender set, `extra` and `policy` included.
        let mut tap = decode_dnstap(frame).ok()?;
        tap.identity = Some(identity.clone());
        Some(Bytes::from(prost::Message::encode_to_vec(&tap)))
    }
}

impl Link for RelayLink {
    type Item = Bytes;

    fn prepare(&mut self, message: &DnsMessage) -> Option<Bytes> {
        self.frame(message)
    }

    async fn connect(&mut self) -> Result<(), LinkError> {
        self.session = None;
        let stream = tcp::connect(&self.target).await?;
        let session = SenderSession::start(stream, DNSTAP_CONTENT_TYPE, self.mode)
            .await
            .map_err(|e| LinkError::transient("Frame Streams handshake", e))?;
        self.session = Some(session);
        Ok(())
    }

    async fn send(&mut self, batch: &[Bytes]) -> Result<(), LinkError> {
        let session = self
            .session
            .as_mut()
            .ok_or_else(|| LinkError::Transient("not connected".into()))?;
        let result = async {
            for frame in batch {
                session.send(frame.clone()).await?;
            }
            session.flush().await
        }
        .await;
        result.map_err(|error| {
            self.session = None;
            LinkError::transient("send frames", error)
        })
    }

    async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            match tokio::time::timeout(FINISH_TIMEOUT, session.finish()).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::debug!(%error, "dnstap relay: no clean FINISH"),
                Err(_) => tracing::debug!("dnstap relay: FINISH timed out"),
            }
        }
    }
}

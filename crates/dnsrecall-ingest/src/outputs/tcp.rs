//! `kind = "tcp"`: every message as a text line, a JSON object (NDJSON) or
//! a YAML document to a remote collector over TCP, optionally TLS
//! (rustls), each followed by a configurable delimiter. Delivery (bounded
//! queue, reconnect with backoff, flush deadline) is [`super::queue`]'s.
//!
//! The stream helpers here ([`connect`], [`Stream`]) are shared with the
//! `syslog` and `dnstap` outputs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dnsrecall_core::message::DnsMessage;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::queue::{self, Delivery, LineFormat, Link, LinkError, QueueOutput, Renderer};
use super::{BuildError, OutputContext};

/// Messages per write unless configured.
const BATCH_SIZE: usize = 256;

/// `[[outputs]] kind = "tcp"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// The collector, `host:port` (required).
    pub address: String,
    /// `text`, `json` or `yaml` [default: `json`].
    #[serde(default)]
    pub format: LineFormat,
    /// Written after each message [default: `"\n"`].
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Connect with TLS [default: false].
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA that signed the collector's certificate (required
    /// with `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify the collector's certificate against [default: the
    /// host part of `address`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Client certificate (PEM) to present, with `tls_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// Client certificate key (PEM), with `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Messages queued; beyond, new ones are dropped and counted
    /// [default: 10000].
    #[serde(default = "queue::default_queue_size")]
    pub queue_size: usize,
}

fn default_delimiter() -> String {
    "\n".to_string()
}

fn resolve(path: &mut Option<PathBuf>, base: &Path) {
    if let Some(p) = path.as_mut().filter(|p| p.is_relative()) {
        *p = base.join(&*p);
    }
}

impl TcpConfig {
    /// Makes relative TLS file paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        resolve(&mut self.tls_ca, base);
        resolve(&mut self.tls_cert, base);
        resolve(&mut self.tls_key, base);
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        queue::validate(&name, self.queue_size, 1)?;
        check_host_port(&name, &self.address)?;
        if self.tls && self.tls_ca.is_none() {
            return Err(format!("output {name}: tls needs tls_ca"));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(format!("output {name}: tls_cert and tls_key go together"));
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("tcp:{}", self.address)
    }
}

/// `host:port` with a numeric port.
pub(crate) fn check_host_port(name: &str, address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!(
            "output {name}: address {address:?} is not host:port"
        )),
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Starts a TCP output.
pub fn start(config: &TcpConfig, context: &OutputContext) -> Result<QueueOutput, BuildError> {
    let tls = match (&config.tls, &config.tls_ca) {
        (true, Some(ca)) => {
            let client = match (&config.tls_cert, &config.tls_key) {
                (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
                _ => None,
            };
            let tls_config =
                dnsrecall_dnstap::server::tls_client_config(ca, client).map_err(|error| {
                    BuildError::Config {
                        output: config.name(),
                        message: error.to_string(),
                    }
                })?;
            let name = config
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host_of(&config.address).to_string());
            let server_name =
                rustls_pki_types::ServerName::try_from(name.clone()).map_err(|error| {
                    BuildError::Config {
                        output: config.name(),
                        message: format!("TLS server name {name:?}: {error}"),
                    }
                })?;
            Some(TlsTarget {
                connector: tokio_rustls::TlsConnector::from(tls_config),
                server_name,
            })
        }
        _ => None,
    };
    let link = TcpLink {
        target: Target::Tcp {
            address: config.address.clone(),
            tls,
        },
        renderer: Renderer::new(config.format),
        delimiter: config.delimiter.clone().into_bytes(),
        stream: None,
        buffer: Vec::new(),
    };
    let delivery = Delivery::new(context.name.clone(), config.queue_size, BATCH_SIZE);
    Ok(QueueOutput::start(link, delivery, context))
}

//---- Streams ----

/// A byte stream to a peer: TCP, TLS over TCP, or a unix socket.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connected stream.
pub(crate) type Stream = Box<dyn Io>;

/// TLS settings of a TCP target.
#[derive(Clone)]
pub(crate) struct TlsTarget {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: rustls_pki_types::ServerName<'static>,
}

/// Where a stream output connects.
#[derive(Clone)]
pub(crate) enum Target {
    Tcp {
        address: String,
        tls: Option<TlsTarget>,
    },
    Unix(PathBuf),
}

/// Connects to `target` (the caller bounds the time).
pub(crate) async fn connect(target: &Target) -> Result<Stream, LinkError> {
    match target {
        Target::Tcp { address, tls } => {
            let stream = TcpStream::connect(address.as_str())
                .await
                .map_err(|e| LinkError::transient(&format!("connect to {address}"), e))?;
            let _ = stream.set_nodelay(true);
            match tls {
                None => Ok(Box::new(stream)),
                Some(tls) => {
                    let stream = tls
                        .connector
                        .connect(tls.server_name.clone(), stream)
                        .await
                        .map_err(|e| {
                            LinkError::transient(&format!("TLS handshake with {address}"), e)
                        })?;
                    Ok(Box::new(stream))
                }
            }
        }
        Target::Unix(path) => {
            let stream = UnixStream::connect(path)
                .await
                .map_err(|e| LinkError::transient(&format!("connect to {}", path.display()), e))?;
            Ok(Box::new(stream))
        }
    }
}

//---- TcpLink ----

struct TcpLink {
    target: Target,
    renderer: Renderer,
    delimiter: Vec<u8>,
    stream: Option<Stream>,
    /// One batch's bytes, written at once.
    buffer: Vec<u8>,
}

impl Link for TcpLink {
    type Item = String;

    fn prepare(&mut self, message: &DnsMessage) -> Option<String> {
        self.renderer.render(message)
    }

    async fn connect(&mut self) -> Result<(), LinkError> {
        self.stream = None;
        self.stream = Some(connect(&self.target).await?);
        Ok(())
    }

    async fn send(&mut self, batch: &[String]) -> Result<(), LinkError> {
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| LinkError::Transient("not connected".into()))?;
        self.buffer.clear();
        for line in batch {
            self.buffer.extend_from_slice(line.as_bytes());
            self.buffer.extend_from_slice(&self.delimiter);
        }
        let result = async {
            stream.write_all(&self.buffer).await?;
            stream.flush().await
        }
        .await;
        if let Err(error) = result {
            self.stream = None;
            return Err(LinkError::transient("write", error));
        }
        Ok(())
    }

    async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        }
    }
}

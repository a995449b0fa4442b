//! `kind = "syslog"`: every message as a syslog record, RFC 5424 or RFC
//! 3164 framing, over UDP (one datagram each), TCP (RFC 6587 octet
//! counting: `LEN SP RECORD`) or a unix datagram socket (`/dev/log`
//! style), with configurable facility, severity and app-name. The record's
//! message part is the text line, JSON object or YAML document the file
//! output writes. Delivery is [`super::queue`]'s.

use std::path::Path;
use std::time::Duration;

use dnsrecall_core::message::DnsMessage;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{UdpSocket, UnixDatagram};

use super::queue::{self, Delivery, LineFormat, Link, LinkError, QueueOutput, Renderer};
use super::tcp::{self, Stream, Target};
use super::{BuildError, OutputContext};

/// Records per batch.
const BATCH_SIZE: usize = 256;
/// Largest record sent; longer ones are cut (RFC 5424 §6.1 receivers must
/// take 480 octets and should take 2048; rsyslog's default is 8 KiB).
pub const MAX_RECORD: usize = 8192;

/// The transport to the syslog daemon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One datagram per record [default].
    #[default]
    Udp,
    /// A stream of octet-counted records.
    Tcp,
    /// A unix datagram socket; `address` is its path.
    Unix,
}

/// The record header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// `<PRI>1 TIMESTAMP HOST APP PROCID - - MSG` [default].
    #[default]
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST APP[PROCID]: MSG` (BSD syslog).
    Rfc3164,
}

/// `[[outputs]] kind = "syslog"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` for udp and tcp, the socket path for unix (required).
    pub address: String,
    /// `udp`, `tcp` or `unix` [default: `udp`].
    #[serde(default)]
    pub transport: Transport,
    /// `rfc5424` or `rfc3164` [default: `rfc5424`].
    #[serde(default)]
    pub framing: Framing,
    /// `text`, `json` or `yaml` message part [default: `json`].
    #[serde(default)]
    pub format: LineFormat,
    /// Facility name (`kern`, `user`, `daemon`, `local0` … `local7`, ...)
    /// [default: `daemon`].
    #[serde(default = "default_facility")]
    pub facility: String,
    /// Severity name (`emerg` … `debug`) [default: `info`].
    #[serde(default = "default_severity")]
    pub severity: String,
    /// APP-NAME (RFC 3164: the tag) [default: `dnsrecall`].
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME field [default: this host's name].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Messages queued; beyond, new ones are dropped and counted
    /// [default: 10000].
    #[serde(default = "queue::default_queue_size")]
    pub queue_size: usize,
}

fn default_facility() -> String {
    "daemon".to_string()
}

fn default_severity() -> String {
    "info".to_string()
}

fn default_app_name() -> String {
    "dnsrecall".to_string()
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

fn code(names: &[&str], name: &str) -> Option<u8> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .and_then(|i| u8::try_from(i).ok())
}

impl SyslogConfig {
    /// Makes a relative unix socket path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.transport == Transport::Unix && Path::new(&self.address).is_relative() {
            self.address = base.join(&self.address).display().to_string();
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        queue::validate(&name, self.queue_size, 1)?;
        if self.transport != Transport::Unix {
            tcp::check_host_port(&name, &self.address)?;
        }
        if code(&FACILITIES, &self.facility).is_none() {
            return Err(format!(
                "output {name}: unknown facility {:?} (one of {})",
                self.facility,
                FACILITIES.join(", ")
            ));
        }
        if code(&SEVERITIES, &self.severity).is_none() {
            return Err(format!(
                "output {name}: unknown severity {:?} (one of {})",
                self.severity,
                SEVERITIES.join(", ")
            ));
        }
        let app_ok = !self.app_name.is_empty()
            && self.app_name.len() <= 48
            && self.app_name.bytes().all(|b| b.is_ascii_graphic());
        if !app_ok {
            return Err(format!(
                "output {name}: app_name must be 1 to 48 printable ASCII characters without spaces"
            ));
        }
        Ok(())
    }

    fn name(&self) -> String {
        let transport = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
        };
        format!("syslog:{transport}:{}", self.address)
    }
}

/// This host's name (Linux), or `-` (the RFC 5424 nil value).
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".to_string())
}

/// Starts a syslog output.
pub fn start(config: &SyslogConfig, context: &OutputContext) -> Result<QueueOutput, BuildError> {
    let invalid = |message: String| BuildError::Config {
        output: config.name(),
        message,
    };
    let facility = code(&FACILITIES, &config.facility)
        .ok_or_else(|| invalid(format!("unknown facility {:?}", config.facility)))?;
    let severity = code(&SEVERITIES, &config.severity)
        .ok_or_else(|| invalid(format!("unknown severity {:?}", config.severity)))?;
    let header = Header {
        priority: u16::from(facility) * 8 + u16::from(severity),
        framing: config.framing,
        hostname: config.hostname.clone().unwrap_or_else(local_hostname),
        app_name: config.app_name.clone(),
        process_id: std::process::id(),
    };
    let link = SyslogLink {
        transport: config.transport,
        address: config.address.clone(),
        header,
        renderer: Renderer::new(config.format),
        connection: None,
        buffer: Vec::new(),
    };
    let delivery = Delivery::new(context.name.clone(), config.queue_size, BATCH_SIZE);
    Ok(QueueOutput::start(link, delivery, context))
}

//---- Records ----

/// What every record of one output starts with.
#[derive(Clone, Debug)]
pub struct Header {
    /// facility × 8 + severity.
    pub priority: u16,
    pub framing: Framing,
    pub hostname: String,
    pub app_name: String,
    pub process_id: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Header {
    /// One record for `message` at time `now`, cut to [`MAX_RECORD`] bytes
    /// (at a character boundary). Line ends inside the message (YAML)
    /// are kept: octet counting and datagrams delimit records.
    pub fn record(&self, now: jiff::Timestamp, message: &str) -> Vec<u8> {
        let civil = now.to_zoned(jiff::tz::TimeZone::UTC).datetime();
        let mut out = match self.framing {
            Framing::Rfc5424 => format!(
                "<{}>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z {} {} {} - - ",
                self.priority,
                civil.year(),
                civil.month(),
                civil.day(),
                civil.hour(),
                civil.minute(),
                civil.second(),
                civil.subsec_nanosecond() / 1000,
                self.hostname,
                self.app_name,
                self.process_id,
            ),
            Framing::Rfc3164 => format!(
                "<{}>{} {:>2} {:02}:{:02}:{:02} {} {}[{}]: ",
                self.priority,
                MONTHS[usize::from(civil.month().unsigned_abs()).saturating_sub(1) % 12],
                civil.day(),
                civil.hour(),
                civil.minute(),
                civil.second(),
                self.hostname,
                self.app_name,
                self.process_id,
            ),
        };
        let message = message.trim_end_matches('\n');
        let room = MAX_RECORD.saturating_sub(out.len());
        let mut cut = message.len().min(room);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&message[..cut]);
        out.into_bytes()
    }
}

//---- SyslogLink ----

enum Connection {
    Udp(UdpSocket),
    Unix(UnixDatagram),
    Stream(Stream),
}

struct SyslogLink {
    transport: Transport,
    address: String,
    header: Header,
    renderer: Renderer,
    connection: Option<Connection>,
    buffer: Vec<u8>,
}

impl Link for SyslogLink {
    type Item = Vec<u8>;

    fn prepare(&mut self, message: &DnsMessage) -> Option<Vec<u8>> {
        let rendered = self.renderer.render(message)?;
        Some(self.header.record(jiff::Timestamp::now(), &rendered))
    }

    async fn connect(&mut self) -> Result<(), LinkError> {
        self.connection = None;
        let address = &self.address;
        let connection = match self.transport {
            Transport::Udp => {
                let local = if address.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let socket = UdpSocket::bind(local)
                    .await
                    .map_err(|e| LinkError::transient("bind a UDP socket", e))?;
                socket
                    .connect(address.as_str())
                    .await
                    .map_err(|e| LinkError::transient(&format!("connect to {address}"), e))?;
                Connection::Udp(socket)
            }
            Transport::Unix => {
                let socket = UnixDatagram::unbound()
                    .map_err(|e| LinkError::transient("create a unix socket", e))?;
                socket
                    .connect(address)
                    .map_err(|e| LinkError::transient(&format!("connect to {address}"), e))?;
                Connection::Unix(socket)
            }
            Transport::Tcp => Connection::Stream(
                tcp::connect(&Target::Tcp {
                    address: address.clone(),
                    tls: None,
                })
                .await?,
            ),
        };
        self.connection = Some(connection);
        Ok(())
    }

    async fn send(&mut self, batch: &[Vec<u8>]) -> Result<(), LinkError> {
        let Some(connection) = self.connection.as_mut() else {
            return Err(LinkError::Transient("not connected".into()));
        };
        let result = match connection {
            // A datagram that arrives nowhere (ECONNREFUSED from an earlier
            // one) fails the batch: it is sent again after a reconnect.
            Connection::Udp(socket) => {
                let mut result = Ok(());
                for record in batch {
                    if let Err(error) = socket.send(record).await {
                        result = Err(error);
                        break;
                    }
                }
                result
            }
            Connection::Unix(socket) => {
                let mut result = Ok(());
                for record in batch {
                    if let Err(error) = socket.send(record).await {
                        result = Err(error);
                        break;
                    }
                }
                result
            }
            Connection::Stream(stream) => {
                self.buffer.clear();
                for record in batch {
                    self.buffer
                        .extend_from_slice(format!("{} ", record.len()).as_bytes());
                    self.buffer.extend_from_slice(record);
                }
                match stream.write_all(&self.buffer).await {
                    Ok(()) => stream.flush().await,
                    Err(error) => Err(error),
                }
            }
        };
        result.map_err(|error| {
            self.connection = None;
            LinkError::transient(&format!("send to {}", self.address), error)
        })
    }

    async fn close(&mut self) {
        if let Some(Connection::Stream(mut stream)) = self.connection.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(framing: Framing) -> Header {
        Header {
            priority: 3 * 8 + 6,
            framing,
            hostname: "ns1".into(),
            app_name: "dnsrecall".into(),
            process_id: 42,
        }
    }

    #[test]
    fn both_framings_follow_their_rfc() {
        // 2020-09-06T08:05:03.250001Z
        let at = jiff::Timestamp::new(1_599_379_503, 250_001_000).unwrap();
        let record = header(Framing::Rfc5424).record(at, "hello\n");
        assert_eq!(
            String::from_utf8(record).unwrap(),
            "<30>1 2020-09-06T08:05:03.250001Z ns1 dnsrecall 42 - - hello"
        );
        let record = header(Framing::Rfc3164).record(at, "hello");
        assert_eq!(
            String::from_utf8(record).unwrap(),
            "<30>Sep  6 08:05:03 ns1 dnsrecall[42]: hello"
        );
    }

    #[test]
    fn long_records_are_cut_at_a_character_boundary() {
        let at = jiff::Timestamp::new(0, 0).unwrap();
        let record = header(Framing::Rfc5424).record(at, &"é".repeat(MAX_RECORD));
        assert!(record.len() <= MAX_RECORD && record.len() > MAX_RECORD - 2);
        assert!(String::from_utf8(record).is_ok());
    }

    #[test]
    fn names_map_to_codes() {
        assert_eq!(code(&FACILITIES, "local0"), Some(16));
        assert_eq!(code(&FACILITIES, "daemon"), Some(3));
        assert_eq!(code(&SEVERITIES, "info"), Some(6));
        assert_eq!(code(&SEVERITIES, "verbose"), None);
    }
}

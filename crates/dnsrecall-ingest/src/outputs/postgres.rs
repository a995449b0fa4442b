//! `kind = "postgres"`: every message as a row of a PostgreSQL table,
//! written in batches with `COPY … FROM STDIN (FORMAT csv)` over
//! `tokio-postgres`. The table is created when missing, with the columns
//! of [`CREATE_COLUMNS`] (the fields of the JSON log, typed). A connection
//! that breaks is reopened with backoff and the batch copied again; a batch
//! PostgreSQL refuses as data (class 22/23 errors) is dropped and counted
//! with `reason="error"`. Delivery is [`super::queue`]'s.

use bytes::Bytes;
use dnsrecall_core::message::DnsMessage;
use futures::SinkExt;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};

use super::queue::{self, Delivery, Link, LinkError, QueueOutput, Renderer};
use super::{BuildError, OutputContext};

fn default_batch_size() -> usize {
    1000
}

fn default_table() -> String {
    "dns_messages".to_string()
}

/// The columns, in table (and COPY) order, with their types and meaning.
pub const CREATE_COLUMNS: &[(&str, &str)] = &[
    // Event time: the query time of a query, the response time of a response.
    ("time", "timestamptz"),
    // dnstap identity (captured packets: the sensor).
    ("identity", "text"),
    // CLIENT_QUERY, RESOLVER_RESPONSE, ...
    ("message", "text NOT NULL"),
    ("is_query", "boolean NOT NULL"),
    // RCODE mnemonic of the DNS header.
    ("rcode", "text"),
    // DNS message ID.
    ("dns_id", "integer"),
    // First question: name (with trailing dot) and type mnemonic.
    ("qname", "text"),
    ("qtype", "text"),
    // Initiator and responder.
    ("query_ip", "inet"),
    ("query_port", "integer"),
    ("response_ip", "inet"),
    ("response_port", "integer"),
    // INET / INET6; UDP, TCP, DOT, ...
    ("family", "text"),
    ("protocol", "text"),
    // Bytes of the DNS message.
    ("length", "integer"),
    // Seconds from the matching query to this response.
    ("latency", "double precision"),
    // The DNS message, wire form.
    ("wire", "bytea"),
];

/// `[[outputs]] kind = "postgres"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection string, URL (`postgres://user@127.0.0.1:5432/db`) or
    /// key=value form (required).
    pub dsn: String,
    /// Table, `name` or `schema.name`, created when missing [default:
    /// `dns_messages`].
    #[serde(default = "default_table")]
    pub table: String,
    /// Rows per COPY [default: 1000].
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Messages queued; beyond, new ones are dropped and counted
    /// [default: 10000].
    #[serde(default = "queue::default_queue_size")]
    pub queue_size: usize,
}

fn is_identifier(part: &str) -> bool {
    let mut bytes = part.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && part.len() <= 63
}

impl PostgresConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        queue::validate(&name, self.queue_size, self.batch_size)?;
        if !self.table.split('.').all(is_identifier) || self.table.split('.').count() > 2 {
            return Err(format!(
                "output {name}: table must be NAME or SCHEMA.NAME of letters, digits and _"
            ));
        }
        self.dsn
            .parse::<tokio_postgres::Config>()
            .map_err(|error| format!("output {name}: dsn: {error}"))?;
        Ok(())
    }

    /// The label: the table (the DSN may hold a password).
    fn name(&self) -> String {
        format!("postgres:{}", self.table)
    }

    /// The table, each part quoted.
    fn quoted_table(&self) -> String {
        self.table
            .split('.')
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Starts a PostgreSQL output.
pub fn start(config: &PostgresConfig, context: &OutputContext) -> Result<QueueOutput, BuildError> {
    let dsn = config
        .dsn
        .parse::<tokio_postgres::Config>()
        .map_err(|error| BuildError::Config {
            output: config.name(),
            message: format!("dsn: {error}"),
        })?;
    let table = config.quoted_table();
    let columns: Vec<&str> = CREATE_COLUMNS.iter().map(|(name, _)| *name).collect();
    let link = PostgresLink {
        dsn,
        create: format!(
            "CREATE TABLE IF NOT EXISTS {table} ({})",
            CREATE_COLUMNS
                .iter()
                .map(|(name, kind)| format!("{name} {kind}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        copy: format!(
            "COPY {table} ({}) FROM STDIN (FORMAT csv)",
            columns.join(", ")
        ),
        renderer: Renderer::new(queue::LineFormat::Json),
        client: None,
    };
    let delivery = Delivery::new(context.name.clone(), config.queue_size, config.batch_size);
    Ok(QueueOutput::start(link, delivery, context))
}

//---- CSV ----

/// A quoted CSV field (`"` doubled).
fn text(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// A field that is NULL when absent (an unquoted empty field).
fn optional<T: std::fmt::Display>(out: &mut String, value: Option<T>, quote: bool) {
    if let Some(value) = value {
        if quote {
            text(out, &value.to_string());
        } else {
            out.push_str(&value.to_string());
        }
    }
}

/// One CSV row for `message` (columns of [`CREATE_COLUMNS`]).
fn row(renderer: &mut Renderer, message: &DnsMessage) -> Option<String> {
    let view = renderer.view(message)?;
    let mut out = String::with_capacity(256);
    optional(&mut out, view.datetime.as_deref(), true);
    out.push(',');
    optional(&mut out, view.identity.as_deref(), true);
    out.push(',');
    text(&mut out, &view.message);
    out.push(',');
    out.push_str(if view.is_query { "t" } else { "f" });
    out.push(',');
    optional(&mut out, view.rcode.as_deref(), true);
    out.push(',');
    optional(&mut out, view.id, false);
    out.push(',');
    optional(&mut out, view.qname.as_deref(), true);
    out.push(',');
    optional(&mut out, view.rrtype.as_deref(), true);
    out.push(',');
    optional(&mut out, view.query_ip.as_deref(), false);
    out.push(',');
    optional(&mut out, view.query_port, false);
    out.push(',');
    optional(&mut out, view.response_ip.as_deref(), false);
    out.push(',');
    optional(&mut out, view.response_port, false);
    out.push(',');
    optional(&mut out, view.family.as_deref(), true);
    out.push(',');
    optional(&mut out, view.protocol.as_deref(), true);
    out.push(',');
    optional(&mut out, view.length, false);
    out.push(',');
    optional(&mut out, view.latency, false);
    out.push(',');
    if let Some(wire) = message.payload() {
        out.push_str("\\x");
        out.push_str(&hex_encode(wire));
    }
    out.push('\n');
    Some(out)
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

//---- PostgresLink ----

struct PostgresLink {
    dsn: tokio_postgres::Config,
    create: String,
    copy: String,
    renderer: Renderer,
    /// The client and the task driving its connection.
    client: Option<(Client, tokio::task::JoinHandle<()>)>,
}

impl PostgresLink {
    fn drop_client(&mut self) {
        if let Some((_, connection)) = self.client.take() {
            connection.abort();
        }
    }
}

/// Data PostgreSQL refuses (bad value, constraint) will be refused again:
/// drop the batch. Anything else (connection, missing table, server
/// shutting down) is worth a reconnect.
fn classify(what: &str, error: tokio_postgres::Error) -> LinkError {
    let class = error.code().map(|code| &code.code()[..2]);
    match class {
        Some("22") | Some("23") => LinkError::Rejected(format!("{what}: {error}")),
        _ => LinkError::transient(what, error),
    }
}

impl Link for PostgresLink {
    type Item = String;

    fn prepare(&mut self, message: &DnsMessage) -> Option<String> {
        row(&mut self.renderer, message)
    }

    async fn connect(&mut self) -> Result<(), LinkError> {
        self.drop_client();
        let (client, connection) = self
            .dsn
            .connect(NoTls)
            .await
            .map_err(|e| LinkError::transient("connect to PostgreSQL", e))?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
        });
        self.client = Some((client, driver));
        let Some((client, _)) = self.client.as_ref() else {
            return Err(LinkError::Transient("not connected".into()));
        };
        if let Err(error) = client.batch_execute(&self.create).await {
            self.drop_client();
            return Err(LinkError::transient("create the table", error));
        }
        Ok(())
    }

    async fn send(&mut self, batch: &[String]) -> Result<(), LinkError> {
        let Some((client, _)) = self.client.as_ref() else {
            return Err(LinkError::Transient("not connected".into()));
        };
        let mut data = String::with_capacity(batch.iter().map(String::len).sum());
        for row in batch {
            data.push_str(row);
        }
        let result = async {
            let sink = client.copy_in::<_, Bytes>(self.copy.as_str()).await?;
            let mut sink = std::pin::pin!(sink);
            sink.send(Bytes::from(data)).await?;
            sink.as_mut().finish().await
        }
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = classify("COPY", error);
                if matches!(error, LinkError::Transient(_)) {
                    self.drop_client();
                }
                Err(error)
            }
        }
    }

    async fn close(&mut self) {
        self.drop_client();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_nulls() {
        let mut out = String::new();
        text(&mut out, "a \"b\", c");
        assert_eq!(out, "\"a \"\"b\"\", c\"");
        let mut out = String::new();
        optional::<u16>(&mut out, None, true);
        assert_eq!(out, "");
        assert_eq!(hex_encode(&[0x00, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn table_names_are_checked() {
        let config = |table: &str| PostgresConfig {
            dsn: "postgres://u@127.0.0.1/db".into(),
            table: table.into(),
            batch_size: 10,
            queue_size: 10,
        };
        assert!(config("dns_messages").validate().is_ok());
        assert!(config("logs.dns").validate().is_ok());
        assert!(config("dns;drop table x").validate().is_err());
        assert!(config("a.b.c").validate().is_err());
        assert_eq!(config("logs.dns").quoted_table(), "\"logs\".\"dns\"");
    }
}

//! COF NDJSON over a websocket (`ws://` or `wss://`), as D4's
//! `pdns-import-cof.py --websocket` reads CIRCL's public stream: one JSON
//! object per message, or several NDJSON lines in one message.
//!
//! [`run`] follows the stream until shutdown: it reconnects with
//! exponential backoff when the server drops the connection, counts every
//! bad line by reason and never stops on one, caps lines and messages in
//! size, and hands the parsed entries of each message to a bounded channel
//! (back-pressure, no drops).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dnsrecall_core::Entry;
use dnsrecall_core::cof;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Default longest COF line.
pub const DEFAULT_MAX_LINE_BYTES: usize = 65_536;
/// Default longest websocket message (a message may hold many lines).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// First pause before reconnecting; it doubles up to the maximum.
pub const DEFAULT_RECONNECT_MIN_MS: u64 = 100;
/// Longest pause before reconnecting.
pub const DEFAULT_RECONNECT_MAX_MS: u64 = 10_000;

/// `[[inputs]] kind = "cof-websocket"`.
///
/// ```toml
/// [[inputs]]
/// kind = "cof-websocket"
/// url = "ws://crh.circl.lu:8888"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CofWebsocketConfig {
    /// `ws://` or `wss://` URL (wss verified against the Mozilla roots).
    pub url: String,
    /// Longest line in bytes; longer ones are counted (`line_too_long`)
    /// and skipped (default 65,536).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Longest message in bytes; a longer one ends the connection, which
    /// is counted and re-established (default 1 MiB).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// First reconnection pause in milliseconds (default 100).
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnection pause in milliseconds (default 10,000).
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
}

fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}
fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}
fn default_reconnect_min_ms() -> u64 {
    DEFAULT_RECONNECT_MIN_MS
}
fn default_reconnect_max_ms() -> u64 {
    DEFAULT_RECONNECT_MAX_MS
}

impl CofWebsocketConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> CofWebsocketConfig {
        CofWebsocketConfig {
            url: url.into(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            reconnect_min_ms: DEFAULT_RECONNECT_MIN_MS,
            reconnect_max_ms: DEFAULT_RECONNECT_MAX_MS,
        }
    }
}

/// Counters of one websocket input.
#[derive(Debug, Default)]
pub struct WebsocketCounters {
    /// Connections established.
    pub connections: AtomicU64,
    /// Connection attempts that failed.
    pub connect_errors: AtomicU64,
    /// Established connections that ended (closed, dropped, errored).
    pub disconnects: AtomicU64,
    /// Messages received.
    pub messages: AtomicU64,
    /// Lines parsed into records.
    pub lines: AtomicU64,
    /// Entries handed on.
    pub entries: AtomicU64,
    /// Bad lines by reason (`invalid_json`, `missing_field`, …,
    /// `line_too_long`, `not_utf8`).
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl WebsocketCounters {
    fn reject(&self, reason: &'static str) {
        if let Ok(mut rejected) = self.rejected.lock() {
            *rejected.entry(reason).or_default() += 1;
        }
    }

    /// `(name, help, value)` of each counter, named for Prometheus; bad
    /// lines by reason are [`rejected`](Self::rejected) (label `reason`).
    pub fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            (
                "dnsrecall_cof_websocket_connections_total",
                "Websocket connections established.",
                read(&self.connections),
            ),
            (
                "dnsrecall_cof_websocket_connect_errors_total",
                "Websocket connection attempts that failed.",
                read(&self.connect_errors),
            ),
            (
                "dnsrecall_cof_websocket_disconnects_total",
                "Established websocket connections that ended.",
                read(&self.disconnects),
            ),
            (
                "dnsrecall_cof_websocket_messages_total",
                "Websocket messages received.",
                read(&self.messages),
            ),
            (
                "dnsrecall_cof_websocket_lines_total",
                "COF lines parsed into records.",
                read(&self.lines),
            ),
            (
                "dnsrecall_cof_websocket_entries_total",
                "Entries handed on.",
                read(&self.entries),
            ),
        ]
    }

    /// Bad lines by reason so far.
    pub fn rejected(&self) -> BTreeMap<&'static str, u64> {
        self.rejected.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Why the input stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebsocketError {
    /// The URL is not `ws://` or `wss://`.
    #[error("not a ws:// or wss:// URL: {0}")]
    Url(String),
}

/// Parses one message's lines into entries, counting bad lines.
fn parse_message(
    text: &str,
    config: &CofWebsocketConfig,
    counters: &WebsocketCounters,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > config.max_line_bytes {
            counters.reject("line_too_long");
            continue;
        }
        match cof::parse_line(line) {
            Ok(parsed) => {
                counters.lines.fetch_add(1, Ordering::Relaxed);
                entries.extend(parsed.entries);
            }
            Err(error) => counters.reject(error.reason()),
        }
    }
    entries
}

/// Follows the stream at `config.url` until `shutdown` completes or the
/// receiving side of `sink` is dropped. Each message's entries are sent as
/// one batch.
pub async fn run(
    config: &CofWebsocketConfig,
    counters: &WebsocketCounters,
    sink: mpsc::Sender<Vec<Entry>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WebsocketError> {
    if !(config.url.starts_with("ws://") || config.url.starts_with("wss://")) {
        return Err(WebsocketError::Url(config.url.clone()));
    }
    tokio::pin!(shutdown);
    let mut backoff = config.reconnect_min_ms.max(1);
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(config.max_message_bytes);
    ws_config.max_frame_size = Some(config.max_message_bytes);
    loop {
        let connect = tokio_tungstenite::connect_async_with_config(
            config.url.as_str(),
            Some(ws_config),
            true,
        );
        let connected = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            connected = connect => connected,
        };
        match connected {
            Err(error) => {
                counters.connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %config.url, %error, backoff_ms = backoff, "websocket connect failed");
            }
            Ok((mut stream, _)) => {
                counters.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(url = %config.url, "websocket connected");
                loop {
                    let message = tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        message = stream.next() => message,
                    };
                    let text = match message {
                        None | Some(Ok(Message::Close(_))) => break,
                        Some(Err(error)) => {
                            tracing::warn!(url = %config.url, %error, "websocket stream error");
                            break;
                        }
                        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                        Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec())
                        {
                            Ok(text) => text,
                            Err(_) => {
                                counters.messages.fetch_add(1, Ordering::Relaxed);
                                counters.reject("not_utf8");
                                continue;
                            }
                        },
                        // Pings are answered by tungstenite while polling.
                        Some(Ok(_)) => continue,
                    };
                    counters.messages.fetch_add(1, Ordering::Relaxed);
                    // A connection that delivers is healthy again.
                    backoff = config.reconnect_min_ms.max(1);
                    let entries = parse_message(&text, config, counters);
                    if entries.is_empty() {
                        continue;
                    }
                    let count = entries.len() as u64;
                    let sent = tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        sent = sink.send(entries) => sent,
                    };
                    if sent.is_err() {
                        return Ok(());
                    }
                    counters.entries.fetch_add(count, Ordering::Relaxed);
                }
                counters.disconnects.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(backoff)) => {}
        }
        backoff = (backoff * 2).min(config.reconnect_max_ms.max(1));
    }
}

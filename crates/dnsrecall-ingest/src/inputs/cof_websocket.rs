//! `[[inputs]] kind = "cof-websocket"`: COF NDJSON followed over a
//! websocket (`ws://`, `wss://`), as D4's `pdns-import-cof.py --websocket`
//! reads CIRCL's public stream.
//!
//! The websocket side (connection, reconnection with backoff, size caps,
//! parsing and counting bad lines by reason) is
//! [`dnsrecall_redis::websocket::run`]; this module wraps it as an input
//! component: each message's records go to the pipeline as one batch of
//! plain records, with back-pressure (a slow store slows the reader, no
//! drops), and the counters reach `/metrics`.

use std::sync::Arc;

use dnsrecall_metrics::{Kind, Sample, Value};
use dnsrecall_pipeline::Batch;
use dnsrecall_redis::websocket::{self, CofWebsocketConfig, WebsocketCounters};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::IngestContext;

/// Messages' entries waiting between the websocket reader and the pipeline.
const QUEUED_MESSAGES: usize = 64;

/// Checks what serde cannot.
pub fn validate(config: &CofWebsocketConfig) -> anyhow::Result<()> {
    if !(config.url.starts_with("ws://") || config.url.starts_with("wss://")) {
        anyhow::bail!(
            "[[inputs]] kind = \"cof-websocket\": url must start with ws:// or wss://, not {:?}",
            config.url
        );
    }
    if config.max_line_bytes == 0 || config.max_message_bytes == 0 {
        anyhow::bail!(
            "[[inputs]] kind = \"cof-websocket\": max_line_bytes and max_message_bytes must be positive"
        );
    }
    Ok(())
}

/// Starts the reader and the task that hands its batches to the pipeline.
pub async fn start(
    config: &CofWebsocketConfig,
    context: &IngestContext,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    validate(config)?;
    let Some(entries) = context.entries.clone() else {
        anyhow::bail!("[[inputs]] kind = \"cof-websocket\" needs a store to write to");
    };
    let counters = Arc::new(WebsocketCounters::default());
    let exported = Arc::clone(&counters);
    let url = config.url.clone();
    context
        .metrics
        .register(Arc::new(move |out: &mut Vec<Sample>| {
            for (name, help, value) in exported.metrics() {
                out.push(Sample {
                    name,
                    help,
                    kind: Kind::Counter,
                    labels: vec![("url", url.clone())],
                    value: Value::Int(value),
                });
            }
            for (reason, value) in exported.rejected() {
                out.push(Sample {
                    name: "dnsrecall_cof_websocket_lines_rejected_total",
                    help: "COF lines from the websocket rejected, by reason.",
                    kind: Kind::Counter,
                    labels: vec![("url", url.clone()), ("reason", reason.to_string())],
                    value: Value::Int(value),
                });
            }
        }));
    let (sender, mut receiver) = mpsc::channel(QUEUED_MESSAGES);
    let shutdown = context.shutdown.clone();
    let config = config.clone();
    let reader = tokio::spawn(async move {
        tracing::info!(url = %config.url, "following the COF websocket");
        if let Err(error) =
            websocket::run(&config, &counters, sender, shutdown.cancelled_owned()).await
        {
            tracing::error!(url = %config.url, %error, "COF websocket input stopped");
        }
    });
    // Ends when the reader drops its sender (after shutdown), once what it
    // sent is handed on.
    let forwarder = tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            if entries.send(Batch::records(batch)).await.is_err() {
                tracing::warn!("the store writer stopped; COF websocket records are not stored");
                break;
            }
        }
    });
    Ok(vec![reader, forwarder])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_websockets() {
        assert!(validate(&CofWebsocketConfig::new("ws://127.0.0.1:8888")).is_ok());
        assert!(validate(&CofWebsocketConfig::new("wss://crh.circl.lu:8888")).is_ok());
        let error = validate(&CofWebsocketConfig::new("http://127.0.0.1:8888")).unwrap_err();
        assert!(error.to_string().contains("http://"), "{error}");
    }
}

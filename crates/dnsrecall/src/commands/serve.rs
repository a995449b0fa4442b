//! `dnsrecall serve`: the query server on the embedded store.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use dnsrecall_core::store::Store;
use dnsrecall_http::{ApiConfig, ApiKeys, AppState};

use dnsrecall_ingest::IngestContext;
use dnsrecall_ingest::driver::StoreWriter;

use crate::config::Config;

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let keys = config.api_keys()?;
    let users = match &config.api.users_file {
        Some(path) => Some(Arc::new(
            dnsrecall_http::users::Users::open(path.clone()).context("api.users_file")?,
        )),
        None => None,
    };
    let listen = config.api.listen;
    if !listen.ip().is_loopback()
        && keys.is_empty()
        && users.is_none()
        && !config.api.allow_public_without_keys
    {
        bail!(
            "refusing to listen on non-loopback address {listen} without API keys: configure api.api_keys \
             or api.users_file (or set api.allow_public_without_keys = true to serve an open API on purpose)"
        );
    }
    let store = super::open_writer(config)?;
    let mut filters = dnsrecall_pipeline::FilterReloader::new(config.pipeline.filter.clone())
        .context("loading filter lists")?;
    filters.start_watching().context("watching filter lists")?;
    let filters = Arc::new(filters);
    let writer = StoreWriter::start(store.clone() as Arc<dyn Store>, &config.pipeline, &filters)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving the query API");
        tracing::info!("{}", config.memory_plan());
        let metrics = Arc::new(dnsrecall_metrics::Registry::default());
        writer.register_metrics(&metrics);
        let mut outputs = dnsrecall_ingest::outputs::build(&config.all_outputs(), config.geoip.as_ref(), &metrics)?;
        let stats = match &config.stats {
            Some(stats_config) => {
                let stats = Arc::new(
                    dnsrecall_stats::Stats::new(stats_config.clone())
                        .context("invalid [stats] configuration")?,
                );
                let output =
                    dnsrecall_ingest::outputs::stats::StatsOutput::start(stats.clone(), &metrics)
                        .context("cannot start the statistics thread")?;
                if outputs.push(Box::new(output)).is_err() {
                    bail!("internal error: message outputs shared before statistics were added");
                }
                Some(stats)
            }
            None => None,
        };
        let context = IngestContext {
            entries: Some(writer.sender()),
            store: Some(store.clone() as Arc<dyn Store>),
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            outputs: outputs.clone(),
        };
        let tasks = dnsrecall_ingest::inputs::start(&config.all_inputs(), &context).await?;
        drop(context);
        let quotas = Arc::new(dnsrecall_http::quota::QuotaLedger::open(
            config.quota_state_file(),
            dnsrecall_query::dnsdb::now(),
        ));
        let api_keys = match users {
            Some(users) => ApiKeys::new(&keys).with_users(users),
            None => ApiKeys::new(&keys),
        };
        let state = AppState {
            store: store.clone() as Arc<dyn Store>,
            config: Arc::new(ApiConfig {
                origin: config.api.origin.clone(),
                max_results: config.api.max_results,
                request_timeout: Duration::from_secs(config.api.request_timeout_secs),
                dnsdb_max_results: config.api.dnsdb_max_results,
                dnsdb_offset_max: config.api.dnsdb_offset_max,
                dnsdb_keys_file: config.api.dnsdb_keys_file.clone(),
                limits: config.api.limits.clone(),
                rate_limits: config.api.rate_limits.clone(),
            }),
            keys: Arc::new(api_keys),
            metrics,
            quotas: quotas.clone(),
        };
        // Saves the quota counters on a timer, and once more when the
        // server has finished its last request (its own token: the
        // shutdown signal comes before the last requests are done).
        let saver_stop = tokio_util::sync::CancellationToken::new();
        let saver = tokio::spawn(quotas.run_saver(
            Duration::from_secs(config.api.quota_state_interval_secs),
            saver_stop.clone().cancelled_owned(),
        ));
        tokio::spawn(reload_on_sighup(filters.clone()));
        let stop = shutdown.clone();
        let signal = async move {
            shutdown_signal().await;
            stop.cancel();
        };
        let served = dnsrecall_http::guard::serve_with(
            listener,
            with_stats(dnsrecall_http::router(state), stats),
            &config.api.limits,
            signal,
        )
        .await
        .context("HTTP server failed");
        saver_stop.cancel();
        let _ = saver.await;
        // The inputs drain what they hold, then drop their senders.
        shutdown.cancel();
        for task in tasks {
            let _ = task.await;
        }
        outputs.finish().await;
        served
    });
    tracing::info!("shutting down: flushing the store");
    let written = writer.finish().context("store writer")?;
    tracing::info!(
        entries = written.entries,
        writes = written.writes,
        "store writer finished"
    );
    // `finish` flushed the store (memtables and WAL).
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Reloads the filter lists on every SIGHUP (a list that fails to parse
/// keeps the previous one; the error names file and line).
async fn reload_on_sighup(filters: Arc<dnsrecall_pipeline::FilterReloader>) {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; filter lists reload by file watching only");
        return;
    };
    while hangup.recv().await.is_some() {
        match filters.reload() {
            Ok(()) => tracing::info!("filter lists reloaded (SIGHUP)"),
            Err(error) => {
                tracing::error!(%error, "filter lists not reloaded; keeping the previous ones")
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// Hands the statistics to their routes (`/counters`, `/stats/*`, `/metrics`);
/// without `[stats]` those routes say statistics are off.
fn with_stats(router: axum::Router, stats: Option<Arc<dnsrecall_stats::Stats>>) -> axum::Router {
    match stats {
        Some(stats) => router.layer(axum::Extension(stats)),
        None => router,
    }
}

//! dnstap sockets: servers on TCP, unix and TLS listeners, and a client mode
//! that connects out to a sender that listens (CoreDNS `dnstap listen`).
//!
//! Every entry point takes what it needs already built (a bound listener, a
//! TLS acceptor), a [`FrameSink`] receiving [`DataFrame`]s, its config, the
//! shared [`Metrics`] and a shutdown future. Each connection runs on its own
//! task, so a slow or hostile peer only ever stalls itself; the handshake has
//! a timeout and the number of open connections is capped.
//!
//! Shutdown: the accept loop stops, every connection keeps reading for at
//! most `drain_timeout` (frames already sent are delivered, a STOP ends it
//! early), then the call returns once all connection tasks have ended.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use crate::framestream::{FrameConfig, FrameError, ReceiverSession};
use crate::metrics::{ErrorReason, Metrics};

/// One received data frame (a dnstap protobuf) and where it came from.
#[derive(Clone, Debug)]
pub struct DataFrame {
    /// The frame payload.
    pub data: Bytes,
    /// The peer, for logs (`tcp:127.0.0.1:5353`, `unix:/run/dnstap.sock#3`).
    pub peer: Arc<str>,
}

/// Where servers deliver frames. A full channel slows only the connection
/// that is sending; a closed one ends every connection.
pub type FrameSink = mpsc::Sender<DataFrame>;

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Frame cap and content type.
    pub frame: FrameConfig,
    /// Most connections open at once; more are closed on accept (default 1024).
    pub max_connections: usize,
    /// Time allowed from accept (TLS included) to START (default 10 s).
    pub handshake_timeout: Duration,
    /// How long connections keep reading after shutdown (default 2 s).
    pub drain_timeout: Duration,
    /// In the data phase, longest wait for the next complete frame; a peer
    /// silent (or trickling one frame) for longer is disconnected and
    /// counted as truncated. `None` (default): no limit, since a quiet
    /// resolver may send nothing for a long time.
    pub idle_timeout: Option<Duration>,
    /// Serve plain TCP on a non-loopback address (default false: refused,
    /// since anyone who can reach the port could feed records). The same
    /// rule as the HTTP API's `allow_public_without_keys`; see
    /// [`check_listener`].
    pub allow_public_plaintext: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            frame: FrameConfig::default(),
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(2),
            idle_timeout: None,
            allow_public_plaintext: false,
        }
    }
}

//---- Connection ----

struct Shared {
    sink: FrameSink,
    config: ServerConfig,
    metrics: Arc<Metrics>,
}

/// Runs one receiving connection to its end. Returns whether the data phase
/// was reached (client mode resets its backoff on that).
async fn run_connection<T>(
    io: T,
    peer: &Arc<str>,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) -> bool
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut session = ReceiverSession::new(io, &shared.config.frame);
    let result = receive(&mut session, peer, shared, &mut shutdown).await;
    let metrics = &shared.metrics;
    metrics
        .control_frames
        .fetch_add(session.control_frames(), Ordering::Relaxed);
    Metrics::inc(&metrics.connections_closed);
    match result {
        Ok(()) => {
            debug!(peer = %peer, stopped = session.stopped(), "dnstap connection closed");
        }
        Err(error) => {
            let reason = match &error {
                ReceiveError::Frame(e) => ErrorReason::of(e),
                ReceiveError::HandshakeTimeout | ReceiveError::IdleTimeout => {
                    ErrorReason::Truncated
                }
            };
            metrics.record_error(reason);
            warn!(peer = %peer, reason = reason.as_str(), error = %error, "dnstap connection dropped");
        }
    }
    session.mode().is_some()
}

#[derive(Debug, thiserror::Error)]
enum ReceiveError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("handshake not finished within the timeout")]
    HandshakeTimeout,
    #[error("no complete frame within the idle timeout")]
    IdleTimeout,
}

/// The next data frame, within `idle` when set.
async fn next_within<T>(
    session: &mut ReceiverSession<T>,
    idle: Option<Duration>,
) -> Result<Result<Option<Bytes>, FrameError>, ReceiveError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    match idle {
        None => Ok(session.next_data().await),
        Some(idle) => tokio::time::timeout(idle, session.next_data())
            .await
            .map_err(|_| ReceiveError::IdleTimeout),
    }
}

async fn receive<T>(
    session: &mut ReceiverSession<T>,
    peer: &Arc<str>,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ReceiveError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    // On shutdown a peer still in its handshake gets the drain time to finish
    // it and deliver what it already sent, like a peer in the data phase.
    let mut handshake_deadline = Instant::now() + shared.config.handshake_timeout;
    let mut deadline: Option<Instant> = None;
    let mode = loop {
        tokio::select! {
            result = tokio::time::timeout_at(handshake_deadline, session.handshake()) => {
                break result.map_err(|_| ReceiveError::HandshakeTimeout)??;
            }
            _ = shutdown.wait_for(|stop| *stop), if deadline.is_none() => {
                let drain = Instant::now() + shared.config.drain_timeout;
                handshake_deadline = handshake_deadline.min(drain);
                deadline = Some(drain);
            }
        }
    };
    debug!(peer = %peer, mode = ?mode, "dnstap stream started");
    loop {
        let next = match deadline {
            None => tokio::select! {
                next = next_within(session, shared.config.idle_timeout) => next?,
                _ = shutdown.wait_for(|stop| *stop) => {
                    deadline = Some(Instant::now() + shared.config.drain_timeout);
                    continue;
                }
            },
            Some(deadline) => match tokio::time::timeout_at(deadline, session.next_data()).await {
                Ok(next) => next,
                Err(_) => {
                    debug!(peer = %peer, buffered = session.buffered(), "dnstap drain deadline reached");
                    return Ok(());
                }
            },
        };
        let Some(data) = next? else {
            return Ok(());
        };
        shared
            .metrics
            .frames_received
            .fetch_add(1, Ordering::Relaxed);
        shared
            .metrics
            .bytes_received
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let frame = DataFrame {
            data,
            peer: peer.clone(),
        };
        let sent = match deadline {
            None => shared.sink.send(frame).await.is_ok(),
            Some(deadline) => matches!(
                tokio::time::timeout_at(deadline, shared.sink.send(frame)).await,
                Ok(Ok(()))
            ),
        };
        if !sent {
            debug!(peer = %peer, "dnstap sink closed or drain deadline reached");
            return Ok(());
        }
    }
}

//---- Servers ----

enum Listener {
    Tcp(TcpListener, Option<TlsAcceptor>),
    Unix(UnixListener, String),
}

enum Accepted {
    Tcp(TcpStream, Option<TlsAcceptor>),
    Unix(tokio::net::UnixStream),
}

impl Listener {
    async fn accept(&self, sequence: u64) -> io::Result<(Accepted, Arc<str>)> {
        match self {
            Listener::Tcp(listener, tls) => {
                let (stream, addr) = listener.accept().await?;
                // Frames are small and latency matters more than packet count
                // for the FINISH/ACCEPT replies.
                let _ = stream.set_nodelay(true);
                let scheme = if tls.is_some() { "tls" } else { "tcp" };
                Ok((
                    Accepted::Tcp(stream, tls.clone()),
                    Arc::from(format!("{scheme}:{addr}")),
                ))
            }
            Listener::Unix(listener, path) => {
                let (stream, _) = listener.accept().await?;
                // Unix peers are usually unnamed: number them instead.
                Ok((
                    Accepted::Unix(stream),
                    Arc::from(format!("unix:{path}#{sequence}")),
                ))
            }
        }
    }
}

async fn handle_accepted(
    accepted: Accepted,
    peer: Arc<str>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    match accepted {
        Accepted::Tcp(stream, None) => {
            run_connection(stream, &peer, &shared, shutdown).await;
        }
        Accepted::Tcp(stream, Some(acceptor)) => {
            let timeout = shared.config.handshake_timeout;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    run_connection(tls, &peer, &shared, shutdown).await;
                }
                Ok(Err(error)) => {
                    Metrics::inc(&shared.metrics.connections_closed);
                    shared.metrics.record_error(ErrorReason::Io);
                    warn!(peer = %peer, error = %error, "dnstap TLS handshake failed");
                }
                Err(_) => {
                    Metrics::inc(&shared.metrics.connections_closed);
                    shared.metrics.record_error(ErrorReason::Io);
                    warn!(peer = %peer, "dnstap TLS handshake timed out");
                }
            }
        }
        Accepted::Unix(stream) => {
            run_connection(stream, &peer, &shared, shutdown).await;
        }
    }
}

async fn serve(
    listener: Listener,
    sink: FrameSink,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let shared = Arc::new(Shared {
        sink,
        config,
        metrics,
    });
    // Connection tasks watch this; it flips to true once, on shutdown.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut sequence = 0u64;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept(sequence) => {
                let (accepted, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        shared.metrics.record_error(ErrorReason::Io);
                        warn!(error = %error, "dnstap accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                sequence += 1;
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    Metrics::inc(&shared.metrics.connections_rejected);
                    warn!(peer = %peer, limit = shared.config.max_connections, "dnstap connection refused: too many connections");
                    continue;
                };
                Metrics::inc(&shared.metrics.connections_accepted);
                debug!(peer = %peer, "dnstap connection accepted");
                let shared = shared.clone();
                let stop = stop_rx.clone();
                connections.spawn(async move {
                    handle_accepted(accepted, peer, shared, stop).await;
                    drop(permit);
                });
            }
        }
        if shared.sink.is_closed() {
            info!("dnstap sink closed, server stopping");
            break;
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// How a dnstap TCP listener is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerSecurity {
    /// Plain TCP.
    Plain,
    /// TLS; `client_certificates`: clients must present a certificate
    /// signed by the configured CA.
    Tls { client_certificates: bool },
}

/// Why a listener was refused at start-up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to accept dnstap on non-loopback address {address} without TLS client certificates: \
     anyone reaching it could feed records; configure TLS with a client CA, or opt out explicitly \
     (allow_public_plaintext)"
)]
pub struct ListenerRefused {
    pub address: SocketAddr,
}

/// The start-up rule for dnstap TCP listeners (the HTTP API's rule for API
/// keys, applied to writers): a listener on a non-loopback address must
/// authenticate its peers with TLS client certificates, unless the operator
/// opted out with `allow_public_plaintext`.
pub fn check_listener(
    address: SocketAddr,
    security: ListenerSecurity,
    allow_public_plaintext: bool,
) -> Result<(), ListenerRefused> {
    let authenticated = security
        == ListenerSecurity::Tls {
            client_certificates: true,
        };
    if address.ip().is_loopback() || authenticated || allow_public_plaintext {
        Ok(())
    } else {
        Err(ListenerRefused { address })
    }
}

/// Serves dnstap on a bound TCP listener until `shutdown` completes.
/// Refused (`PermissionDenied`) on a non-loopback address unless
/// `config.allow_public_plaintext` ([`check_listener`]).
pub async fn serve_tcp(
    listener: TcpListener,
    sink: FrameSink,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let address = listener.local_addr()?;
    check_listener(
        address,
        ListenerSecurity::Plain,
        config.allow_public_plaintext,
    )
    .map_err(|refused| io::Error::new(io::ErrorKind::PermissionDenied, refused))?;
    info!(addr = ?listener.local_addr().ok(), "dnstap TCP server listening");
    serve(
        Listener::Tcp(listener, None),
        sink,
        config,
        metrics,
        shutdown,
    )
    .await
}

/// Serves dnstap over TLS on a bound TCP listener until `shutdown` completes.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sink: FrameSink,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    info!(addr = ?listener.local_addr().ok(), "dnstap TLS server listening");
    serve(
        Listener::Tcp(listener, Some(acceptor)),
        sink,
        config,
        metrics,
        shutdown,
    )
    .await
}

/// Serves dnstap on a bound unix listener until `shutdown` completes.
pub async fn serve_unix(
    listener: UnixListener,
    sink: FrameSink,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
        .unwrap_or_else(|| "-".to_string());
    info!(path = %path, "dnstap unix server listening");
    serve(
        Listener::Unix(listener, path),
        sink,
        config,
        metrics,
        shutdown,
    )
    .await
}

/// Binds a unix socket at `path`: removes a stale socket left there (never a
/// regular file), binds, then sets the permission bits to `mode` if given.
/// Must be called inside a tokio runtime.
pub fn bind_unix(path: &Path, mode: Option<u32>) -> io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(listener)
}

//---- TLS ----

/// Building a TLS config failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read PEM file {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate file held no certificate.
    #[error("no certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the material.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    })
}

fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// A rustls server config (ring provider, TLS 1.2+) from PEM files; with
/// `client_ca`, clients must present a certificate signed by it.
pub fn tls_server_config(
    cert_pem: &Path,
    key_pem: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(load_certs(cert_pem)?, load_key(key_pem)?)?;
    Ok(Arc::new(config))
}

/// A rustls client config trusting `ca_pem`, optionally presenting a client
/// certificate `(cert_pem, key_pem)`.
pub fn tls_client_config(
    ca_pem: &Path,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?);
    let config = match client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

//---- Client mode ----

/// TLS for client mode.
#[derive(Clone)]
pub struct ClientTls {
    /// The connector (see [`tls_client_config`]).
    pub connector: TlsConnector,
    /// The name to verify the sender's certificate against.
    pub server_name: ServerName<'static>,
}

/// Client-mode settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Frame cap, content type, handshake and drain timeouts.
    pub server: ServerConfig,
    /// First reconnect delay (default 1 s); doubles after each failure.
    pub initial_backoff: Duration,
    /// Reconnect delay cap (default 60 s).
    pub max_backoff: Duration,
    /// TCP connect timeout (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            server: ServerConfig::default(),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Connects to a dnstap sender that listens (`addr`), acts as the Frame
/// Streams receiver on that connection, and reconnects with capped
/// exponential backoff until `shutdown` completes or the sink closes.
pub async fn connect_tcp(
    addr: SocketAddr,
    tls: Option<ClientTls>,
    sink: FrameSink,
    config: ClientConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Shared {
        sink,
        config: config.server.clone(),
        metrics,
    };
    let scheme = if tls.is_some() { "tls" } else { "tcp" };
    let peer: Arc<str> = Arc::from(format!("{scheme}:{addr}"));
    let driver = async {
        let mut backoff = config.initial_backoff;
        loop {
            let mut stop = stop_rx.clone();
            let reached_data = match tokio::time::timeout(
                config.connect_timeout,
                TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    Metrics::inc(&shared.metrics.connections_accepted);
                    info!(peer = %peer, "dnstap client connected");
                    match &tls {
                        None => run_connection(stream, &peer, &shared, stop.clone()).await,
                        Some(tls) => {
                            let handshake = tls.connector.connect(tls.server_name.clone(), stream);
                            match tokio::time::timeout(config.server.handshake_timeout, handshake)
                                .await
                            {
                                Ok(Ok(stream)) => {
                                    run_connection(stream, &peer, &shared, stop.clone()).await
                                }
                                Ok(Err(error)) => {
                                    Metrics::inc(&shared.metrics.connections_closed);
                                    shared.metrics.record_error(ErrorReason::Io);
                                    warn!(peer = %peer, error = %error, "dnstap client TLS handshake failed");
                                    false
                                }
                                Err(_) => {
                                    Metrics::inc(&shared.metrics.connections_closed);
                                    shared.metrics.record_error(ErrorReason::Io);
                                    warn!(peer = %peer, "dnstap client TLS handshake timed out");
                                    false
                                }
                            }
                        }
                    }
                }
                Ok(Err(error)) => {
                    shared.metrics.record_error(ErrorReason::Io);
                    warn!(peer = %peer, error = %error, retry_in = ?backoff, "dnstap client cannot connect");
                    false
                }
                Err(_) => {
                    shared.metrics.record_error(ErrorReason::Io);
                    warn!(peer = %peer, retry_in = ?backoff, "dnstap client connect timed out");
                    false
                }
            };
            if *stop.borrow() || shared.sink.is_closed() {
                return;
            }
            if reached_data {
                backoff = config.initial_backoff;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            backoff = (backoff * 2).min(config.max_backoff);
        }
    };
    tokio::pin!(driver);
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut driver => {}
        _ = &mut shutdown => {
            let _ = stop_tx.send(true);
            driver.await;
        }
    }
}

//! The accept loop: connection limit, head timeout (slowloris, half-open
//! connections), bounded read buffer, graceful shutdown.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt as _;

use super::{Limits, METRICS, inc};

const REFUSED_BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
const HEAD_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 32\r\n\r\nrequest head not received in time";

/// Serves `app` on an already-bound listener under `limits` until
/// `shutdown` completes, then stops accepting and lets in-flight requests
/// finish. Each request carries its client's address (`ConnectInfo`).
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // HTTP/1.1 only, as axum::serve without its http2 feature.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .max_buf_size(limits.read_buffer_bytes());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            inc(&METRICS.connections_refused);
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                    let _ = stream.write_all(REFUSED_BUSY).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            // Nagle would hold the last segment of each answer for the
            // client's delayed ACK (~40 ms per request).
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let head_timeout = limits.header_timeout();
        tokio::spawn(async move {
            let _permit = permit;
            let (give_back, given_back) = oneshot::channel();
            let activity = Arc::new(Activity::new());
            let io = Watched {
                stream: Some(stream),
                partial_request: false,
                give_back: Some(give_back),
                activity: activity.clone(),
            };
            let in_service = activity.clone();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let in_flight = InFlight::start(in_service.clone());
                    let answer = app.clone().oneshot(request);
                    async move {
                        let answer = answer.await;
                        drop(in_flight);
                        answer
                    }
                });
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut served = Box::pin(watcher.watch(connection));
            // hyper times a request head once its first byte arrived; a
            // connection that sends nothing at all (half-open, or idle
            // between requests) is timed here.
            let idle = loop {
                let wait = head_timeout.saturating_sub(activity.idle_for());
                tokio::select! {
                    result = &mut served => match result {
                        Ok(()) => return,
                        Err(error) => break Some(error),
                    },
                    () = tokio::time::sleep(wait.max(std::time::Duration::from_millis(50))) => {
                        if activity.in_flight() == 0 && activity.idle_for() >= head_timeout {
                            break None;
                        }
                    }
                }
            };
            let timed_out = match idle {
                // Idle: closed below.
                None => true,
                Some(error) => {
                    let timed_out = error.is_timeout();
                    if !timed_out {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    timed_out
                }
            };
            drop(served);
            if !timed_out {
                return;
            }
            // The connection is gone, and with it the `Watched` that hands
            // the stream back on drop.
            let given_back = tokio::time::timeout(Duration::from_secs(1), given_back).await;
            let Ok(Ok((mut stream, partial_request))) = given_back else {
                return;
            };
            if partial_request {
                inc(&METRICS.header_timeouts);
                tracing::debug!(%peer, timeout = ?head_timeout, "request head too slow: 408");
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
                    let _ = stream.write_all(HEAD_TIMEOUT).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            } else {
                inc(&METRICS.idle_closed);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The client's stream, remembering whether bytes arrived since the last
/// answer was written: a timeout then interrupted a request (answer 408)
/// rather than an idle keep-alive connection (just close it). hyper owns it
/// while serving; on drop it hands the stream back, so the 408 can still be
/// written after hyper gave up on the connection.
struct Watched {
    stream: Option<TcpStream>,
    partial_request: bool,
    give_back: Option<oneshot::Sender<(TcpStream, bool)>>,
    activity: Arc<Activity>,
}

/// When bytes last moved on a connection, and how many of its requests are
/// being answered.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One request being answered (decrements on drop, so a cancelled answer
/// counts out too).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Watched {
    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let (Some(stream), Some(give_back)) = (self.stream.take(), self.give_back.take()) {
            let _ = give_back.send((stream, self.partial_request));
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = match self.stream() {
            Ok(stream) => Pin::new(stream).poll_read(cx, buf),
            Err(error) => return Poll::Ready(Err(error)),
        };
        if buf.filled().len() > before {
            self.partial_request = true;
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.partial_request = false;
        self.activity.touch();
        match self.stream() {
            Ok(stream) => Pin::new(stream).poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => Pin::new(stream).poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => Pin::new(stream).poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.partial_request = false;
        self.activity.touch();
        match self.stream() {
            Ok(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }
}

//! Live capture through libpcap.
//!
//! The interface is opened and the BPF filter compiled on the caller's
//! thread, so a bad interface, a bad filter or a missing CAP_NET_RAW fails
//! [`LiveCapture::start`] at once. Packets are then read by a blocking loop
//! on a dedicated thread (libpcap's own ring on Linux) and the decoded
//! messages go through a bounded channel. A full channel makes the thread
//! wait, so a slow consumer shows up as kernel drops in
//! [`Metrics::live_dropped`] rather than as unbounded memory.
//!
//! Stopping: libpcap on Linux may block in `poll` without honouring the
//! read timeout (immediate mode), so a flag alone cannot stop an idle
//! capture. [`StopHandle::stop`] sets the flag *and* calls
//! `pcap_breakloop`, which wakes the blocked read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::inc;
use crate::{CaptureConfig, CaptureError, Decoder, DnsPayload, Metrics};

/// Default BPF filter.
pub const DEFAULT_FILTER: &str = "port 53";
/// Default snap length: enough for any packet on common links.
pub const DEFAULT_SNAPLEN: i32 = 65_535;
/// Default kernel buffer size (16 MiB).
pub const DEFAULT_BUFFER_SIZE: i32 = 16 << 20;
/// Default read timeout in milliseconds: how often the loop looks at the
/// shutdown flag when no packet comes.
pub const DEFAULT_TIMEOUT_MS: i32 = 100;
/// Default capacity of the output channel, in messages.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 8192;

/// How often the kernel counters are copied into [`Metrics`].
const STATS_INTERVAL: Duration = Duration::from_secs(1);

//------------ LiveConfig ----------------------------------------------------

/// Interface-level settings (what libpcap needs); what counts as DNS is in
/// [`CaptureConfig`].
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interface name, e.g. `eth0` or `lo`.
    pub interface: String,
    /// BPF filter expression. Default [`DEFAULT_FILTER`]; empty for none.
    pub filter: String,
    /// Bytes captured per packet. Default [`DEFAULT_SNAPLEN`].
    pub snaplen: i32,
    /// Promiscuous mode. Default true.
    pub promiscuous: bool,
    /// Deliver packets as they arrive instead of batching. Default true.
    pub immediate: bool,
    /// Kernel buffer size in bytes. Default [`DEFAULT_BUFFER_SIZE`].
    pub buffer_size: i32,
    /// Read timeout in milliseconds. Default [`DEFAULT_TIMEOUT_MS`].
    pub timeout_ms: i32,
    /// Output channel capacity. Default [`DEFAULT_CHANNEL_CAPACITY`].
    pub channel_capacity: usize,
}

impl LiveConfig {
    /// Defaults for `interface`.
    pub fn new(interface: impl Into<String>) -> Self {
        LiveConfig {
            interface: interface.into(),
            filter: DEFAULT_FILTER.to_string(),
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: true,
            immediate: true,
            buffer_size: DEFAULT_BUFFER_SIZE,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
        }
    }
}

//------------ LiveCapture ---------------------------------------------------

/// A running capture: messages come out of [`LiveCapture::receiver`].
#[derive(Debug)]
pub struct LiveCapture {
    receiver: Receiver<DnsPayload>,
    stopper: StopHandle,
    thread: Option<JoinHandle<Result<(), CaptureError>>>,
    metrics: Arc<Metrics>,
}

impl LiveCapture {
    /// Open the interface and start the capture thread.
    pub fn start(
        live: &LiveConfig,
        config: &CaptureConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, CaptureError> {
        let mut capture = open(live)?;
        let (sender, receiver) = mpsc::sync_channel(live.channel_capacity.max(1));
        let shutdown = Arc::new(AtomicBool::new(false));
        let stopper = StopHandle {
            shutdown: shutdown.clone(),
            breaker: Arc::new(Mutex::new(capture.breakloop_handle())),
        };
        let decoder = Decoder::new(config, metrics.clone());
        let thread = {
            let shutdown = shutdown.clone();
            let interface = live.interface.clone();
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name(format!("capture-{}", live.interface))
                .spawn(move || {
                    let shutdown_ref = &*shutdown;
                    capture_loop(capture, &interface, decoder, shutdown_ref, &mut |p| {
                        send(&sender, p, shutdown_ref, &metrics)
                    })
                })
                .map_err(CaptureError::Thread)?
        };
        Ok(LiveCapture {
            receiver,
            stopper,
            thread: Some(thread),
            metrics,
        })
    }

    /// The decoded messages. The channel closes when the capture ends.
    pub fn receiver(&self) -> &Receiver<DnsPayload> {
        &self.receiver
    }

    /// Wait up to `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<DnsPayload, RecvTimeoutError> {
        self.receiver.recv_timeout(timeout)
    }

    /// A handle that stops the capture from anywhere (another thread, a
    /// shutdown task).
    pub fn stop_handle(&self) -> StopHandle {
        self.stopper.clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Stop the thread and wait for it (at most about one read timeout);
    /// returns the error that ended the capture, if any.
    pub fn stop(mut self) -> Result<(), CaptureError> {
        self.stopper.stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(CaptureError::Thread(std::io::Error::other(
                "capture thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stopper.stop();
    }
}

//------------ StopHandle ----------------------------------------------------

/// Stops a [`LiveCapture`]: sets its shutdown flag and wakes a read blocked
/// in libpcap.
#[derive(Clone)]
pub struct StopHandle {
    shutdown: Arc<AtomicBool>,
    // `BreakLoop` is Send but not Sync; the mutex makes the handle shareable.
    breaker: Arc<Mutex<pcap::BreakLoop>>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Ok(breaker) = self.breaker.lock() {
            breaker.breakloop();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// Run a capture on the current thread until `shutdown` is set, handing
/// every message to `emit` (the callback variant of [`LiveCapture`]). The
/// flag is checked between packets and read timeouts; on a quiet link use
/// [`LiveCapture`] and its [`StopHandle`] to stop promptly.
pub fn run_blocking(
    live: &LiveConfig,
    config: &CaptureConfig,
    metrics: Arc<Metrics>,
    shutdown: &AtomicBool,
    emit: &mut impl FnMut(DnsPayload),
) -> Result<(), CaptureError> {
    let capture = open(live)?;
    let decoder = Decoder::new(config, metrics);
    capture_loop(capture, &live.interface, decoder, shutdown, &mut |p| {
        emit(p);
        true
    })
}

fn open(live: &LiveConfig) -> Result<pcap::Capture<pcap::Active>, CaptureError> {
    let err = |source| CaptureError::Live {
        interface: live.interface.clone(),
        source,
    };
    let mut capture = pcap::Capture::from_device(live.interface.as_str())
        .map_err(err)?
        .snaplen(live.snaplen)
        .promisc(live.promiscuous)
        .immediate_mode(live.immediate)
        .buffer_size(live.buffer_size)
        .timeout(live.timeout_ms)
        .open()
        .map_err(err)?;
    if !live.filter.is_empty() {
        capture.filter(&live.filter, true).map_err(err)?;
    }
    Ok(capture)
}

/// Hand a message to the channel, waiting while it is full; false when the
/// capture should stop (receiver gone or shutdown).
fn send(
    sender: &SyncSender<DnsPayload>,
    payload: DnsPayload,
    shutdown: &AtomicBool,
    metrics: &Metrics,
) -> bool {
    let mut payload = payload;
    let mut counted = false;
    loop {
        match sender.try_send(payload) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(p)) => {
                if shutdown.load(Ordering::Relaxed) {
                    return false;
                }
                if !counted {
                    counted = true;
                    inc(&metrics.live_channel_full);
                }
                payload = p;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

fn capture_loop(
    mut capture: pcap::Capture<pcap::Active>,
    interface: &str,
    mut decoder: Decoder,
    shutdown: &AtomicBool,
    emit: &mut impl FnMut(DnsPayload) -> bool,
) -> Result<(), CaptureError> {
    let linktype = capture.get_datalink().0 as u32;
    let name: Arc<str> = Arc::from(interface);
    decoder.set_interface(Some(name));
    let metrics = decoder.metrics().clone();
    let mut last_stats = Instant::now();
    let mut open = true;
    let result = loop {
        if shutdown.load(Ordering::Relaxed) || !open {
            break Ok(());
        }
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            store_stats(&mut capture, &metrics);
        }
        match capture.next_packet() {
            Ok(packet) => {
                let ts_sec = u64::try_from(packet.header.ts.tv_sec).unwrap_or(0);
                let usec = u64::try_from(packet.header.ts.tv_usec).unwrap_or(0);
                let ts_sec = ts_sec + usec / 1_000_000;
                let ts_nsec = ((usec % 1_000_000) * 1_000) as u32;
                decoder.decode(ts_sec, ts_nsec, linktype, packet.data, &mut |p| {
                    if open && !emit(p) {
                        open = false;
                    }
                });
            }
            Err(pcap::Error::TimeoutExpired) => {}
            Err(pcap::Error::NoMorePackets) => break Ok(()),
            Err(source) => {
                break Err(CaptureError::Live {
                    interface: interface.to_string(),
                    source,
                });
            }
        }
    };
    store_stats(&mut capture, &metrics);
    result
}

fn store_stats(capture: &mut pcap::Capture<pcap::Active>, metrics: &Metrics) {
    // libpcap's counters are cumulative since open: stored, not added.
    if let Ok(stat) = capture.stats() {
        metrics
            .live_received
            .store(u64::from(stat.received), Ordering::Relaxed);
        metrics
            .live_dropped
            .store(u64::from(stat.dropped), Ordering::Relaxed);
        metrics
            .live_if_dropped
            .store(u64::from(stat.if_dropped), Ordering::Relaxed);
    }
}

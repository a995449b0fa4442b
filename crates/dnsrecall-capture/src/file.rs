//! Capture files: pcap and pcapng, plain or gzip, read as a stream.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, PcapBlockOwned, PcapError};

use crate::metrics::inc;
use crate::{CaptureConfig, CaptureError, Decoder, DnsPayload, Metrics};

/// Initial reader buffer: several maximal (256 KiB snap length) packets.
const INITIAL_BUFFER: usize = 1 << 20;
/// A single block larger than this is treated as corruption, not data.
const MAX_BUFFER: usize = 64 << 20;
const NANOS: u64 = 1_000_000_000;

//------------ CaptureFormat -------------------------------------------------

/// A capture file format recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
    GzipPcap,
    GzipPcapNg,
}

impl CaptureFormat {
    pub fn is_gzip(self) -> bool {
        matches!(self, CaptureFormat::GzipPcap | CaptureFormat::GzipPcapNg)
    }
}

/// Whether `head` (the first bytes of a file, 4 KiB is plenty) starts a
/// pcap or pcapng capture, plain or gzip-compressed. For `dnsrecall import`
/// format detection.
pub fn sniff_capture(head: &[u8]) -> Option<CaptureFormat> {
    if let Some(format) = sniff_plain(head) {
        return Some(format);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inner = [0u8; 12];
        let mut got = 0;
        let mut gz = flate2::read::GzDecoder::new(head);
        // A prefix of a gzip stream ends in an error once the input runs
        // out; whatever was decompressed before that is enough.
        while got < inner.len() {
            match gz.read(&mut inner[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        return match sniff_plain(&inner[..got]) {
            Some(CaptureFormat::Pcap) => Some(CaptureFormat::GzipPcap),
            Some(CaptureFormat::PcapNg) => Some(CaptureFormat::GzipPcapNg),
            _ => None,
        };
    }
    None
}

/// [`sniff_capture`] on the first 4 KiB of a file.
pub fn sniff_file(path: impl AsRef<Path>) -> io::Result<Option<CaptureFormat>> {
    let mut head = Vec::with_capacity(4096);
    File::open(path)?.take(4096).read_to_end(&mut head)?;
    Ok(sniff_capture(&head))
}

fn sniff_plain(head: &[u8]) -> Option<CaptureFormat> {
    let magic = head.get(..4)?;
    match magic {
        // Microsecond, nanosecond and "modified" pcap, both byte orders.
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x34, 0xcd, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xcd, 0x34] => Some(CaptureFormat::Pcap),
        [0x0a, 0x0d, 0x0d, 0x0a] => match head.get(8..12)? {
            [0x4d, 0x3c, 0x2b, 0x1a] | [0x1a, 0x2b, 0x3c, 0x4d] => Some(CaptureFormat::PcapNg),
            _ => None,
        },
        _ => None,
    }
}

//------------ PcapFileReader ------------------------------------------------

/// An iterator over the DNS messages in a capture file.
///
/// Reads block by block through a fixed buffer (never the whole file).
/// Yields `Ok(payload)` per message; a truncated or corrupt file yields the
/// messages before the damage, then one `Err`, then `None`.
pub struct PcapFileReader {
    path: PathBuf,
    reader: Box<dyn PcapReaderIterator + Send>,
    decoder: Decoder,
    state: FileState,
    pending: VecDeque<DnsPayload>,
    capacity: usize,
    /// Set by [`FullRead`] when the source failed (it then looks ended).
    read_failed: Arc<Mutex<Option<io::ErrorKind>>>,
    error: Option<CaptureError>,
    done: bool,
}

impl std::fmt::Debug for PcapFileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapFileReader")
            .field("path", &self.path)
            .field("packets", &self.state.packets)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct FileState {
    legacy_linktype: u32,
    legacy_nanos: bool,
    interfaces: Vec<Interface>,
    current_interface: Option<u32>,
    last_ts: (u64, u32),
    packets: u64,
}

#[derive(Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    resolution: u64,
    offset: i64,
    name: Option<Arc<str>>,
}

/// The next move after looking at the reader (owned, so the reader's
/// borrow ends before acting).
enum Step {
    Consumed(usize),
    Eof,
    Refill,
    Grow,
    Truncated,
    Corrupt(&'static str),
}

impl PcapFileReader {
    /// Open a pcap or pcapng file (gzip detected by magic) with fresh
    /// metrics.
    pub fn open(path: impl AsRef<Path>, config: &CaptureConfig) -> Result<Self, CaptureError> {
        Self::open_with_metrics(path, config, Arc::new(Metrics::new()))
    }

    /// Open a file, counting into shared `metrics`.
    pub fn open_with_metrics(
        path: impl AsRef<Path>,
        config: &CaptureConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| CaptureError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_reader(path, file, config, metrics)
    }

    /// Read a capture from any byte source (`name` is used in errors).
    pub fn from_reader(
        name: impl Into<PathBuf>,
        reader: impl Read + Send + 'static,
        config: &CaptureConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, CaptureError> {
        let path = name.into();
        let mut buffered = BufReader::with_capacity(64 << 10, reader);
        let head = buffered.fill_buf().map_err(|source| CaptureError::Io {
            path: path.clone(),
            source,
        })?;
        let failed = Arc::new(Mutex::new(None));
        let source: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(FullRead {
                inner: flate2::bufread::MultiGzDecoder::new(buffered),
                failed: failed.clone(),
            })
        } else {
            Box::new(FullRead {
                inner: buffered,
                failed: failed.clone(),
            })
        };
        let reader =
            pcap_parser::create_reader(INITIAL_BUFFER, source).map_err(|e| {
                match failed.lock().ok().and_then(|f| *f) {
                    Some(kind) => CaptureError::Io {
                        path: path.clone(),
                        source: io::Error::new(kind, "read or decompression failed"),
                    },
                    None if matches!(e, PcapError::ReadError) => CaptureError::Io {
                        path: path.clone(),
                        source: io::Error::other("read failed"),
                    },
                    None => CaptureError::NotACapture { path: path.clone() },
                }
            })?;
        Ok(PcapFileReader {
            path,
            reader,
            decoder: Decoder::new(config, metrics),
            state: FileState {
                legacy_linktype: 1,
                ..FileState::default()
            },
            pending: VecDeque::new(),
            capacity: INITIAL_BUFFER,
            read_failed: failed,
            error: None,
            done: false,
        })
    }

    /// The counters this reader feeds.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.decoder.metrics()
    }

    /// Frames read so far.
    pub fn packets(&self) -> u64 {
        self.state.packets
    }

    /// Read one block; returns false once the file is done.
    fn step(&mut self) {
        let PcapFileReader {
            reader,
            decoder,
            state,
            pending,
            ..
        } = self;
        let step = match reader.next() {
            Ok((offset, block)) => {
                handle_block(block, state, decoder, pending);
                Step::Consumed(offset)
            }
            Err(PcapError::Eof) => Step::Eof,
            Err(PcapError::Incomplete(_)) => Step::Refill,
            Err(PcapError::BufferTooSmall) => Step::Grow,
            Err(PcapError::UnexpectedEof) => Step::Truncated,
            Err(PcapError::ReadError) => Step::Corrupt("read or decompression failed"),
            Err(PcapError::HeaderNotRecognized) => Step::Corrupt("unrecognised header"),
            Err(PcapError::NomError(..) | PcapError::OwnedNomError(..)) => {
                Step::Corrupt("unparsable block")
            }
        };
        match step {
            Step::Consumed(offset) => self.reader.consume(offset),
            Step::Eof => match self.read_failed.lock().ok().and_then(|f| *f) {
                // The source failed at a block boundary: a cut gzip stream
                // is a truncated file, anything else a read error.
                Some(io::ErrorKind::UnexpectedEof) => self.truncated(),
                Some(_) => self.fail_corrupt("read or decompression failed"),
                None => self.finish(None),
            },
            Step::Refill => {
                let before = self.reader.data().len();
                if self.reader.refill().is_err() {
                    return self.fail_corrupt("read or decompression failed");
                }
                // A full buffer that cannot take more data: grow it, or a
                // parser asking for "more" forever would spin here.
                if self.reader.data().len() == before && !self.reader.reader_exhausted() {
                    self.grow();
                }
            }
            // A block larger than the buffer: grow only once the buffer is
            // full and the source has more to give. A short file whose
            // header claims a huge block is truncated, found without
            // allocating up to the cap (fuzz finding 7).
            Step::Grow => {
                let before = self.reader.data().len();
                if self.reader.refill().is_err() {
                    return self.fail_corrupt("read or decompression failed");
                }
                if self.reader.data().len() > before {
                    return;
                }
                if self.reader.reader_exhausted() {
                    return self.truncated();
                }
                self.grow()
            }
            Step::Truncated => self.truncated(),
            Step::Corrupt(reason) => self.fail_corrupt(reason),
        }
    }

    fn grow(&mut self) {
        if self.capacity >= MAX_BUFFER {
            return self.fail_corrupt("block larger than 64 MiB");
        }
        self.capacity *= 2;
        if !self.reader.grow(self.capacity) {
            self.fail_corrupt("cannot grow read buffer");
        }
    }

    fn truncated(&mut self) {
        let error = CaptureError::Truncated {
            path: self.path.clone(),
            packets: self.state.packets,
        };
        self.finish(Some(error));
    }

    fn fail_corrupt(&mut self, reason: &'static str) {
        let error = CaptureError::Corrupt {
            path: self.path.clone(),
            packets: self.state.packets,
            reason,
        };
        self.finish(Some(error));
    }

    fn finish(&mut self, error: Option<CaptureError>) {
        if let Some(error) = &error {
            // Debug only: the caller gets the error and reports it once.
            tracing::debug!(path = %self.path.display(), packets = self.state.packets, %error, "capture file ended early");
            inc(&self.decoder.metrics().file_errors);
        }
        let pending = &mut self.pending;
        self.decoder.finish(&mut |p| pending.push_back(p));
        self.error = error;
        self.done = true;
    }
}

impl Iterator for PcapFileReader {
    type Item = Result<DnsPayload, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(payload) = self.pending.pop_front() {
                return Some(Ok(payload));
            }
            if let Some(error) = self.error.take() {
                return Some(Err(error));
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

fn handle_block(
    block: PcapBlockOwned<'_>,
    state: &mut FileState,
    decoder: &mut Decoder,
    pending: &mut VecDeque<DnsPayload>,
) {
    let mut emit = |p: DnsPayload| pending.push_back(p);
    match block {
        PcapBlockOwned::LegacyHeader(header) => {
            state.legacy_linktype = header.network.0 as u32;
            state.legacy_nanos = header.is_nanosecond_precision();
        }
        PcapBlockOwned::Legacy(b) => {
            state.packets += 1;
            let frac = u64::from(b.ts_usec) * if state.legacy_nanos { 1 } else { 1_000 };
            let ts_sec = u64::from(b.ts_sec) + frac / NANOS;
            let ts_nsec = (frac % NANOS) as u32;
            decoder.decode(ts_sec, ts_nsec, state.legacy_linktype, b.data, &mut emit);
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
            // Interface ids are per section.
            state.interfaces.clear();
            state.current_interface = None;
        }
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            let name = idb.if_name().and_then(Result::ok).map(Arc::<str>::from);
            state.interfaces.push(Interface {
                linktype: idb.linktype.0 as u32,
                snaplen: idb.snaplen,
                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                offset: idb.ts_offset(),
                name,
            });
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let Some(iface) = state.interfaces.get(epb.if_id as usize) else {
                return inc(&decoder.metrics().file_blocks_skipped);
            };
            state.packets += 1;
            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let (ts_sec, ts_nsec) = ng_time(ts, iface.resolution, iface.offset);
            state.last_ts = (ts_sec, ts_nsec);
            let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
            if state.current_interface != Some(epb.if_id) {
                state.current_interface = Some(epb.if_id);
                decoder.set_interface(iface.name.clone());
            }
            decoder.decode(ts_sec, ts_nsec, iface.linktype, data, &mut emit);
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            let Some(iface) = state.interfaces.first() else {
                return inc(&decoder.metrics().file_blocks_skipped);
            };
            state.packets += 1;
            // No timestamp in a simple packet block: reuse the last one.
            let caplen = if iface.snaplen == 0 {
                spb.origlen
            } else {
                spb.origlen.min(iface.snaplen)
            };
            let data = &spb.data[..(caplen as usize).min(spb.data.len())];
            if state.current_interface != Some(0) {
                state.current_interface = Some(0);
                decoder.set_interface(iface.name.clone());
            }
            let (ts_sec, ts_nsec) = state.last_ts;
            decoder.decode(ts_sec, ts_nsec, iface.linktype, data, &mut emit);
        }
        PcapBlockOwned::NG(_) => {}
    }
}

/// A pcapng timestamp in `resolution` units per second, shifted by the
/// interface's offset in seconds.
fn ng_time(ts: u64, resolution: u64, offset: i64) -> (u64, u32) {
    let resolution = resolution.max(1);
    let secs = ts / resolution;
    let frac = ts % resolution;
    let nsec = (u128::from(frac) * u128::from(NANOS) / u128::from(resolution)) as u32;
    let secs = if offset >= 0 {
        secs.saturating_add(offset as u64)
    } else {
        secs.saturating_sub(offset.unsigned_abs())
    };
    (secs, nsec)
}

/// A reader whose `read` fills the buffer unless the source is at its end,
/// and which turns a read error into end of input, noting its kind.
///
/// pcap-parser reads once to probe the header and treats a zero-byte read
/// as end of file; decompressors return short reads, which would make it
/// misjudge a gzip stream. And pcap-parser reads again before handing out
/// the first block, so an error (a cut gzip stream) must not surface there
/// or the packets before the cut would be lost: the reader sees end of
/// input, and [`PcapFileReader`] reports the noted error after them.
struct FullRead<R> {
    inner: R,
    failed: Arc<Mutex<Option<io::ErrorKind>>>,
}

impl<R: Read> Read for FullRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Ok(mut failed) = self.failed.lock() {
                        failed.get_or_insert(e.kind());
                    }
                    break;
                }
            }
        }
        Ok(filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magics() {
        assert_eq!(
            sniff_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]),
            Some(CaptureFormat::Pcap)
        );
        assert_eq!(
            sniff_capture(&[0xa1, 0xb2, 0x3c, 0x4d]),
            Some(CaptureFormat::Pcap)
        );
        let ng = [
            0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
        ];
        assert_eq!(sniff_capture(&ng), Some(CaptureFormat::PcapNg));
        assert_eq!(sniff_capture(b"{\"json\": 1}"), None);
        assert_eq!(sniff_capture(&[]), None);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut gz, &ng).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(sniff_capture(&gz), Some(CaptureFormat::GzipPcapNg));
        assert_eq!(sniff_capture(&gz[..8]), None);
    }

    #[test]
    fn ng_timestamps() {
        assert_eq!(ng_time(1_500_000, 1_000_000, 0), (1, 500_000_000));
        assert_eq!(ng_time(3, 2, -1), (0, 500_000_000));
        assert_eq!(ng_time(u64::MAX, 1, i64::MAX), (u64::MAX, 0));
    }
}

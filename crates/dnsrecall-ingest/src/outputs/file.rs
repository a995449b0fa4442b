//! `kind = "file"`: message logs compatible with python dnstap-receiver
//! (text lines, JSON lines, YAML documents), DNS-collector-style text
//! templates, or dnstap Frame Streams files, to stdout or a file.
//!
//! `offer` clones the message (reference-counted wire bytes, no copy)
//! into a bounded queue; a writer thread renders (the per-output query →
//! response latency table lives there, as in dnstap-receiver) and writes
//! through a buffer flushed whenever the queue runs empty. Files rotate
//! by size (`FILE.1` newest … `FILE.<max_files>`, gzipped to `FILE.N.gz`
//! with `compress`), and are reopened on SIGHUP for logrotate.
//! `[[dnstap.outputs]]` is the old spelling of the same output, and
//! `target` the old name of `path`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dnsrecall_core::message::DnsMessage;
use dnsrecall_dnstap::DNSTAP_CONTENT_TYPE;
use dnsrecall_dnstap::framestream::{ControlFrame, ControlType};
use dnsrecall_dnstap::output::{Geo, LatencyTable, MessageView, control_bytes};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::template::Template;
use super::{
    BuildError, Deadline, DropReason, Enrichment, MessageOutput, OutputContext, OutputMetrics,
};
use crate::message;

/// Rendering of a message output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// dnstap-receiver text lines (or `template`'s).
    Text,
    /// One JSON object per line, dnstap-receiver's keys.
    Json,
    /// YAML documents, dnstap-receiver's keys.
    Yaml,
    /// The frames as received (captured packets: encoded), as a Frame
    /// Streams file.
    Dnstap,
}

/// `[[outputs]] kind = "file"` (and `[[dnstap.outputs]]`): a message log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `text`, `json`, `yaml` or `dnstap` (required).
    pub format: OutputFormat,
    /// The file, or `-` for stdout (`stdout` is accepted too); `target` is
    /// the old name of this key [default: `-`].
    #[serde(alias = "target", default = "default_path")]
    pub path: String,
    /// With `format = "text"`: DNS-collector text directives instead of
    /// dnstap-receiver's line, e.g. `"timestamp identity operation rcode
    /// queryip qname qtype latency {raw text}"` (docs/outputs.md lists
    /// them) [default: unset].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Rotate a file before it grows past this many bytes; 0 = never [default: 0].
    #[serde(default)]
    pub max_size: u64,
    /// Rotated copies kept (`FILE.1` newest) [default: 5].
    #[serde(default = "default_max_files")]
    pub max_files: usize,
    /// Gzip rotated copies (`FILE.1.gz`) [default: false].
    #[serde(default)]
    pub compress: bool,
    /// Messages queued for this output; beyond, messages are dropped and
    /// counted [default: 10000].
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
}

fn default_path() -> String {
    "-".to_string()
}

fn default_max_files() -> usize {
    5
}

fn default_queue_size() -> usize {
    10_000
}

fn is_stdout(path: &str) -> bool {
    path == "-" || path == "stdout"
}

impl FileConfig {
    /// A log of `format` to `path` with the defaults.
    pub fn new(format: OutputFormat, path: &str) -> FileConfig {
        FileConfig {
            format,
            path: path.to_string(),
            template: None,
            max_size: 0,
            max_files: default_max_files(),
            compress: false,
            queue_size: default_queue_size(),
        }
    }

    /// Makes a relative file path relative to `base` (the config file's
    /// directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if !is_stdout(&self.path) && Path::new(&self.path).is_relative() {
            self.path = base.join(&self.path).display().to_string();
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.queue_size == 0 {
            return Err(format!(
                "output {}: queue_size must be at least 1",
                self.path
            ));
        }
        if let Some(template) = &self.template {
            if self.format != OutputFormat::Text {
                return Err(format!(
                    "output {}: template needs format = \"text\"",
                    self.path
                ));
            }
            Template::parse(template)
                .map_err(|e| format!("output {}: template: {e}", self.path))?;
        }
        if self.compress && self.format == OutputFormat::Dnstap && self.max_size == 0 {
            return Err(format!("output {}: compress needs max_size", self.path));
        }
        Ok(())
    }
}

//---- SIGHUP ----

/// Bumped on every SIGHUP; writers reopen their file when it changed.
pub(super) static REOPEN: AtomicU64 = AtomicU64::new(0);
static WATCHING: AtomicBool = AtomicBool::new(false);

/// Starts (once per process) the task that turns SIGHUP into a reopen of
/// every file output (logrotate's `postrotate kill -HUP`). Needs a tokio
/// runtime; without one, nothing is watched.
pub fn watch_sighup() {
    if tokio::runtime::Handle::try_current().is_err() || WATCHING.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot watch SIGHUP: file outputs will not reopen");
            return;
        };
        while hangups.recv().await.is_some() {
            REOPEN.fetch_add(1, Ordering::SeqCst);
            tracing::info!("SIGHUP: reopening file outputs");
        }
    });
}

/// Asks every file output to reopen its file (what SIGHUP does).
pub fn request_reopen() {
    REOPEN.fetch_add(1, Ordering::SeqCst);
}

//---- FileOutput ----

type Item = (DnsMessage, Option<Arc<Geo>>);

/// A running file output: a bounded queue to a writer thread.
pub struct FileOutput {
    /// `None` once finished.
    sender: Mutex<Option<SyncSender<Item>>>,
    writer: Mutex<Option<std::thread::JoinHandle<io::Result<()>>>>,
    metrics: Arc<OutputMetrics>,
    name: String,
}

impl FileOutput {
    /// Opens the file and starts the writer thread.
    pub fn start(config: &FileConfig, context: &OutputContext) -> Result<FileOutput, BuildError> {
        let open_error = |source| BuildError::Open {
            target: config.path.clone(),
            source,
        };
        let template = config
            .template
            .as_deref()
            .map(Template::parse)
            .transpose()
            .map_err(|message| BuildError::Config {
                output: context.name.clone(),
                message,
            })?;
        let sink = Sink::open(config).map_err(open_error)?;
        let (sender, receiver) = sync_channel(config.queue_size.max(1));
        let mut worker = Worker {
            sink,
            format: config.format,
            template,
            latency: LatencyTable::default(),
            geo: context.geo,
            metrics: context.metrics.clone(),
            deadline: context.deadline.clone(),
            line: Vec::with_capacity(512),
            text: String::with_capacity(512),
            failed: false,
            name: context.name.clone(),
        };
        let writer = std::thread::Builder::new()
            .name(format!("output {}", context.name))
            .spawn(move || worker.run(receiver))
            .map_err(open_error)?;
        Ok(FileOutput {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            metrics: context.metrics.clone(),
            name: context.name.clone(),
        })
    }
}

impl MessageOutput for FileOutput {
    fn offer(&self, message: &DnsMessage) {
        self.offer_enriched(message, &Enrichment::default());
    }

    fn offer_enriched(&self, message: &DnsMessage, enrichment: &Enrichment) {
        let Ok(sender) = self.sender.lock() else {
            return;
        };
        let Some(sender) = sender.as_ref() else {
            self.metrics.drop_n(DropReason::Shutdown, 1);
            return;
        };
        match sender.try_send((message.clone(), enrichment.geo.clone())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.metrics.drop_n(DropReason::QueueFull, 1),
            Err(TrySendError::Disconnected(_)) => self.metrics.drop_n(DropReason::Error, 1),
        }
    }

    fn finish(&self) -> Option<JoinHandle<()>> {
        // Dropping the sender closes the queue: the writer drains it (until
        // the deadline), flushes (and writes STOP to a dnstap file), then ends.
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let writer = self.writer.lock().ok()?.take()?;
        let name = self.name.clone();
        // Polled rather than joined on the blocking pool: a writer stuck in
        // a write (a full pipe, a hung NFS) must not hold the runtime's
        // shutdown, which waits for every blocking task.
        Some(tokio::spawn(async move {
            while !writer.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            match writer.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, output = name, "file output failed"),
                Err(_) => tracing::warn!(output = name, "file output thread panicked"),
            }
        }))
    }
}

//---- Worker ----

struct Worker {
    sink: Sink,
    format: OutputFormat,
    template: Option<Template>,
    latency: LatencyTable,
    /// `[geoip]` is on: every line shows its fields (`-` when unknown).
    geo: bool,
    metrics: Arc<OutputMetrics>,
    deadline: Deadline,
    line: Vec<u8>,
    /// Scratch for rendering text formats.
    text: String,
    /// A write error was logged (once; later ones are only counted).
    failed: bool,
    name: String,
}

impl Worker {
    fn run(&mut self, receiver: Receiver<Item>) -> io::Result<()> {
        let mut generation = REOPEN.load(Ordering::SeqCst);
        loop {
            let first = match receiver.recv_timeout(Duration::from_millis(500)) {
                Ok(item) => Some(item),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let now = REOPEN.load(Ordering::SeqCst);
            if now != generation {
                generation = now;
                if let Err(error) = self.sink.reopen() {
                    self.error("reopen", &error);
                }
            }
            let mut next = first;
            let mut written = 0u32;
            while let Some(item) = next {
                self.write(&item);
                written = written.wrapping_add(1);
                if written.is_multiple_of(1024) && self.deadline.passed() {
                    break;
                }
                next = receiver.try_recv().ok();
            }
            if let Err(error) = self.sink.flush() {
                self.error("flush", &error);
            }
            if self.deadline.passed() {
                let left = receiver.try_iter().count() as u64;
                self.metrics.drop_n(DropReason::Shutdown, left);
                if left > 0 {
                    tracing::warn!(
                        output = self.name,
                        dropped = left,
                        "flush deadline passed: dropping what is still queued"
                    );
                }
                break;
            }
        }
        self.sink.close()
    }

    fn error(&mut self, what: &str, error: &io::Error) {
        self.metrics.errors.add_shared(1);
        if !self.failed {
            tracing::warn!(output = self.name, %error, "file output {what} failed");
            self.failed = true;
        }
    }

    fn write(&mut self, (message, geo): &Item) {
        self.line.clear();
        if !self.render(message, geo.as_deref()) {
            return;
        }
        let line = std::mem::take(&mut self.line);
        match self.sink.write(&line) {
            Ok(()) => self.metrics.written.add_shared(1),
            Err(error) => {
                self.metrics.drop_n(DropReason::Error, 1);
                self.error("write", &error);
            }
        }
        self.line = line;
    }

    /// Renders into `self.line`; false when the message has nothing to show.
    fn render(&mut self, message: &DnsMessage, geo: Option<&Geo>) -> bool {
        if self.format == OutputFormat::Dnstap {
            let frame = message::dnstap_frame(message);
            let Ok(length) = u32::try_from(frame.len()) else {
                return false;
            };
            self.line.extend_from_slice(&length.to_be_bytes());
            self.line.extend_from_slice(&frame);
            return true;
        }
        let tap = message::to_dnstap(message);
        let Some(mut view) = MessageView::new(&tap, Some(&mut self.latency)) else {
            return false;
        };
        if self.geo {
            view.geo = Some(geo.cloned().unwrap_or_default());
        }
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        match (self.format, &self.template) {
            (OutputFormat::Text, Some(template)) => {
                template.render(&view, message, &mut text);
                text.push('\n');
            }
            (OutputFormat::Text, None) => {
                text.push_str(&view.to_text());
                text.push('\n');
            }
            (OutputFormat::Json, _) => {
                view.write_json(&mut text);
                text.push('\n');
            }
            (OutputFormat::Yaml, _) => text.push_str(&view.to_yaml()),
            (OutputFormat::Dnstap, _) => {}
        }
        self.line.extend_from_slice(text.as_bytes());
        self.text = text;
        !self.line.is_empty()
    }
}

//---- Sink ----

/// Stdout or a file with size rotation, gzip of rotated copies, reopen,
/// and header/trailer bytes (START/STOP for dnstap files).
pub(super) struct Sink {
    out: BufWriter<Box<dyn Write + Send>>,
    path: Option<PathBuf>,
    size: u64,
    max_size: u64,
    max_files: usize,
    compress: bool,
    header: Vec<u8>,
    trailer: Vec<u8>,
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl Sink {
    pub(super) fn open(config: &FileConfig) -> io::Result<Sink> {
        let (header, trailer) = if config.format == OutputFormat::Dnstap {
            (
                control_bytes(ControlFrame::with_content_type(
                    ControlType::Start,
                    DNSTAP_CONTENT_TYPE,
                )),
                control_bytes(ControlFrame::new(ControlType::Stop)),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut sink = Sink {
            out: BufWriter::with_capacity(64 * 1024, Box::new(io::stdout())),
            path: None,
            size: 0,
            max_size: config.max_size,
            max_files: config.max_files,
            compress: config.compress,
            header,
            trailer,
        };
        if !is_stdout(&config.path) {
            let path = PathBuf::from(&config.path);
            // A Frame Streams file cannot be appended to after its STOP:
            // start a fresh one.
            if config.format == OutputFormat::Dnstap && path.exists() {
                sink.rotate_away(&path)?;
            }
            let (file, size) = open_append(&path)?;
            sink.out = BufWriter::with_capacity(64 * 1024, Box::new(file));
            sink.size = size;
            sink.path = Some(path);
        }
        let header = sink.header.clone();
        sink.write_raw(&header)?;
        Ok(sink)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.path.is_some() && self.max_size > 0 {
            let projected = self.size + (bytes.len() + self.trailer.len()) as u64;
            if projected > self.max_size && self.size > self.header.len() as u64 {
                self.rotate()?;
            }
        }
        self.write_raw(bytes)
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Ends the current file (trailer, flush) and starts a new one at the
    /// same path, after `before` moved the old one away (or not).
    fn restart(
        &mut self,
        before: impl FnOnce(&mut Sink, &Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some(path) = self.path.clone() else {
            return self.flush();
        };
        let trailer = self.trailer.clone();
        self.write_raw(&trailer)?;
        self.out.flush()?;
        // Drop the old handle before renaming/compressing.
        self.out = BufWriter::with_capacity(64 * 1024, Box::new(io::sink()));
        before(self, &path)?;
        let (file, size) = open_append(&path)?;
        self.out = BufWriter::with_capacity(64 * 1024, Box::new(file));
        self.size = size;
        let header = self.header.clone();
        self.write_raw(&header)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.restart(|sink, path| sink.rotate_away(path))
    }

    /// After logrotate moved the file: write to a new one at the path.
    pub(super) fn reopen(&mut self) -> io::Result<()> {
        self.restart(|_, _| Ok(()))
    }

    pub(super) fn close(&mut self) -> io::Result<()> {
        let trailer = self.trailer.clone();
        self.write_raw(&trailer)?;
        self.out.flush()
    }

    fn numbered(&self, path: &Path, n: usize) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        if self.compress {
            name.push(".gz");
        }
        PathBuf::from(name)
    }

    /// `path.(n-1)` → `path.n`, …, `path` → `path.1` (gzipped to
    /// `path.1.gz` with `compress`); with `max_files == 0` the file is
    /// removed.
    fn rotate_away(&self, path: &Path) -> io::Result<()> {
        if self.max_files == 0 {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        for n in (1..self.max_files).rev() {
            let from = self.numbered(path, n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(path, n + 1))?;
            }
        }
        let first = self.numbered(path, 1);
        if self.compress {
            // Written beside, then renamed: a reader (or logrotate's
            // next step) never sees a half-written `.gz`.
            let mut partial = first.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let mut input = File::open(path)?;
            let output = File::create(&partial)?;
            let mut encoder =
                flate2::write::GzEncoder::new(BufWriter::new(output), flate2::Compression::fast());
            io::copy(&mut input, &mut encoder)?;
            encoder.finish()?.flush()?;
            std::fs::rename(&partial, &first)?;
            std::fs::remove_file(path)
        } else {
            std::fs::rename(path, first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sink(path: &Path, max_size: u64, max_files: usize, compress: bool) -> Sink {
        let mut config = FileConfig::new(OutputFormat::Text, &path.display().to_string());
        config.max_size = max_size;
        config.max_files = max_files;
        config.compress = compress;
        Sink::open(&config).unwrap()
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let mut sink = sink(&path, 10, 2, false);
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            sink.write(line.as_bytes()).unwrap();
        }
        sink.close().unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("log.txt"), "dddddd\n");
        assert_eq!(read("log.txt.1"), "cccccc\n");
        assert_eq!(read("log.txt.2"), "bbbbbb\n");
        assert!(!dir.path().join("log.txt.3").exists());
    }

    #[test]
    fn rotated_copies_are_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let mut sink = sink(&path, 10, 3, true);
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n"] {
            sink.write(line.as_bytes()).unwrap();
        }
        sink.close().unwrap();
        let gunzip = |name: &str| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(File::open(dir.path().join(name)).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cccccc\n");
        assert_eq!(gunzip("log.txt.1.gz"), "bbbbbb\n");
        assert_eq!(gunzip("log.txt.2.gz"), "aaaaaa\n");
        assert!(!dir.path().join("log.txt.1").exists());
    }

    #[test]
    fn reopen_follows_a_moved_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.txt");
        let mut sink = sink(&path, 0, 5, false);
        sink.write(b"before\n").unwrap();
        sink.flush().unwrap();
        std::fs::rename(&path, dir.path().join("moved.txt")).unwrap();
        sink.write(b"still old\n").unwrap();
        sink.reopen().unwrap();
        sink.write(b"after\n").unwrap();
        sink.close().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("moved.txt")).unwrap(),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
    }

    #[test]
    fn path_and_its_old_name() {
        let new: FileConfig = toml::from_str("format = \"json\"\npath = \"a.json\"").unwrap();
        let old: FileConfig = toml::from_str("format = \"json\"\ntarget = \"a.json\"").unwrap();
        assert_eq!(new, old);
        let stdout: FileConfig = toml::from_str("format = \"text\"").unwrap();
        assert_eq!(stdout.path, "-");
        let mut bad = new.clone();
        bad.template = Some("qname".into());
        assert!(bad.validate().is_err(), "template needs text");
    }
}

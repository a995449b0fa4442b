//! Filters: allow and deny lists on names, types, sensors and addresses.
//!
//! A [`FilterSet`] is immutable and built off the hot path, from list files
//! named by a [`FilterConfig`]. The pipeline reads the current set through a
//! [`FilterHandle`] (an `ArcSwap`), once per response, and the
//! [`FilterReloader`] swaps in a new set when asked to (SIGHUP) or when it
//! sees a list file change. A list that fails to parse leaves the previous
//! set in place; the error names the file and line.
//!
//! # List format
//!
//! One entry per line; blank lines and lines starting with `#` are ignored.
//!
//! | line                    | matches                                              |
//! |-------------------------|------------------------------------------------------|
//! | `exact:www.example.com` | the record name `www.example.com.`                   |
//! | `subdomain:example.org` | `example.org.` and every name below it               |
//! | `example.org`           | same as `subdomain:example.org`                      |
//! | `regex:^ads?\.`         | record names whose lower-case presentation form with trailing dot matches |
//! | `qname:exact:…`, `qname:subdomain:…`, `qname:regex:…`, `qname:<name>` | the same, on the query name of the response |
//! | `type:TXT`              | the record type (mnemonic, `TYPEnnn` or number)      |
//! | `sensor:s1`             | the sensor identity                                  |
//! | `client:10.0.0.0/8`     | the client address (a bare address is a /32 or /128) |
//! | `server:192.0.2.0/24`   | the server address                                   |
//!
//! # Verdict
//!
//! Deny wins: an entry is dropped if any deny rule matches, with the first
//! matching reason in the order name, qname, type, sensor, client, server.
//! Otherwise, each kind of allow rule that is non-empty must match (an empty
//! allow list allows everything); a value the source does not know (no
//! qname, no client address) does not match a non-empty allow list, so
//! allow lists fail closed.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use dnsrecall_core::name::write_presentation;
use dnsrecall_core::{Name, Record, Rtype};
use ipnet::IpNet;
use regex::RegexSet;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hash::FastSet;
use crate::meta::ResponseMeta;
use crate::metrics::{Counter, MetricSample};

//---- FilterConfig ----

/// Where the filter lists live and how often to look for changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Allow-list files. Default: none (everything allowed).
    #[serde(default)]
    pub allow: Vec<PathBuf>,
    /// Deny-list files. Default: none.
    #[serde(default)]
    pub deny: Vec<PathBuf>,
    /// How often the watcher checks the files' modification time and size,
    /// in milliseconds. `0` disables watching (reload on demand only).
    /// Default: 5000.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
}

fn default_poll_interval_ms() -> u64 {
    5000
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            allow: Vec::new(),
            deny: Vec::new(),
            poll_interval_ms: default_poll_interval_ms(),
        }
    }
}

//---- DropReason ----

/// Why the filter dropped an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A deny rule matched the record name.
    DeniedName,
    /// A deny rule matched the query name.
    DeniedQname,
    /// A deny rule matched the record type.
    DeniedType,
    /// A deny rule matched the sensor.
    DeniedSensor,
    /// A deny rule matched the client address.
    DeniedClient,
    /// A deny rule matched the server address.
    DeniedServer,
    /// An allow list is non-empty and did not match.
    NotAllowed,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 7] = [
        DropReason::DeniedName,
        DropReason::DeniedQname,
        DropReason::DeniedType,
        DropReason::DeniedSensor,
        DropReason::DeniedClient,
        DropReason::DeniedServer,
        DropReason::NotAllowed,
    ];

    /// A short stable label (`denied_name`, ..., `not_allowed`).
    pub fn label(self) -> &'static str {
        match self {
            DropReason::DeniedName => "denied_name",
            DropReason::DeniedQname => "denied_qname",
            DropReason::DeniedType => "denied_type",
            DropReason::DeniedSensor => "denied_sensor",
            DropReason::DeniedClient => "denied_client",
            DropReason::DeniedServer => "denied_server",
            DropReason::NotAllowed => "not_allowed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

//---- NameRules ----

/// Exact, subdomain and regex rules on one kind of name.
#[derive(Debug, Default)]
struct NameRules {
    /// Wire names matched exactly.
    exact: FastSet<Box<[u8]>>,
    /// Wire names matched with everything below them.
    subdomain: FastSet<Box<[u8]>>,
    /// Patterns as written, compiled into `regex` at build time.
    patterns: Vec<String>,
    regex: Option<RegexSet>,
}

impl NameRules {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.subdomain.is_empty() && self.patterns.is_empty()
    }

    /// Whether `wire` (a canonical wire name) matches. `scratch` holds the
    /// presentation form for regexes, reused between calls.
    fn matches(&self, wire: &[u8], scratch: &mut String) -> bool {
        if !self.exact.is_empty() && self.exact.contains(wire) {
            return true;
        }
        if !self.subdomain.is_empty() {
            // Every ancestor-or-self of a wire name is a suffix starting at
            // a label boundary: one probe per label, no allocation.
            let mut pos = 0;
            while let Some(suffix) = wire.get(pos..) {
                if self.subdomain.contains(suffix) {
                    return true;
                }
                match suffix.first() {
                    Some(&len) if len != 0 => pos += usize::from(len) + 1,
                    _ => break,
                }
            }
        }
        if let Some(regex) = &self.regex {
            scratch.clear();
            write_presentation(wire, scratch, true);
            return regex.is_match(scratch);
        }
        false
    }

    fn compile(&mut self) -> Result<(), regex::Error> {
        if !self.patterns.is_empty() {
            self.regex = Some(RegexSet::new(&self.patterns)?);
        }
        Ok(())
    }
}

//---- Rules ----

/// One side (allow or deny) of a filter set.
#[derive(Debug, Default)]
struct Rules {
    names: NameRules,
    qnames: NameRules,
    types: FastSet<u16>,
    sensors: FastSet<Box<str>>,
    clients: Vec<IpNet>,
    servers: Vec<IpNet>,
}

impl Rules {
    fn len(&self) -> usize {
        let names = |n: &NameRules| n.exact.len() + n.subdomain.len() + n.patterns.len();
        names(&self.names)
            + names(&self.qnames)
            + self.types.len()
            + self.sensors.len()
            + self.clients.len()
            + self.servers.len()
    }

    /// Parses one list file's text into `self`. `origin` names it in errors.
    fn parse_text(&mut self, origin: &Path, text: &str) -> Result<(), Error> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.parse_line(line).map_err(|reason| Error::Parse {
                path: origin.to_path_buf(),
                line: index + 1,
                reason,
            })?;
        }
        Ok(())
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        if let Some(rest) = line.strip_prefix("qname:") {
            return parse_name_rule(&mut self.qnames, rest.trim());
        }
        if let Some(rest) = line.strip_prefix("type:") {
            let rtype: Rtype = rest
                .trim()
                .parse()
                .map_err(|_| format!("unknown record type {:?}", rest.trim()))?;
            self.types.insert(rtype.0);
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("sensor:") {
            let sensor = rest.trim();
            if sensor.is_empty() {
                return Err("empty sensor identity".to_string());
            }
            self.sensors.insert(sensor.into());
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("client:") {
            self.clients.push(parse_prefix(rest.trim())?);
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("server:") {
            self.servers.push(parse_prefix(rest.trim())?);
            return Ok(());
        }
        parse_name_rule(&mut self.names, line)
    }

    fn compile(&mut self) -> Result<(), regex::Error> {
        self.names.compile()?;
        self.qnames.compile()
    }
}

fn parse_name_rule(rules: &mut NameRules, text: &str) -> Result<(), String> {
    if let Some(pattern) = text.strip_prefix("regex:") {
        // Checked alone so the error points at this line; the set is
        // compiled once all lines are read.
        regex::Regex::new(pattern).map_err(|e| format!("bad regex {pattern:?}: {e}"))?;
        rules.patterns.push(pattern.to_string());
        return Ok(());
    }
    let (set, name) = if let Some(name) = text.strip_prefix("exact:") {
        (&mut rules.exact, name)
    } else if let Some(name) = text.strip_prefix("subdomain:") {
        (&mut rules.subdomain, name)
    } else if text.contains(':') {
        let kind = text.split(':').next().unwrap_or_default();
        return Err(format!("unknown rule kind {kind:?}"));
    } else {
        (&mut rules.subdomain, text)
    };
    let name = name.trim();
    let parsed = Name::from_presentation(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
    set.insert(parsed.as_wire().into());
    Ok(())
}

fn parse_prefix(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("bad address prefix {text:?}"))
}

fn any_prefix(prefixes: &[IpNet], address: IpAddr) -> bool {
    prefixes.iter().any(|net| net.contains(&address))
}

//---- FilterSet ----

/// An immutable, compiled set of allow and deny rules.
#[derive(Debug, Default)]
pub struct FilterSet {
    allow: Rules,
    deny: Rules,
}

/// The part of a verdict that depends only on the response: computed once
/// per response, then combined with each record.
#[derive(Clone, Copy, Debug)]
pub struct ResponseVerdict {
    /// First deny reason among qname, sensor, client, server.
    deny: Option<DropReason>,
    /// Whether every non-empty response-level allow list matched.
    allowed: bool,
}

impl FilterSet {
    /// A set with no rules: everything passes.
    pub fn empty() -> FilterSet {
        FilterSet::default()
    }

    /// Reads and compiles the allow and deny list files.
    pub fn from_files(allow: &[PathBuf], deny: &[PathBuf]) -> Result<FilterSet, Error> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })
        };
        let allow_texts = allow
            .iter()
            .map(|p| Ok((p.clone(), read(p)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let deny_texts = deny
            .iter()
            .map(|p| Ok((p.clone(), read(p)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        FilterSet::from_texts(&allow_texts, &deny_texts)
    }

    /// Compiles allow and deny lists given as `(origin, text)` pairs; the
    /// origin names the list in errors.
    pub fn from_texts(
        allow: &[(PathBuf, String)],
        deny: &[(PathBuf, String)],
    ) -> Result<FilterSet, Error> {
        let mut set = FilterSet::default();
        for (origin, text) in allow {
            set.allow.parse_text(origin, text)?;
        }
        for (origin, text) in deny {
            set.deny.parse_text(origin, text)?;
        }
        // Each pattern compiled alone when read, so a set failure can only
        // be a size limit; it is reported against the first file.
        let origin = allow
            .first()
            .or(deny.first())
            .map(|(p, _)| p.clone())
            .unwrap_or_default();
        for rules in [&mut set.allow, &mut set.deny] {
            rules.compile().map_err(|e| Error::Parse {
                path: origin.clone(),
                line: 0,
                reason: e.to_string(),
            })?;
        }
        Ok(set)
    }

    /// Number of allow and deny rules.
    pub fn rule_counts(&self) -> (usize, usize) {
        (self.allow.len(), self.deny.len())
    }

    /// Whether the set has no rules at all (the hot path can skip it).
    pub fn is_empty(&self) -> bool {
        self.allow.len() == 0 && self.deny.len() == 0
    }

    /// The response-level part of the verdict: query name, sensor, client
    /// and server.
    pub fn check_response(&self, meta: &ResponseMeta, scratch: &mut String) -> ResponseVerdict {
        self.check_context(
            meta.qname.as_ref(),
            meta.sensor_id.as_deref(),
            meta.client,
            meta.server,
            scratch,
        )
    }

    /// The response-level verdict from its parts (importers know only the
    /// sensor).
    pub fn check_context(
        &self,
        qname: Option<&Name>,
        sensor: Option<&str>,
        client: Option<IpAddr>,
        server: Option<IpAddr>,
        scratch: &mut String,
    ) -> ResponseVerdict {
        let deny = &self.deny;
        let denied = if qname
            .is_some_and(|q| !deny.qnames.is_empty() && deny.qnames.matches(q.as_wire(), scratch))
        {
            Some(DropReason::DeniedQname)
        } else if sensor.is_some_and(|s| deny.sensors.contains(s)) {
            Some(DropReason::DeniedSensor)
        } else if client.is_some_and(|c| any_prefix(&deny.clients, c)) {
            Some(DropReason::DeniedClient)
        } else if server.is_some_and(|s| any_prefix(&deny.servers, s)) {
            Some(DropReason::DeniedServer)
        } else {
            None
        };
        let allow = &self.allow;
        let allowed = (allow.qnames.is_empty()
            || qname.is_some_and(|q| allow.qnames.matches(q.as_wire(), scratch)))
            && (allow.sensors.is_empty() || sensor.is_some_and(|s| allow.sensors.contains(s)))
            && (allow.clients.is_empty() || client.is_some_and(|c| any_prefix(&allow.clients, c)))
            && (allow.servers.is_empty() || server.is_some_and(|s| any_prefix(&allow.servers, s)));
        ResponseVerdict {
            deny: denied,
            allowed,
        }
    }

    /// The verdict for one record of a response: `None` to keep it.
    #[inline]
    pub fn check_record(
        &self,
        record: &Record,
        response: ResponseVerdict,
        scratch: &mut String,
    ) -> Option<DropReason> {
        let deny = &self.deny;
        if !deny.names.is_empty() && deny.names.matches(record.rrname.as_wire(), scratch) {
            return Some(DropReason::DeniedName);
        }
        if response.deny == Some(DropReason::DeniedQname) {
            return Some(DropReason::DeniedQname);
        }
        if !deny.types.is_empty() && deny.types.contains(&record.rrtype.0) {
            return Some(DropReason::DeniedType);
        }
        if let Some(reason) = response.deny {
            return Some(reason);
        }
        let allow = &self.allow;
        if !response.allowed
            || (!allow.names.is_empty() && !allow.names.matches(record.rrname.as_wire(), scratch))
            || (!allow.types.is_empty() && !allow.types.contains(&record.rrtype.0))
        {
            return Some(DropReason::NotAllowed);
        }
        None
    }
}

//---- FilterMetrics ----

/// Counters of the filter stage.
#[derive(Debug, Default)]
pub struct FilterMetrics {
    /// Entries checked.
    pub input: Counter,
    /// Entries passed on.
    pub output: Counter,
    /// Entries dropped, by [`DropReason`] index.
    pub dropped: [Counter; 7],
    /// Successful reloads that swapped in a new set.
    pub reloads: Counter,
    /// Reloads that failed and kept the previous set.
    pub reload_failures: Counter,
}

impl FilterMetrics {
    /// Counts one batch: `dropped[i]` by [`DropReason`] index.
    pub(crate) fn record_batch(&self, input: u64, output: u64, dropped: &[u64; 7]) {
        self.input.add(input);
        self.output.add(output);
        for (counter, &n) in self.dropped.iter().zip(dropped) {
            if n != 0 {
                counter.add(n);
            }
        }
    }

    /// Dropped count for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].get()
    }

    /// Name, help and value of every counter.
    pub fn snapshot(&self) -> Vec<MetricSample> {
        const DROPPED: [(&str, &str); 7] = [
            (
                "dnsrecall_pipeline_filter_dropped_denied_name_total",
                "Entries dropped by a deny rule on the record name.",
            ),
            (
                "dnsrecall_pipeline_filter_dropped_denied_qname_total",
                "Entries dropped by a deny rule on the query name.",
            ),
            (
                "dnsrecall_pipeline_filter_dropped_denied_type_total",
                "Entries dropped by a deny rule on the record type.",
            ),
            (
                "dnsrecall_pipeline_filter_dropped_denied_sensor_total",
                "Entries dropped by a deny rule on the sensor.",
            ),
            (
                "dnsrecall_pipeline_filter_dropped_denied_client_total",
                "Entries dropped by a deny rule on the client address.",
            ),
            (
                "dnsrecall_pipeline_filter_dropped_denied_server_total",
                "Entries dropped by a deny rule on the server address.",
            ),
            (
                "dnsrecall_pipeline_filter_dropped_not_allowed_total",
                "Entries dropped because a non-empty allow list did not match.",
            ),
        ];
        let mut out = vec![
            (
                "dnsrecall_pipeline_filter_in_total",
                "Entries checked by the filter.",
                self.input.get(),
            ),
            (
                "dnsrecall_pipeline_filter_out_total",
                "Entries passed by the filter.",
                self.output.get(),
            ),
        ];
        out.extend(
            DROPPED
                .iter()
                .zip(&self.dropped)
                .map(|(&(name, help), c)| (name, help, c.get())),
        );
        out.push((
            "dnsrecall_pipeline_filter_reloads_total",
            "Filter reloads that swapped in a new set.",
            self.reloads.get(),
        ));
        out.push((
            "dnsrecall_pipeline_filter_reload_failures_total",
            "Filter reloads that failed and kept the previous set.",
            self.reload_failures.get(),
        ));
        out
    }
}

//---- FilterReloader ----

/// The current filter set, shared between the pipeline and the reloader.
pub type FilterHandle = Arc<ArcSwap<FilterSet>>;

/// Modification time and size of a list file (`None` when unreadable).
type Stamp = Option<(SystemTime, u64)>;

struct ReloadShared {
    config: FilterConfig,
    current: FilterHandle,
    stamps: Mutex<Vec<Stamp>>,
    metrics: Arc<FilterMetrics>,
}

impl ReloadShared {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.config.allow.iter().chain(&self.config.deny)
    }

    fn current_stamps(&self) -> Vec<Stamp> {
        self.paths()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    }

    /// Rebuilds and swaps the set. On failure the previous set stays.
    fn reload(&self) -> Result<(), Error> {
        let stamps = self.current_stamps();
        // Remember what we tried, good or bad, so a broken file is reported
        // once per change rather than at every poll.
        if let Ok(mut guard) = self.stamps.lock() {
            *guard = stamps;
        }
        match FilterSet::from_files(&self.config.allow, &self.config.deny) {
            Ok(set) => {
                let (allow, deny) = set.rule_counts();
                self.current.store(Arc::new(set));
                self.metrics.reloads.add_shared(1);
                tracing::info!(
                    allow_rules = allow,
                    deny_rules = deny,
                    "filter lists reloaded"
                );
                Ok(())
            }
            Err(error) => {
                self.metrics.reload_failures.add_shared(1);
                tracing::error!(%error, "filter lists not reloaded; keeping the previous set");
                Err(error)
            }
        }
    }

    fn changed(&self) -> bool {
        let now = self.current_stamps();
        self.stamps.lock().map(|old| *old != now).unwrap_or(true)
    }
}

struct Watcher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// Loads the filter lists, reloads them on demand and, once started,
/// watches them for changes on a background thread.
pub struct FilterReloader {
    shared: Arc<ReloadShared>,
    watcher: Option<Watcher>,
}

impl FilterReloader {
    /// Loads the lists named by `config`; fails if they do not load.
    pub fn new(config: FilterConfig) -> Result<FilterReloader, Error> {
        Self::with_metrics(config, Arc::new(FilterMetrics::default()))
    }

    /// Like [`FilterReloader::new`], counting reloads in `metrics` (the
    /// filter stage's counters, see [`crate::Pipeline::with_filter_metrics`]).
    pub fn with_metrics(
        config: FilterConfig,
        metrics: Arc<FilterMetrics>,
    ) -> Result<FilterReloader, Error> {
        let set = FilterSet::from_files(&config.allow, &config.deny)?;
        let shared = ReloadShared {
            stamps: Mutex::new(Vec::new()),
            current: Arc::new(ArcSwap::from_pointee(set)),
            config,
            metrics,
        };
        let stamps = shared.current_stamps();
        if let Ok(mut guard) = shared.stamps.lock() {
            *guard = stamps;
        }
        Ok(FilterReloader {
            shared: Arc::new(shared),
            watcher: None,
        })
    }

    /// The handle the pipeline reads the current set through.
    pub fn handle(&self) -> FilterHandle {
        Arc::clone(&self.shared.current)
    }

    /// The counters reloads are counted in.
    pub fn metrics(&self) -> Arc<FilterMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Rebuilds the set from the files now (the binary calls this on
    /// SIGHUP). On error the previous set stays in place.
    pub fn reload(&self) -> Result<(), Error> {
        self.shared.reload()
    }

    /// Reloads if any file's modification time or size changed since the
    /// last attempt. Returns whether a reload was attempted.
    pub fn reload_if_changed(&self) -> Result<bool, Error> {
        if self.shared.changed() {
            self.shared.reload()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Starts the polling thread (no-op when `poll_interval_ms` is 0 or it
    /// already runs).
    pub fn start_watching(&mut self) -> Result<(), Error> {
        if self.watcher.is_some() || self.shared.config.poll_interval_ms == 0 {
            return Ok(());
        }
        let interval = Duration::from_millis(self.shared.config.poll_interval_ms);
        let shared = Arc::clone(&self.shared);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("filter-watch".to_string())
            .spawn(move || {
                // A message or a closed channel both mean stop.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if shared.changed() {
                        // Errors are logged and counted inside.
                        let _ = shared.reload();
                    }
                }
            })
            .map_err(Error::Thread)?;
        self.watcher = Some(Watcher { stop, thread });
        Ok(())
    }

    /// Stops the polling thread and waits for it.
    pub fn stop_watching(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.stop.send(());
            if watcher.thread.join().is_err() {
                tracing::error!("filter watcher thread panicked");
            }
        }
    }
}

impl Drop for FilterReloader {
    fn drop(&mut self) {
        self.stop_watching();
    }
}

impl std::fmt::Debug for FilterReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut paths = String::new();
        for path in self.shared.paths() {
            let _ = write!(paths, "{} ", path.display());
        }
        f.debug_struct("FilterReloader")
            .field("files", &paths)
            .field("watching", &self.watcher.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_core::{Rdata, Rtype};

    fn set(allow: &str, deny: &str) -> FilterSet {
        FilterSet::from_texts(
            &[("allow".into(), allow.to_string())],
            &[("deny".into(), deny.to_string())],
        )
        .unwrap()
    }

    fn record(name: &str, rtype: Rtype) -> Record {
        Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: None,
            rdata: Rdata::Wire(Box::new([192, 0, 2, 1])),
        }
    }

    fn verdict(
        set: &FilterSet,
        name: &str,
        rtype: Rtype,
        meta: &ResponseMeta,
    ) -> Option<DropReason> {
        let mut scratch = String::new();
        let response = set.check_response(meta, &mut scratch);
        set.check_record(&record(name, rtype), response, &mut scratch)
    }

    fn name_verdict(set: &FilterSet, name: &str) -> Option<DropReason> {
        verdict(set, name, Rtype::A, &ResponseMeta::default())
    }

    #[test]
    fn exact_matches_only_the_name() {
        let set = set("", "exact:www.Example.com");
        assert_eq!(
            name_verdict(&set, "www.example.com."),
            Some(DropReason::DeniedName)
        );
        assert_eq!(name_verdict(&set, "a.www.example.com"), None);
        assert_eq!(name_verdict(&set, "example.com"), None);
    }

    #[test]
    fn subdomain_matches_name_and_below_on_label_boundaries() {
        for line in ["subdomain:example.org", "example.org.", "  example.org  "] {
            let set = set("", line);
            assert_eq!(
                name_verdict(&set, "example.org"),
                Some(DropReason::DeniedName),
                "{line}"
            );
            assert_eq!(
                name_verdict(&set, "a.b.example.org"),
                Some(DropReason::DeniedName),
                "{line}"
            );
            assert_eq!(name_verdict(&set, "badexample.org"), None, "{line}");
            assert_eq!(name_verdict(&set, "org"), None, "{line}");
        }
        let root = set("", "subdomain:.");
        assert_eq!(
            name_verdict(&root, "anything.test"),
            Some(DropReason::DeniedName)
        );
    }

    #[test]
    fn regex_sees_lowercase_presentation_with_trailing_dot() {
        let set = set("", "# ads\nregex:^ads?\\.\nregex:\\.example\\.$");
        assert_eq!(
            name_verdict(&set, "AD.tracker.test"),
            Some(DropReason::DeniedName)
        );
        assert_eq!(
            name_verdict(&set, "ads.tracker.test"),
            Some(DropReason::DeniedName)
        );
        assert_eq!(
            name_verdict(&set, "www.example"),
            Some(DropReason::DeniedName)
        );
        assert_eq!(name_verdict(&set, "bads.tracker.test"), None);
        assert_eq!(name_verdict(&set, "www.example.com"), None);
    }

    #[test]
    fn types_sensors_and_prefixes() {
        let set = set(
            "",
            "type:TXT\ntype:TYPE65280\nsensor:s1\nclient:10.0.0.0/8\nserver:192.0.2.0/24\nserver:2001:db8::1",
        );
        let meta = ResponseMeta::default();
        assert_eq!(
            verdict(&set, "a.test", Rtype::TXT, &meta),
            Some(DropReason::DeniedType)
        );
        assert_eq!(
            verdict(&set, "a.test", Rtype(65280), &meta),
            Some(DropReason::DeniedType)
        );
        assert_eq!(verdict(&set, "a.test", Rtype::A, &meta), None);
        let sensor = ResponseMeta {
            sensor_id: Some("s1".into()),
            ..Default::default()
        };
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &sensor),
            Some(DropReason::DeniedSensor)
        );
        let client = ResponseMeta {
            client: Some("10.1.2.3".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &client),
            Some(DropReason::DeniedClient)
        );
        let server = ResponseMeta {
            server: Some("192.0.2.53".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &server),
            Some(DropReason::DeniedServer)
        );
        let server6 = ResponseMeta {
            server: Some("2001:db8::1".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &server6),
            Some(DropReason::DeniedServer)
        );
        let other = ResponseMeta {
            server: Some("198.51.100.1".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(verdict(&set, "a.test", Rtype::A, &other), None);
    }

    #[test]
    fn qname_rules_apply_to_the_question() {
        let set = set("", "qname:exact:q.test\nqname:evil.test\nqname:regex:^x");
        let meta = |q: &str| ResponseMeta {
            qname: Some(Name::from_presentation(q).unwrap()),
            ..Default::default()
        };
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &meta("q.test")),
            Some(DropReason::DeniedQname)
        );
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &meta("www.evil.test")),
            Some(DropReason::DeniedQname)
        );
        assert_eq!(
            verdict(&set, "a.test", Rtype::A, &meta("xyz.test")),
            Some(DropReason::DeniedQname)
        );
        assert_eq!(verdict(&set, "a.test", Rtype::A, &meta("a.q.test")), None);
        // A qname rule does not look at record names.
        assert_eq!(verdict(&set, "q.test", Rtype::A, &meta("other.test")), None);
    }

    #[test]
    fn deny_wins_and_allow_lists_restrict_per_kind() {
        let set = set("example.org\ntype:A\nsensor:s1", "exact:bad.example.org");
        let s1 = ResponseMeta {
            sensor_id: Some("s1".into()),
            ..Default::default()
        };
        let s2 = ResponseMeta {
            sensor_id: Some("s2".into()),
            ..Default::default()
        };
        assert_eq!(verdict(&set, "www.example.org", Rtype::A, &s1), None);
        assert_eq!(
            verdict(&set, "bad.example.org", Rtype::A, &s1),
            Some(DropReason::DeniedName)
        );
        assert_eq!(
            verdict(&set, "www.example.com", Rtype::A, &s1),
            Some(DropReason::NotAllowed)
        );
        assert_eq!(
            verdict(&set, "www.example.org", Rtype::TXT, &s1),
            Some(DropReason::NotAllowed)
        );
        assert_eq!(
            verdict(&set, "www.example.org", Rtype::A, &s2),
            Some(DropReason::NotAllowed)
        );
        // Unknown sensor with a sensor allow list: fail closed.
        assert_eq!(
            verdict(&set, "www.example.org", Rtype::A, &ResponseMeta::default()),
            Some(DropReason::NotAllowed)
        );
        assert!(FilterSet::empty().is_empty());
        assert_eq!(name_verdict(&FilterSet::empty(), "x.test"), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            ("example.org\nregex:(unclosed\n", 2),
            ("\n\n# c\ntype:NOPE\n", 4),
            ("client:10.0.0.0/33", 1),
            ("foo:bar", 1),
            ("exact:a..b", 1),
        ];
        for (text, line) in cases {
            let error = FilterSet::from_texts(&[], &[("lists/deny.txt".into(), text.to_string())])
                .unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("lists/deny.txt:{line}: ")),
                "{message}"
            );
            assert!(matches!(error, Error::Parse { line: l, .. } if l == line));
        }
    }
}

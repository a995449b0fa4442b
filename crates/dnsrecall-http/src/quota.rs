//! Quotas: lookups per UTC day and burst windows, per identity (a DNSDB
//! key digest from `api.dnsdb_keys_file`, a user of `api.users_file`), in
//! one [`QuotaLedger`] shared by every route.
//!
//! # Persistence
//!
//! The daily counters are what a restart must not reset: a client with a
//! quota of 1,000 lookups a day would otherwise get another 1,000 each
//! time `serve` restarts. They are saved to a small JSON state file
//! (`api.quota_state_file`, by default `<data_dir>/api-quotas.json`):
//!
//! * written every `api.quota_state_interval_secs` when a counter changed,
//!   and once more at shutdown ([`QuotaLedger::run_saver`]);
//! * atomically: a temporary file beside it, flushed to disk, then renamed
//!   over the old one, so a crash leaves the old or the new state, never
//!   half of one;
//! * bounded: only today's counters are written (yesterday's are zero by
//!   definition), at most [`MAX_TRACKED`] identities are tracked, and a
//!   state file over [`MAX_STATE_BYTES`] is not read;
//! * a file that is missing starts every counter at zero; one that cannot
//!   be read or parsed is logged as a warning, counted
//!   (`dnsrecall_http_quota_state_load_failures_total`) and likewise
//!   starts from zero: a lost counter gives a client more lookups, a
//!   refused start would take the service away from everyone.
//!
//! A kill -9 loses at most the counts of the last interval.
//!
//! Burst windows (`burst=N/SECONDS`) and the token buckets of
//! `[api.rate_limits]` ([`crate::guard`]) are short and stay in memory: a
//! restart takes longer than most windows and refills them anyway.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most identities whose counters are kept; more configured keys and users
/// than this are not charged (and counted as untracked). Far above any
/// keys file a person maintains; it bounds memory and the state file.
pub const MAX_TRACKED: usize = 1_000_000;

/// Largest state file read at start-up (bytes); a larger one is treated as
/// corrupt. [`MAX_TRACKED`] identities of ~100 bytes each fit.
pub const MAX_STATE_BYTES: u64 = 128 << 20;

/// The state file's format marker, checked when it is read.
const FORMAT: &str = "dnsrecall-quotas/1";

//---- Limits -------------------------------------------------------------------

/// One identity's quotas, from the keys or users file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Lookups (requests) per UTC day.
    pub quota: Option<u64>,
    /// `(requests, window seconds)`.
    pub burst: Option<(u64, u64)>,
}

impl Limits {
    /// Whether there is anything to count.
    pub fn is_limited(&self) -> bool {
        self.quota.is_some() || self.burst.is_some()
    }

    /// Reads one `quota=N` or `burst=N/SECONDS` field into `self`; `Ok(false)`
    /// when `field` is neither (the caller decides whether that is an error).
    pub fn parse_field(&mut self, field: &str) -> Result<bool, String> {
        if let Some(n) = field.strip_prefix("quota=") {
            self.quota = Some(n.parse().map_err(|_| "bad quota".to_string())?);
        } else if let Some(burst) = field.strip_prefix("burst=") {
            let (size, window) = burst
                .split_once('/')
                .ok_or_else(|| "burst must be N/SECONDS".to_string())?;
            let size = size.parse().map_err(|_| "bad burst size".to_string())?;
            let window: u64 = window.parse().map_err(|_| "bad burst window".to_string())?;
            if window == 0 {
                return Err("burst window must be at least 1 second".into());
            }
            self.burst = Some((size, window));
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Which quota a request went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    /// `quota=N` lookups today are used up; resets at the next UTC midnight.
    #[error("daily quota exceeded")]
    Daily,
    /// `burst=N/SECONDS`: N lookups in the last window.
    #[error("burst quota exceeded")]
    Burst,
}

/// Why the state file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum QuotaStateError {
    /// Creating, writing, syncing or renaming a file failed.
    #[error("cannot write quota state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

//---- QuotaLedger ----------------------------------------------------------------

/// The state file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    /// UTC day (days since the epoch) the counters belong to.
    day: u64,
    /// Lookups made today, by identity.
    used: HashMap<String, u64>,
}

#[derive(Debug, Default)]
struct Counters {
    day: u64,
    used: HashMap<String, u64>,
    /// Times of the lookups in each identity's current burst window.
    recent: HashMap<String, VecDeque<u64>>,
    /// Whether `used` changed since the last save.
    dirty: bool,
}

/// Counters of the ledger itself, for `/metrics`.
#[derive(Debug, Default)]
struct LedgerMetrics {
    load_failures: AtomicU64,
    save_failures: AtomicU64,
    saves: AtomicU64,
    untracked: AtomicU64,
    exceeded: AtomicU64,
}

/// Daily counters and burst windows of every identity with a quota, saved
/// to the state file when one is given (see the module documentation).
#[derive(Debug, Default)]
pub struct QuotaLedger {
    path: Option<PathBuf>,
    counters: Mutex<Counters>,
    metrics: LedgerMetrics,
}

impl QuotaLedger {
    /// A ledger that is never saved (tests, and `serve` without a state
    /// file).
    pub fn in_memory() -> QuotaLedger {
        QuotaLedger::default()
    }

    /// A ledger saved to `path`, starting from what it holds for today.
    /// Never fails: a missing file starts from zero, an unreadable or
    /// corrupt one too, with a warning and a count.
    pub fn open(path: PathBuf, now: u64) -> QuotaLedger {
        let ledger = QuotaLedger {
            path: Some(path.clone()),
            ..QuotaLedger::default()
        };
        let today = now / 86_400;
        let mut counters = Counters {
            day: today,
            ..Counters::default()
        };
        match read_state(&path) {
            Ok(None) => {
                tracing::info!(file = %path.display(), "no quota state yet; quotas start from zero")
            }
            Ok(Some(state)) if state.day == today => {
                tracing::info!(file = %path.display(), identities = state.used.len(), "quota state loaded");
                counters.used = state.used;
                counters.used.retain(|_, used| *used > 0);
            }
            Ok(Some(_)) => {
                tracing::info!(file = %path.display(), "quota state is from an earlier day; quotas start from zero")
            }
            Err(error) => {
                ledger.metrics.load_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(file = %path.display(), %error, "quota state not loaded; quotas start from zero");
            }
        }
        if counters.used.len() > MAX_TRACKED {
            tracing::warn!(file = %path.display(), identities = counters.used.len(), "quota state holds too many identities; quotas start from zero");
            ledger.metrics.load_failures.fetch_add(1, Ordering::Relaxed);
            counters.used.clear();
        }
        if let Ok(mut slot) = ledger.counters.lock() {
            *slot = counters;
        }
        ledger
    }

    /// Where the ledger is saved, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A poisoned lock only means a request panicked mid-update: the
        // counters are still counters.
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lookups `identity` made today (`now`: epoch seconds).
    pub fn used_today(&self, identity: &str, now: u64) -> u64 {
        let counters = self.lock();
        if counters.day != now / 86_400 {
            return 0;
        }
        counters.used.get(identity).copied().unwrap_or(0)
    }

    /// Counts one lookup by `identity` against `limits`, or says which
    /// quota it is over (then nothing is counted).
    pub fn charge(&self, identity: &str, limits: Limits, now: u64) -> Result<(), QuotaExceeded> {
        if !limits.is_limited() {
            return Ok(());
        }
        let mut counters = self.lock();
        let today = now / 86_400;
        if counters.day != today {
            counters.day = today;
            counters.used.clear();
            counters.dirty = true;
        }
        let tracked =
            counters.used.contains_key(identity) || counters.recent.contains_key(identity);
        if !tracked && counters.used.len().max(counters.recent.len()) >= MAX_TRACKED {
            self.metrics.untracked.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if let Some(quota) = limits.quota
            && counters.used.get(identity).copied().unwrap_or(0) >= quota
        {
            self.metrics.exceeded.fetch_add(1, Ordering::Relaxed);
            return Err(QuotaExceeded::Daily);
        }
        if let Some((size, window)) = limits.burst {
            let recent = counters.recent.entry(identity.to_string()).or_default();
            while recent
                .front()
                .is_some_and(|t| t.saturating_add(window) <= now)
            {
                recent.pop_front();
            }
            if recent.len() as u64 >= size {
                self.metrics.exceeded.fetch_add(1, Ordering::Relaxed);
                return Err(QuotaExceeded::Burst);
            }
            recent.push_back(now);
        }
        *counters.used.entry(identity.to_string()).or_default() += 1;
        counters.dirty = true;
        Ok(())
    }

    /// Writes today's counters to the state file if they changed since the
    /// last save (atomically: temporary file, sync, rename). A ledger
    /// without a file saves nothing.
    pub fn save(&self) -> Result<(), QuotaStateError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let state = {
            let mut counters = self.lock();
            if !counters.dirty {
                return Ok(());
            }
            counters.dirty = false;
            // Windows that ended long ago are dropped here, so identities
            // that stopped asking do not pile up.
            counters.recent.retain(|_, recent| !recent.is_empty());
            StateFile {
                format: FORMAT.to_string(),
                day: counters.day,
                used: counters.used.clone(),
            }
        };
        let result = write_atomically(path, &state);
        match &result {
            Ok(()) => {
                self.metrics.saves.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.metrics.save_failures.fetch_add(1, Ordering::Relaxed);
                // Try again next time.
                self.lock().dirty = true;
            }
        }
        result
    }

    /// Saves every `interval` until `shutdown` completes, then once more.
    /// Failures are logged (and counted) and retried at the next tick.
    pub async fn run_saver(
        self: std::sync::Arc<Self>,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        if self.path.is_none() {
            shutdown.await;
            return;
        }
        let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    let ledger = self.clone();
                    match tokio::task::spawn_blocking(move || ledger.save()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::warn!(%error, "quota state not saved; retrying"),
                        Err(error) => tracing::warn!(%error, "quota state save task failed"),
                    }
                }
            }
        }
        self.save_logged();
    }

    /// [`QuotaLedger::save`], logging a failure (for shutdown paths).
    pub fn save_logged(&self) {
        match self.save() {
            Ok(()) => {
                if let Some(path) = &self.path {
                    tracing::debug!(file = %path.display(), "quota state saved");
                }
            }
            Err(error) => tracing::warn!(%error, "quota state not saved"),
        }
    }

    /// The ledger's samples for `/metrics`.
    pub fn samples(&self) -> Vec<dnsrecall_metrics::LegacySample> {
        let m = &self.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            (
                "dnsrecall_http_quota_exceeded_total",
                "Requests refused with 429 because a key's or user's daily or burst quota was used up",
                get(&m.exceeded),
            ),
            (
                "dnsrecall_http_quota_untracked_total",
                "Lookups not charged because the quota ledger tracked its maximum of identities",
                get(&m.untracked),
            ),
            (
                "dnsrecall_http_quota_state_saves_total",
                "Times the quota state file was written",
                get(&m.saves),
            ),
            (
                "dnsrecall_http_quota_state_save_failures_total",
                "Times writing the quota state file failed (retried at the next interval)",
                get(&m.save_failures),
            ),
            (
                "dnsrecall_http_quota_state_load_failures_total",
                "Quota state files that could not be read at start-up (quotas started from zero)",
                get(&m.load_failures),
            ),
        ]
    }
}

/// The state file, `None` when there is none.
fn read_state(path: &Path) -> Result<Option<StateFile>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    if size > MAX_STATE_BYTES {
        return Err(format!(
            "{size} bytes, more than the {MAX_STATE_BYTES} a state file may have"
        ));
    }
    let state: StateFile = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("not a quota state file: {e}"))?;
    if state.format != FORMAT {
        return Err(format!("unknown format {:?}", state.format));
    }
    Ok(Some(state))
}

/// Writes `state` to a temporary file beside `path`, syncs it and renames
/// it over `path`.
fn write_atomically(path: &Path, state: &StateFile) -> Result<(), QuotaStateError> {
    let failed = |source| QuotaStateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&directory).map_err(failed)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let bytes = serde_json::to_vec(state).map_err(|e| failed(std::io::Error::other(e)))?;
    let mut file = std::fs::File::create(&temporary).map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(failed)?;
    // Make the rename itself durable; not every file system lets a
    // directory be opened for that, and the data is already safe.
    if let Ok(directory) = std::fs::File::open(&directory) {
        let _ = directory.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;
    const NOW: u64 = 20_000 * DAY + 3_600;

    fn quota(n: u64) -> Limits {
        Limits {
            quota: Some(n),
            burst: None,
        }
    }

    #[test]
    fn daily_quota_and_midnight() {
        let ledger = QuotaLedger::in_memory();
        for _ in 0..3 {
            assert_eq!(ledger.charge("user:alice", quota(3), NOW), Ok(()));
        }
        assert_eq!(
            ledger.charge("user:alice", quota(3), NOW),
            Err(QuotaExceeded::Daily)
        );
        assert_eq!(ledger.used_today("user:alice", NOW), 3);
        // Another identity is not affected; unlimited ones are not counted.
        assert_eq!(ledger.charge("user:bob", quota(3), NOW), Ok(()));
        assert_eq!(ledger.charge("user:carol", Limits::default(), NOW), Ok(()));
        assert_eq!(ledger.used_today("user:carol", NOW), 0);
        // The next UTC day starts from zero.
        assert_eq!(ledger.used_today("user:alice", NOW + DAY), 0);
        assert_eq!(ledger.charge("user:alice", quota(3), NOW + DAY), Ok(()));
    }

    #[test]
    fn burst_window() {
        let ledger = QuotaLedger::in_memory();
        let burst = Limits {
            quota: None,
            burst: Some((2, 60)),
        };
        assert_eq!(ledger.charge("k", burst, NOW), Ok(()));
        assert_eq!(ledger.charge("k", burst, NOW + 1), Ok(()));
        assert_eq!(
            ledger.charge("k", burst, NOW + 2),
            Err(QuotaExceeded::Burst)
        );
        assert_eq!(ledger.charge("k", burst, NOW + 60), Ok(()));
    }

    #[test]
    fn counters_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("quotas.json");
        let ledger = QuotaLedger::open(path.clone(), NOW);
        ledger.charge("user:alice", quota(5), NOW).unwrap();
        ledger.charge("user:alice", quota(5), NOW).unwrap();
        ledger.save().unwrap();
        assert!(path.exists());
        assert!(!dir.path().join("state").join("quotas.json.tmp").exists());

        let reopened = QuotaLedger::open(path.clone(), NOW + 60);
        assert_eq!(reopened.used_today("user:alice", NOW + 60), 2);
        assert_eq!(reopened.metrics.load_failures.load(Ordering::Relaxed), 0);
        // Nothing changed: no write.
        reopened.save().unwrap();
        assert_eq!(reopened.metrics.saves.load(Ordering::Relaxed), 0);

        // Tomorrow the saved counts are history.
        let tomorrow = QuotaLedger::open(path, NOW + DAY);
        assert_eq!(tomorrow.used_today("user:alice", NOW + DAY), 0);
    }

    #[test]
    fn a_corrupt_state_file_starts_from_zero_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quotas.json");
        let corrupt: [&[u8]; 4] = [
            b"{\"format\":\"dnsrecall-quotas/1\",\"day\":",
            b"\xff\xfe not json",
            b"{\"format\":\"other/9\",\"day\":1,\"used\":{}}",
            b"[]",
        ];
        for bad in corrupt {
            std::fs::write(&path, bad).unwrap();
            let ledger = QuotaLedger::open(path.clone(), NOW);
            assert_eq!(ledger.metrics.load_failures.load(Ordering::Relaxed), 1);
            assert_eq!(ledger.used_today("user:alice", NOW), 0);
            // And it still works, and repairs the file at the next save.
            ledger.charge("user:alice", quota(5), NOW).unwrap();
            ledger.save().unwrap();
            assert_eq!(
                QuotaLedger::open(path.clone(), NOW).used_today("user:alice", NOW),
                1
            );
        }
    }

    #[test]
    fn an_unwritable_state_file_is_counted_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: the rename fails.
        let path = dir.path().join("quotas.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("occupied"), b"x").unwrap();
        let ledger = QuotaLedger::open(path.clone(), NOW);
        ledger.charge("user:alice", quota(5), NOW).unwrap();
        assert!(matches!(ledger.save(), Err(QuotaStateError::Write { .. })));
        assert_eq!(ledger.metrics.save_failures.load(Ordering::Relaxed), 1);
        assert!(ledger.lock().dirty, "retried at the next save");
    }

    #[test]
    fn limit_fields() {
        let mut limits = Limits::default();
        assert_eq!(limits.parse_field("quota=7"), Ok(true));
        assert_eq!(limits.parse_field("burst=2/30"), Ok(true));
        assert_eq!(limits.parse_field("colour=blue"), Ok(false));
        assert!(limits.parse_field("burst=2/0").is_err());
        assert!(limits.parse_field("quota=x").is_err());
        assert_eq!(
            limits,
            Limits {
                quota: Some(7),
                burst: Some((2, 30))
            }
        );
    }
}

//! User accounts for HTTP Basic authentication: a user name and an argon2
//! password hash (PHC string) per line of `api.users_file`, with the same
//! optional quotas as DNSDB keys:
//!
//! ```text
//! # NAME  PHC-HASH                                   [quota=N] [burst=N/SECONDS]
//! alice   $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$...  quota=5000
//! ```
//!
//! `dnsrecall user add NAME` writes such lines ([`hash_password`],
//! [`user_line`]). The file is re-read when it changes (a file that no
//! longer parses keeps the previous users).
//!
//! Verification is argon2's: slow and memory-hard by design (about 19 MiB
//! and tens of milliseconds with the default parameters). So it
//!
//! * runs on the blocking pool, never on the async workers, at most
//!   [`MAX_CONCURRENT_VERIFICATIONS`] at a time (a flood of guesses costs a
//!   bounded amount of memory and CPU; the rest wait their turn);
//! * is remembered for [`VERIFIED_TTL`] after it succeeds, in a cache of at
//!   most [`MAX_VERIFIED`] entries keyed by a keyed SHA-256 of user name,
//!   stored hash and password (the key is random per process, so the cache
//!   is no offline dictionary target), so a client sending the same
//!   credentials on every request pays once a minute;
//! * takes the same time for an unknown user as for a wrong password: an
//!   unknown name is verified against a dummy hash, and both answer 401, so
//!   the answers do not tell which user names exist.
//!
//! Basic authentication with an API key as the password (any user name,
//! PyPDNS `basic_auth`) is [`crate::auth`]'s and is checked first; the user
//! file is consulted only when the password is not a key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

use crate::quota::Limits;

/// Most argon2 verifications running at once.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 4;
/// How long a successful verification is remembered.
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// Most remembered verifications.
pub const MAX_VERIFIED: usize = 4096;
/// Longest user name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest password accepted (longer ones fail without being hashed).
pub const MAX_PASSWORD_LEN: usize = 1024;

//---- errors -------------------------------------------------------------------

/// What can go wrong with a users file or a password hash.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// The file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line of the file is not `NAME PHC-HASH [quota=N] [burst=N/SECONDS]`.
    #[error("users file line {line}: {reason}")]
    Line { line: usize, reason: String },
    /// A user name with characters outside `[A-Za-z0-9._@-]`, or too long.
    #[error("invalid user name {0:?} (1 to 64 of A-Z a-z 0-9 . _ @ -)")]
    Name(String),
    /// Empty or longer than [`MAX_PASSWORD_LEN`].
    #[error("password must be 1 to {} bytes", MAX_PASSWORD_LEN)]
    Password,
    /// argon2 failed to hash.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

//---- file format --------------------------------------------------------------

/// One user of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The argon2 hash as a PHC string.
    pub hash: String,
    /// Quotas counted for this user on every route.
    pub limits: Limits,
}

/// Whether `name` may be a user name: 1 to [`MAX_NAME_LEN`] of
/// `A-Z a-z 0-9 . _ @ -` (no `:`, which ends the name in Basic
/// credentials, no white space, which separates the file's fields).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

/// Parses a users file: `NAME PHC-HASH [quota=N] [burst=N/SECONDS]` per
/// line, `#` comments. Errors name the line; a name given twice is one.
pub fn parse_users_file(text: &str) -> Result<HashMap<String, User>, UsersError> {
    let mut users = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |reason: String| UsersError::Line {
            line: number + 1,
            reason,
        };
        let mut fields = line.split_whitespace();
        let name = fields.next().unwrap_or_default();
        if !valid_name(name) {
            return Err(bad(format!("invalid user name {name:?}")));
        }
        let hash = fields
            .next()
            .ok_or_else(|| bad("expected a password hash after the user name".into()))?;
        let parsed =
            PasswordHash::new(hash).map_err(|e| bad(format!("not a PHC password hash: {e}")))?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            return Err(bad(format!(
                "password hash algorithm {} is not argon2",
                parsed.algorithm
            )));
        }
        let mut limits = Limits::default();
        for field in fields {
            if !limits.parse_field(field).map_err(bad)? {
                return Err(bad(format!("unknown field {field:?}")));
            }
        }
        let user = User {
            hash: hash.to_string(),
            limits,
        };
        if users.insert(name.to_string(), user).is_some() {
            return Err(bad(format!("user {name:?} given twice")));
        }
    }
    Ok(users)
}

/// An argon2id hash of `password` with a fresh random salt and the crate's
/// default parameters, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(UsersError::Password);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// A users file line for `name`.
pub fn user_line(name: &str, user: &User) -> String {
    let mut line = format!("{name} {}", user.hash);
    if let Some(quota) = user.limits.quota {
        line.push_str(&format!(" quota={quota}"));
    }
    if let Some((size, window)) = user.limits.burst {
        line.push_str(&format!(" burst={size}/{window}"));
    }
    line
}

/// `text` (a users file) with `name`'s line replaced by `line`, or `line`
/// appended when there is none; other lines, comments included, stay as
/// they are.
pub fn with_user_line(text: &str, name: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut replaced = false;
    for existing in text.lines() {
        let content = existing.split('#').next().unwrap_or("");
        if !replaced && content.split_whitespace().next() == Some(name) {
            out.push_str(line);
            replaced = true;
        } else {
            out.push_str(existing);
        }
        out.push('\n');
    }
    if !replaced {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `text` (a users file) without `name`'s line, and whether it had one;
/// other lines, comments included, stay as they are.
pub fn without_user_line(text: &str, name: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut removed = false;
    for existing in text.lines() {
        let content = existing.split('#').next().unwrap_or("");
        if content.split_whitespace().next() == Some(name) {
            removed = true;
            continue;
        }
        out.push_str(existing);
        out.push('\n');
    }
    (out, removed)
}

/// Whether `password` matches the PHC `hash` (false for a hash that does
/// not parse).
fn matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The hash unknown user names are verified against, so that they take as
/// long as a wrong password (made once, with the default parameters that
/// `user add` uses).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("dnsrecall: no such user").unwrap_or_default())
}

//---- Users --------------------------------------------------------------------

/// Modification time and size of the users file when last read.
type FileStamp = Option<(SystemTime, u64)>;

#[derive(Debug, Default)]
struct UserMetrics {
    failures: AtomicU64,
    verifications: AtomicU64,
    cache_hits: AtomicU64,
}

/// The users file, its verification cache and the verification limit.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    loaded: Mutex<(FileStamp, Arc<HashMap<String, User>>)>,
    /// Keyed digests of recently verified credentials → when they expire.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    /// Random per process: the key of the cache's digests.
    cache_key: [u8; 32],
    permits: Arc<tokio::sync::Semaphore>,
    metrics: UserMetrics,
}

impl Users {
    /// Reads the users file at `path` (it must exist and parse).
    pub fn open(path: PathBuf) -> Result<Users, UsersError> {
        let stamp = file_stamp(&path);
        let users = read_users(&path)?;
        tracing::info!(file = %path.display(), users = users.len(), "users file loaded");
        Ok(Users::with(path, stamp, users))
    }

    /// Users from `text`, with no file behind them (tests).
    pub fn from_text(text: &str) -> Result<Users, UsersError> {
        Ok(Users::with(PathBuf::new(), None, parse_users_file(text)?))
    }

    fn with(path: PathBuf, stamp: FileStamp, users: HashMap<String, User>) -> Users {
        let mut cache_key = [0u8; 32];
        OsRng.fill_bytes(&mut cache_key);
        Users {
            path,
            loaded: Mutex::new((stamp, Arc::new(users))),
            verified: Mutex::new(HashMap::new()),
            cache_key,
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_VERIFICATIONS)),
            metrics: UserMetrics::default(),
        }
    }

    /// The current users, re-reading the file if it changed.
    pub fn current(&self) -> Arc<HashMap<String, User>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if self.path.as_os_str().is_empty() {
            return loaded.1.clone();
        }
        let stamp = file_stamp(&self.path);
        if stamp.is_some() && stamp != loaded.0 {
            loaded.0 = stamp;
            match read_users(&self.path) {
                Ok(users) => {
                    tracing::info!(file = %self.path.display(), users = users.len(), "users file reloaded");
                    loaded.1 = Arc::new(users);
                }
                Err(error) => {
                    tracing::error!(%error, "users file not reloaded; keeping the previous users")
                }
            }
        }
        loaded.1.clone()
    }

    /// The user's quotas when `name` and `password` were verified within
    /// [`VERIFIED_TTL`] (no argon2 here: cheap enough for synchronous
    /// callers, such as the UI's key check after the guard verified).
    pub fn cached(&self, name: &str, password: &str) -> Option<Limits> {
        let user = self.current().get(name).cloned()?;
        let token = self.token(name, &user.hash, password);
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        verified
            .get(&token)
            .is_some_and(|expiry| *expiry > Instant::now())
            .then_some(user.limits)
    }

    /// Verifies `name` and `password`: the user's quotas, or `None` for an
    /// unknown user or a wrong password (which take the same time).
    pub async fn verify(&self, name: &str, password: &str) -> Option<Limits> {
        if let Some(limits) = self.cached(name, password) {
            self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Some(limits);
        }
        let user = self.current().get(name).cloned();
        let verified = if password.len() > MAX_PASSWORD_LEN {
            false
        } else {
            let permit = self.permits.clone().acquire_owned().await.ok()?;
            self.metrics.verifications.fetch_add(1, Ordering::Relaxed);
            let hash = user.as_ref().map(|u| u.hash.clone());
            let password = password.to_string();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                match hash {
                    Some(hash) => matches(&hash, &password),
                    None => {
                        let _ = matches(dummy_hash(), &password);
                        false
                    }
                }
            })
            .await
            .unwrap_or(false)
        };
        let Some(user) = user.filter(|_| verified) else {
            self.metrics.failures.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.remember(self.token(name, &user.hash, password));
        Some(user.limits)
    }

    fn token(&self, name: &str, hash: &str, password: &str) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(self.cache_key);
        for part in [name, hash, password] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
        digest.finalize().into()
    }

    fn remember(&self, token: [u8; 32]) {
        let now = Instant::now();
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_VERIFIED {
            verified.retain(|_, expiry| *expiry > now);
            if verified.len() >= MAX_VERIFIED {
                // All fresh: forget them all rather than track ages; the
                // cost is one more verification per active client.
                verified.clear();
            }
        }
        verified.insert(token, now + VERIFIED_TTL);
    }

    /// Verified credentials remembered now.
    pub fn cached_len(&self) -> usize {
        self.verified.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// The users' samples for `/metrics`.
    pub fn samples(&self) -> Vec<dnsrecall_metrics::LegacySample> {
        let m = &self.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            (
                "dnsrecall_http_user_auth_failures_total",
                "Basic logins refused: unknown user or wrong password",
                get(&m.failures),
            ),
            (
                "dnsrecall_http_user_verifications_total",
                "argon2 password verifications run (successful ones are then cached for a minute)",
                get(&m.verifications),
            ),
            (
                "dnsrecall_http_user_cache_hits_total",
                "Basic logins accepted from the verification cache, without argon2",
                get(&m.cache_hits),
            ),
        ]
    }
}

fn file_stamp(path: &Path) -> FileStamp {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

fn read_users(path: &Path) -> Result<HashMap<String, User>, UsersError> {
    let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_users_file(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One hash for the tests (argon2 is slow on purpose).
    fn alice_hash() -> &'static str {
        static HASH: OnceLock<String> = OnceLock::new();
        HASH.get_or_init(|| hash_password("correct horse").expect("hash"))
    }

    #[test]
    fn hashes_are_salted_phc_strings() {
        let hash = alice_hash();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(hash, hash_password("correct horse").unwrap());
        assert!(matches(hash, "correct horse"));
        assert!(!matches(hash, "correct horse "));
        assert!(!matches("not a hash", "correct horse"));
        assert!(matches!(hash_password(""), Err(UsersError::Password)));
    }

    #[test]
    fn users_files() {
        let text = format!(
            "# users\nalice {} quota=10 burst=2/60\n\nbob.smith@example {}  # note\n",
            alice_hash(),
            alice_hash()
        );
        let users = parse_users_file(&text).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["alice"].limits.quota, Some(10));
        assert_eq!(users["alice"].limits.burst, Some((2, 60)));
        assert_eq!(users["bob.smith@example"].limits, Limits::default());
        assert_eq!(
            user_line("alice", &users["alice"]),
            format!("alice {} quota=10 burst=2/60", alice_hash())
        );

        let line = |text: &str| match parse_users_file(text) {
            Err(UsersError::Line { line, .. }) => line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line("\nalice"), 2);
        assert_eq!(
            line("al:ice $argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"),
            1
        );
        assert_eq!(line("alice plaintext"), 1);
        assert_eq!(line(&format!("alice {} colour=blue", alice_hash())), 1);
        assert_eq!(
            line(&format!("alice {}\nalice {}", alice_hash(), alice_hash())),
            2
        );
        assert_eq!(
            line("alice $pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"),
            1
        );
    }

    #[test]
    fn adding_and_replacing_lines() {
        let text = "# mine\nalice OLD\nbob B # keep\n";
        assert_eq!(
            with_user_line(text, "alice", "alice NEW"),
            "# mine\nalice NEW\nbob B # keep\n"
        );
        assert_eq!(
            with_user_line(text, "carol", "carol C"),
            "# mine\nalice OLD\nbob B # keep\ncarol C\n"
        );
        assert_eq!(with_user_line("", "carol", "carol C"), "carol C\n");
    }

    #[tokio::test]
    async fn verification_and_its_cache() {
        let users = Users::from_text(&format!("alice {} quota=3\n", alice_hash())).expect("users");
        assert_eq!(users.cached("alice", "correct horse"), None);
        assert_eq!(users.verify("alice", "wrong").await, None);
        assert_eq!(users.verify("mallory", "correct horse").await, None);
        assert_eq!(users.cached_len(), 0, "failures are not cached");
        let limits = users
            .verify("alice", "correct horse")
            .await
            .expect("verified");
        assert_eq!(limits.quota, Some(3));
        assert_eq!(users.cached("alice", "correct horse"), Some(limits));
        assert_eq!(users.cached("alice", "wrong"), None);
        assert!(users.verify("alice", "correct horse").await.is_some());
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(get(&users.metrics.verifications), 3);
        assert_eq!(get(&users.metrics.cache_hits), 1);
        assert_eq!(get(&users.metrics.failures), 2);
    }

    #[test]
    fn the_cache_is_bounded() {
        let users = Users::from_text("").expect("users");
        for i in 0..(MAX_VERIFIED * 2) as u64 {
            users.remember(users.token(&i.to_string(), "h", "p"));
            assert!(users.cached_len() <= MAX_VERIFIED);
        }
    }

    #[tokio::test]
    async fn the_file_is_reloaded_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, format!("alice {}\n", alice_hash())).unwrap();
        let users = Users::open(path.clone()).expect("users");
        assert!(users.current().contains_key("alice"));
        std::fs::write(
            &path,
            format!("alice {}\nbob {}\n", alice_hash(), alice_hash()),
        )
        .unwrap();
        assert!(users.current().contains_key("bob"));
        // A broken file keeps the previous users.
        std::fs::write(&path, "bob\n").unwrap();
        assert!(users.current().contains_key("bob"));
        assert!(matches!(
            Users::open(dir.path().join("missing")),
            Err(UsersError::Read { .. })
        ));
    }
}

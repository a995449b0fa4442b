//! The crate's error type.

use std::path::PathBuf;

/// Why a filter list, a hints file or a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line of a filter list or hints file does not parse.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file (or the name given to in-memory text).
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration value for {field}: {reason}")]
    Config {
        /// The configuration key.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The filter watcher thread could not be started.
    #[error("cannot start the filter watcher thread: {0}")]
    Thread(std::io::Error),
}

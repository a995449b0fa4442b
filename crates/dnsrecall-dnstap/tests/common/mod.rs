//! Helpers shared by the integration tests: test data paths, child processes
//! killed on drop, and the reference decodings.
#![allow(dead_code)] // each test target uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dnsrecall_dnstap::FileReader;

/// The repository's dnstap files (`tests/data/dnstap`, see tests/data/README.md).
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/dnstap");

/// The Frame Streams files with their reference decodings.
pub fn fstrm_files() -> Vec<PathBuf> {
    let mut files = vec![Path::new(DATA).join("go-dnscollector/dnstap.fstrm")];
    for name in [
        "unbound_auth",
        "unbound_dnsperf_resolver",
        "unbound_resolver",
    ] {
        files.push(Path::new(DATA).join(format!("unbound/{name}.dnstap")));
    }
    files
}

pub fn read_frames(path: &Path) -> Vec<Bytes> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    FileReader::new(std::io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn expected_lines(path: &Path) -> Vec<serde_json::Value> {
    let mut name = path.as_os_str().to_owned();
    name.push(".expected.jsonl");
    std::fs::read_to_string(PathBuf::from(name))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Fails loudly when a tool the tests need is not installed.
pub fn require_tool(name: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(name).is_file();
    assert!(found, "{name} not found: apt-get install -y {package}");
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(command: &mut Command) -> KillOnDrop {
    KillOnDrop(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}")),
    )
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

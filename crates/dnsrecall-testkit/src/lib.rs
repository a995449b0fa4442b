//! dnsrecall-testkit: helpers shared by the tests and benches of every
//! dnsrecall crate (a dev-dependency only; nothing in the product links it).
//!
//! It owns where the test data is ([`data`]: `tests/data/` at the root of
//! the repository, copied there with a README naming each file's origin and
//! licence, so a fresh clone has everything its tests read) and small
//! fixtures every crate would otherwise write again ([`free_port`], private
//! Redis servers and clusters in [`redis`]).
//!
//! It must not know any dnsrecall crate: it is a leaf, so every crate can
//! use it without cycles.

pub mod redis;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

/// The repository's test data folder (`tests/data/`).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// A file or folder under `tests/data/`; panics (failing the test loudly)
/// when it is missing, naming the path.
pub fn data(relative: &str) -> PathBuf {
    let path = data_dir().join(relative);
    assert!(
        path.exists(),
        "test data {} is missing (tests/data/README.md lists what belongs there)",
        path.display()
    );
    path
}

/// A TCP port free on 127.0.0.1 at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("no free loopback port: {error}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn data_is_in_the_repository() {
        let readme = super::data("README.md");
        assert!(readme.starts_with(env!("CARGO_MANIFEST_DIR")));
        assert!(super::data("pcap/tcpdump/dns_udp.pcap").is_file());
    }
}

//! The crate dependency rules of docs/ARCHITECTURE.md, checked over
//! `cargo metadata`: a change that makes a low crate know a high one fails
//! here, naming the crate and the dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Workspace crate → its normal (non-dev) dependencies on workspace crates.
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    let mut graph = BTreeMap::new();
    for package in packages {
        let name = package["name"].as_str().expect("name").to_string();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            // `kind` is null for normal dependencies, "dev" or "build" else.
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| members.contains(*d))
            .map(String::from)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

fn deps<'a>(graph: &'a BTreeMap<String, BTreeSet<String>>, name: &str) -> &'a BTreeSet<String> {
    graph.get(name).unwrap_or_else(|| {
        panic!("{name} is not a workspace crate: update this test and docs/ARCHITECTURE.md")
    })
}

#[test]
fn crate_dependency_rules_hold() {
    let graph = workspace_graph();
    assert!(graph.len() >= 10, "too few crates found: {graph:?}");
    // Crates that may depend only on these workspace crates.
    let only: &[(&str, &[&str])] = &[
        ("dnsrecall-core", &[]),
        ("dnsrecall-metrics", &[]),
        ("dnsrecall-dnstap", &[]),
        ("dnsrecall-capture", &[]),
        (
            "dnsrecall-pipeline",
            &["dnsrecall-core", "dnsrecall-metrics"],
        ),
        ("dnsrecall-query", &["dnsrecall-core"]),
        ("dnsrecall-stats", &["dnsrecall-core"]),
        ("dnsrecall-redis", &["dnsrecall-core"]),
        ("dnsrecall-ui", &["dnsrecall-core", "dnsrecall-query"]),
        ("dnsrecall-store", &["dnsrecall-core", "dnsrecall-redis"]),
        (
            "dnsrecall-ingest",
            &[
                "dnsrecall-core",
                "dnsrecall-dnstap",
                "dnsrecall-capture",
                "dnsrecall-pipeline",
                "dnsrecall-metrics",
                "dnsrecall-stats",
                // The D4 queue and COF websocket inputs wrap its readers.
                "dnsrecall-redis",
            ],
        ),
    ];
    let mut broken = Vec::new();
    for (name, allowed) in only {
        for dep in deps(&graph, name) {
            if !allowed.contains(&dep.as_str()) {
                broken.push(format!("{name} must not depend on {dep}"));
            }
        }
    }
    // Crates that must not depend on these.
    let never: &[(&str, &[&str])] = &[(
        "dnsrecall-http",
        &[
            "dnsrecall-store",
            "dnsrecall-ingest",
            "dnsrecall-pipeline",
            "dnsrecall-dnstap",
            "dnsrecall-capture",
            "dnsrecall",
        ],
    )];
    for (name, forbidden) in never {
        for dep in deps(&graph, name) {
            if forbidden.contains(&dep.as_str()) {
                broken.push(format!("{name} must not depend on {dep}"));
            }
        }
    }
    // Only the binary depends on the HTTP crate, and nothing on the binary
    // or (outside tests) on the testkit.
    for (name, dependencies) in &graph {
        for dep in dependencies {
            let binary_only = dep == "dnsrecall-http" && name != "dnsrecall";
            if binary_only || dep == "dnsrecall" || dep == "dnsrecall-testkit" {
                broken.push(format!("{name} must not depend on {dep}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "dependency rules broken:\n{}",
        broken.join("\n")
    );
    // The rules must be able to fail: the binary does depend on the others.
    let binary = deps(&graph, "dnsrecall");
    for needed in ["dnsrecall-ingest", "dnsrecall-http", "dnsrecall-store"] {
        assert!(
            binary.contains(needed),
            "the binary should use {needed}: {binary:?}"
        );
    }
}

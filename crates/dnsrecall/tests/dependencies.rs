//! The crate dependency rules, checked over `cargo metadata`. The rules
//! are one table, "Dependency rules" in docs/ARCHITECTURE.md (crate → the
//! workspace crates it may depend on, and why): this test reads that table,
//! so the document and the check cannot drift apart, and a change that
//! makes a low crate know a high one fails here, naming the crate and the
//! dependency. The fixed rules (#9) are checked on the table
//! itself, so loosening the table cannot break them either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Workspace crate → its normal (non-dev) dependencies on workspace crates.
fn workspace_graph() -> Graph {
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

/// The "Dependency rules" table of docs/ARCHITECTURE.md: crate → allowed
/// workspace dependencies (`None` for "every crate": the binary).
fn documented_rules() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let section = text
        .split("\n## Dependency rules\n")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a '## Dependency rules' section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rules = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", crate, may depend on, why, ""
        assert!(cells.len() >= 4, "malformed rules row: {line}");
        let name = cells[1].trim_matches('`').to_string();
        let allowed = if cells[2].starts_with("every") {
            None
        } else {
            Some(
                cells[2]
                    .split(',')
                    .map(|d| d.trim().trim_matches('`').to_string())
                    .filter(|d| !d.is_empty() && d != "—")
                    .collect(),
            )
        };
        assert!(
            rules.insert(name.clone(), allowed).is_none(),
            "{name} has two rows in the rules table"
        );
    }
    rules
}

#[test]
fn the_rules_table_keeps_the_fixed_rules() {
    let rules = documented_rules();
    let allowed = |name: &str| -> BTreeSet<String> {
        rules
            .get(name)
            .unwrap_or_else(|| panic!("the rules table has no row for {name}"))
            .clone()
            .unwrap_or_else(|| panic!("{name} may not depend on every crate"))
    };
    // Leaves: the record model, the metrics vocabulary, the protocol
    // crates and the test kit know no other workspace crate.
    for leaf in [
        "dnsrecall-core",
        "dnsrecall-metrics",
        "dnsrecall-dnstap",
        "dnsrecall-capture",
        "dnsrecall-testkit",
    ] {
        assert!(allowed(leaf).is_empty(), "{leaf} must be a leaf");
    }
    // The query engine knows the record model only.
    assert_eq!(
        allowed("dnsrecall-query"),
        BTreeSet::from(["dnsrecall-core".to_string()])
    );
    // The HTTP crate knows neither storage engines nor ingest.
    let http = allowed("dnsrecall-http");
    for never in [
        "dnsrecall-store",
        "dnsrecall-redis",
        "dnsrecall-ingest",
        "dnsrecall-pipeline",
        "dnsrecall-dnstap",
        "dnsrecall-capture",
    ] {
        assert!(
            !http.contains(never),
            "dnsrecall-http must not know {never}"
        );
    }
    // Only the binary depends on everything; nothing on the HTTP crate,
    // the binary or the test kit.
    for (name, allowed) in &rules {
        match allowed {
            None => assert_eq!(name, "dnsrecall", "only the binary depends on every crate"),
            Some(allowed) => {
                for forbidden in ["dnsrecall-http", "dnsrecall", "dnsrecall-testkit"] {
                    assert!(
                        !allowed.contains(forbidden),
                        "the rules table lets {name} depend on {forbidden}"
                    );
                }
            }
        }
    }
}

#[test]
fn crate_dependency_rules_hold() {
    let graph = workspace_graph();
    assert!(graph.len() >= 10, "too few crates found: {graph:?}");
    let rules = documented_rules();
    let mut broken = Vec::new();
    for (name, dependencies) in &graph {
        let Some(allowed) = rules.get(name) else {
            broken.push(format!(
                "{name} has no row in docs/ARCHITECTURE.md's \"Dependency rules\" table"
            ));
            continue;
        };
        let Some(allowed) = allowed else { continue };
        for dep in dependencies {
            if !allowed.contains(dep) {
                broken.push(format!("{name} must not depend on {dep}"));
            }
        }
    }
    for name in rules.keys() {
        if !graph.contains_key(name) {
            broken.push(format!(
                "the rules table names {name}, which is not a workspace crate"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "dependency rules broken (docs/ARCHITECTURE.md, \"Dependency rules\"):\n{}",
        broken.join("\n")
    );
    // The check must be able to fail: the binary does use the others.
    let binary = &graph["dnsrecall"];
    for needed in ["dnsrecall-ingest", "dnsrecall-http", "dnsrecall-store"] {
        assert!(
            binary.contains(needed),
            "the binary should use {needed}: {binary:?}"
        );
    }
}

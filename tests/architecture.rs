//! ARCHITECTURE.md's dependency table is the rule: every workspace crate
//! depends on exactly the zgc crates its row names (its tests on those of
//! the third column as well), and on none of the crates of the last
//! column. This test reads the table and holds `cargo metadata` to it,
//! as rust-analyzer's `tidy` holds its own rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const HEADER: &str = "| crate | depends on | and in its tests | never depends on |";

#[derive(Debug, Default, PartialEq)]
struct Row {
    depends_on: BTreeSet<String>,
    in_tests: BTreeSet<String>,
    never: BTreeSet<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The names in backticks in one table cell.
fn names(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The table, by crate.
fn table() -> BTreeMap<String, Row> {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut lines = doc.lines().skip_while(|l| l.trim() != HEADER);
    assert!(
        lines.next().is_some(),
        "ARCHITECTURE.md has no `{HEADER}` table"
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        assert_eq!(cells.len(), 4, "a row of four cells: {line}");
        let krate = names(cells[0]);
        assert_eq!(krate.len(), 1, "one crate per row: {line}");
        let krate = krate.into_iter().next().unwrap();
        let row = Row {
            depends_on: names(cells[1]),
            in_tests: names(cells[2]),
            never: names(cells[3]),
        };
        assert!(rows.insert(krate.clone(), row).is_none(), "{krate} twice");
    }
    rows
}

/// What Cargo says, in the same shape (the "never" column left empty;
/// every dependency of any kind is in `all`).
fn cargo() -> BTreeMap<String, (Row, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let mut row = Row::default();
            let mut all = BTreeSet::new();
            for d in p["dependencies"].as_array().unwrap() {
                let name = d["name"].as_str().unwrap().to_string();
                all.insert(name.clone());
                if !ours.contains(&name) {
                    continue;
                }
                if d["kind"].as_str() == Some("dev") {
                    row.in_tests.insert(name);
                } else {
                    row.depends_on.insert(name);
                }
            }
            row.in_tests = &row.in_tests - &row.depends_on;
            (p["name"].as_str().unwrap().to_string(), (row, all))
        })
        .collect()
}

/// Where Cargo's graph differs from the table, one line each.
fn violations(
    table: &BTreeMap<String, Row>,
    cargo: &BTreeMap<String, (Row, BTreeSet<String>)>,
) -> Vec<String> {
    let mut found = Vec::new();
    let documented: BTreeSet<&String> = table.keys().collect();
    let built: BTreeSet<&String> = cargo.keys().collect();
    for krate in built.symmetric_difference(&documented) {
        found.push(format!(
            "{krate} is a crate of one of the table and the workspace only"
        ));
    }
    for (krate, (actual, all)) in cargo {
        let Some(rule) = table.get(krate) else {
            continue;
        };
        if actual.depends_on != rule.depends_on {
            found.push(format!(
                "{krate} depends on {:?}; its row says {:?}",
                actual.depends_on, rule.depends_on
            ));
        }
        if actual.in_tests != rule.in_tests {
            found.push(format!(
                "{krate}'s tests also depend on {:?}; its row says {:?}",
                actual.in_tests, rule.in_tests
            ));
        }
        let forbidden: Vec<&String> = all.intersection(&rule.never).collect();
        if !forbidden.is_empty() {
            found.push(format!(
                "{krate} depends on {forbidden:?}, which its row forbids"
            ));
        }
    }
    found
}

#[test]
fn the_crate_graph_is_the_one_architecture_md_draws() {
    let found = violations(&table(), &cargo());
    assert!(
        found.is_empty(),
        "ARCHITECTURE.md's dependency table is not true; change the code or the table:\n{}",
        found.join("\n")
    );
}

/// The check can fail: a table that leaves out an edge Cargo has, forbids
/// a dependency a crate has, or misses a crate, is caught.
#[test]
fn a_table_that_is_not_true_is_caught() {
    let cargo = cargo();
    let mut table = table();
    let registry = table.get_mut("zgc-registry").unwrap();
    registry.depends_on.remove("zgc-store");
    registry.never.insert("tonic".into());
    table.remove("zgc-bench");
    let found = violations(&table, &cargo);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().any(|v| v.contains("zgc-bench")), "{found:#?}");
    assert!(
        found.iter().any(|v| v.contains("[\"tonic\"]")),
        "{found:#?}"
    );
}

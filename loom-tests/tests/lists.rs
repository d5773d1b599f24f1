//! The mutation list is written once (`loom-tests/mutations.txt`) and named
//! in four other places: the code (`ord!`/`fence_sc!`/`cfg(shmq_mutation)`
//! in `src/ring/`), the scenarios (`tests/ring.rs`, `ownership.rs`, `closing.rs`), the table in
//! `loom-tests/README.md` and the ordering table in `src/ring/mod.rs`.
//! This test fails when any of them names a mutation the list lacks, or
//! lacks one the list names, or when a listed scenario does not exist.
//! (It runs no model: it only reads files.)

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// (name, scenario) for every line of the list.
fn list() -> Vec<(String, String)> {
    read("loom-tests/mutations.txt")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('|').map(str::trim);
            (f.next().unwrap_or_default().to_string(), f.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// The mutation names the code of `src/ring/` compiles in or out.
fn in_code() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/ring");
    for entry in std::fs::read_dir(&dir).expect("src/ring") {
        let src = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
        // Every string literal on a line that compiles a mutation in or out
        // (`ord!(...)`, possibly nested, `fence_sc!(...)`, `cfg(shmq_mutation = ...)`).
        for line in src.lines().filter(|l| {
            !l.trim_start().starts_with("//")
                && ["ord!(", "fence_sc!(", "shmq_mutation = \""].iter().any(|p| l.contains(p))
        }) {
            for (k, lit) in line.split('"').enumerate() {
                if k % 2 == 1 && !lit.is_empty() && lit.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    names.insert(lit.to_string());
                }
            }
        }
    }
    names
}

/// The backquoted names in the rows of a markdown table whose cells use them.
fn backquoted_in(text: &str, names: &BTreeSet<String>) -> BTreeSet<String> {
    names.iter().filter(|n| text.contains(&format!("`{n}`"))).cloned().collect()
}

#[test]
fn every_list_of_mutations_agrees_with_the_one_list() {
    let listed: BTreeSet<String> = list().into_iter().map(|(n, _)| n).collect();
    assert!(listed.len() >= 20, "the list: {listed:?}");
    let code = in_code();
    assert_eq!(code, listed, "mutations in src/ring/ vs loom-tests/mutations.txt");
    let readme = read("loom-tests/README.md");
    let table = &readme[readme.find("| mutation | caught by | how |").expect("README mutation table")..];
    let rows: BTreeSet<String> = table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_string())
        .filter(|c| !c.is_empty() && c != "mutation" && !c.starts_with('-'))
        .collect();
    assert_eq!(rows, listed, "loom-tests/README.md's mutation table vs the list");
    let ring_doc = read("src/ring/mod.rs");
    let missing: Vec<_> = listed.difference(&backquoted_in(&ring_doc, &listed)).cloned().collect();
    assert!(missing.is_empty(), "src/ring/mod.rs's ordering table does not name {missing:?}");
}

#[test]
fn every_listed_scenario_exists_and_the_readme_pairs_it_alike() {
    let scenarios = ["ring", "ownership", "closing"].map(|f| read(&format!("loom-tests/tests/{f}.rs"))).concat();
    let readme = read("loom-tests/README.md");
    for (name, scenario) in list() {
        assert!(
            scenarios.contains(&format!("#[test]\nfn {scenario}()")),
            "{name}: scenario {scenario} is not a test in tests/ring.rs, ownership.rs or closing.rs"
        );
        assert!(
            readme.contains(&format!("| `{name}` | `{scenario}` |")),
            "{name}: README does not pair it with {scenario}"
        );
    }
}

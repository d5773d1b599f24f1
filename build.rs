//! Passes a loom mutation to this crate only: `SHMQ_MUTATION=NAME` compiles
//! with `--cfg shmq_mutation="NAME"`, which weakens one ordering in
//! `src/ring/` (see `loom-tests/mutations.sh`). Through RUSTFLAGS the cfg
//! would reach every crate and rebuild all of them for each mutation.
//! Unset (always, outside that script), it does nothing.
//!
//! It also declares every mutation name listed in
//! `loom-tests/mutations.txt` (the one list) as a value of
//! `cfg(shmq_mutation)`, so a name in the code that the list lacks is a
//! compiler warning (an error under `-D warnings`).

fn main() {
    println!("cargo::rerun-if-env-changed=SHMQ_MUTATION");
    println!("cargo::rerun-if-changed=loom-tests/mutations.txt");
    let names: Vec<String> = std::fs::read_to_string("loom-tests/mutations.txt")
        .map(|list| {
            list.lines()
                .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| l.split('|').next())
                .map(|n| format!("\"{}\"", n.trim()))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        // Built outside the workspace (a packaged crate): no list to check against.
        println!("cargo::rustc-check-cfg=cfg(shmq_mutation, values(any()))");
    } else {
        println!("cargo::rustc-check-cfg=cfg(shmq_mutation, values({}))", names.join(", "));
    }
    if let Ok(m) = std::env::var("SHMQ_MUTATION") {
        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            println!("cargo::rustc-cfg=shmq_mutation=\"{m}\"");
        }
    }
}

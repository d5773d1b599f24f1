//! Passes a loom mutation to this crate only: `SHMQ_MUTATION=NAME` compiles
//! with `--cfg shmq_mutation="NAME"`, which weakens one ordering in
//! `src/ring.rs` (see `loom-tests/mutations.sh`). Through RUSTFLAGS the cfg
//! would reach every crate and rebuild all of them for each mutation.
//! Unset (always, outside that script), it does nothing.

fn main() {
    println!("cargo:rerun-if-env-changed=SHMQ_MUTATION");
    if let Ok(m) = std::env::var("SHMQ_MUTATION") {
        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            println!("cargo:rustc-cfg=shmq_mutation=\"{m}\"");
        }
    }
}

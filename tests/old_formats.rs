//! The file format is a contract. `tests/fixtures/` holds three topic files
//! of each earlier layout version, 1 and 2 (made by the last build of each:
//! block with a detached durable subscriber, multi-producer, overwrite;
//! 4 KiB rings, 4 slots). Version 2 judges liveness by kernel locks instead
//! of pids; version 3 adds the end of stream (a closed mark, the producers
//! lock): processes of different versions cannot share a topic, so this
//! build refuses older files with a typed error that says what to do, and
//! `shmq rm` removes them without `--force` (nothing of this version can be
//! using them).

mod common;

use std::process::Command;

use common::TestDir;
use shmq::{layout, OpenError, Options, Topic};

fn fixture(dir: &TestDir, name: &str) -> Options {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let bytes = std::fs::read(&src).expect("fixture");
    let dst = dir.path().join(name);
    std::fs::write(&dst, &bytes).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).expect("mode");
    dir.opts()
}

#[test]
fn older_files_are_refused_with_what_to_do() {
    let dir = TestDir::new();
    for name in ["v1-block", "v1-multi", "v1-overwrite", "v2-block", "v2-multi", "v2-overwrite"] {
        let old: u32 = name[1..2].parse().expect("version");
        let opts = fixture(&dir, name);
        for writable in [true, false] {
            let r = if writable { Topic::open(name, &opts) } else { Topic::open_read_only(name, &opts) };
            match r {
                Err(e @ OpenError::VersionMismatch { found, supported: layout::VERSION }) if found == old => {
                    let msg = e.to_string();
                    assert!(msg.contains("shmq rm") && msg.contains("create it again"), "{msg}");
                }
                other => panic!("{name}: expected a version mismatch, got {other:?}"),
            }
        }
        // open_or_create must not take the old file for a missing one.
        assert!(matches!(Topic::open_or_create(name, &opts), Err(OpenError::VersionMismatch { .. })));
    }
}

#[test]
fn the_cli_reports_older_files_and_rm_removes_them() {
    let dir = TestDir::new();
    for (name, version) in [("v1-block", 1), ("v2-block", 2)] {
        fixture(&dir, name);
        let shmq = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(dir.path()).args(args).output().expect("run shmq")
        };
        let o = shmq(&["info", name]);
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("layout version {version}")), "{o:?}");
        let o = shmq(&["rm", name]);
        assert!(o.status.success(), "{o:?}");
        assert!(!dir.path().join(name).exists());
    }
}

#[test]
fn a_new_topic_is_of_this_version_with_its_attachment_counter() {
    let dir = TestDir::new();
    let t = Topic::create("fresh", &dir.opts().capacity(4096)).expect("create");
    let bytes = std::fs::read(dir.path().join("fresh")).expect("read");
    let word = |off: usize| u64::from_le_bytes(bytes[off..off + 8].try_into().expect("8 bytes"));
    assert_eq!(word(layout::hdr::VERSION) as u32, 3);
    let _sub = t.subscribe().expect("subscribe");
    let _p = t.producer().expect("producer");
    let bytes = std::fs::read(dir.path().join("fresh")).expect("read");
    let seq = u64::from_le_bytes(bytes[layout::hdr::ATTACH_SEQ..][..8].try_into().expect("8 bytes"));
    assert_eq!(seq, 2, "a subscriber and a producer attached");
}

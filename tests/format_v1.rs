//! The file format is a contract. `tests/fixtures/` holds three topic files
//! of layout version 1 (made by the last build of it: block with a
//! detached durable subscriber, multi-producer, overwrite; 4 KiB rings,
//! 4 slots). Version 2 judges liveness by kernel locks instead of pids, so
//! a version-1 process and a version-2 process cannot share a topic: this
//! build refuses version-1 files with a typed error that says what to do,
//! and `shmq rm` removes them without `--force` (nothing of version 2 can
//! be using them).

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
fn version_1_files_are_refused_with_what_to_do() {
    let dir = TestDir::new();
    for name in ["v1-block", "v1-multi", "v1-overwrite"] {
        let opts = fixture(&dir, name);
        for writable in [true, false] {
            let r = if writable { Topic::open(name, &opts) } else { Topic::open_read_only(name, &opts) };
            match r {
                Err(e @ OpenError::VersionMismatch { found: 1, supported: 2 }) => {
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
fn the_cli_reports_version_1_files_and_rm_removes_them() {
    let dir = TestDir::new();
    fixture(&dir, "v1-block");
    let shmq = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shmq")).arg("--dir").arg(dir.path()).args(args).output().expect("run shmq")
    };
    let o = shmq(&["info", "v1-block"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("layout version 1"), "{o:?}");
    let o = shmq(&["rm", "v1-block"]);
    assert!(o.status.success(), "{o:?}");
    assert!(!dir.path().join("v1-block").exists());
}

#[test]
fn a_new_topic_is_version_2_with_its_attachment_counter() {
    let dir = TestDir::new();
    let t = Topic::create("fresh", &dir.opts().capacity(4096)).expect("create");
    let bytes = std::fs::read(dir.path().join("fresh")).expect("read");
    let word = |off: usize| u64::from_le_bytes(bytes[off..off + 8].try_into().expect("8 bytes"));
    assert_eq!(word(layout::hdr::VERSION) as u32, 2);
    let _sub = t.subscribe().expect("subscribe");
    let _p = t.producer().expect("producer");
    let bytes = std::fs::read(dir.path().join("fresh")).expect("read");
    let seq = u64::from_le_bytes(bytes[layout::hdr::ATTACH_SEQ..][..8].try_into().expect("8 bytes"));
    assert_eq!(seq, 2, "a subscriber and a producer attached");
}
